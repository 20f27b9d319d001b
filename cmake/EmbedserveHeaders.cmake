# embedserve_export_headers: each library's own include root, so a library compiles against the headers of the
# libraries it links and no others — the layering of docs/ARCHITECTURE.md, enforced by the compiler.
#
# Sources include headers by their path under src/ ("model/qwen3.h"). Instead of one include directory (src/)
# that shows every header to everyone, each library gets ${CMAKE_BINARY_DIR}/include/<target>/<folder> as a
# symbolic link to src/<folder> (or, with HEADERS, links to just those files of the folder), and exports that
# root PUBLIC: it reaches exactly the targets that link the library. `#include "model/qwen3.h"` from
# src/scheduler/ then fails to compile ("No such file"), because the scheduler links only embedserve_engine_api.
function(embedserve_export_headers target folder)
  cmake_parse_arguments(ARG "" "" "HEADERS" ${ARGN})
  set(root ${CMAKE_BINARY_DIR}/include/${target})
  if(ARG_HEADERS)
    file(MAKE_DIRECTORY ${root}/${folder})
    foreach(h ${ARG_HEADERS})
      file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/${folder}/${h} ${root}/${folder}/${h} SYMBOLIC)
    endforeach()
  else()
    get_filename_component(parent ${root}/${folder} DIRECTORY)
    file(MAKE_DIRECTORY ${parent})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/${folder} ${root}/${folder} SYMBOLIC)
  endif()
  target_include_directories(${target} PUBLIC ${root})
endfunction()

# The headers directly in src/<folder> (not its subfolders): a library whose folder also holds others'.
function(embedserve_folder_headers out folder)
  file(GLOB headers RELATIVE ${PROJECT_SOURCE_DIR}/src/${folder} CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${folder}/*.h)
  set(${out} ${headers} PARENT_SCOPE)
endfunction()
