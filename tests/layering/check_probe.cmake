# Builds one layering probe and checks the outcome: EXPECT=fail needs a failure that names HEADER (so the probe
# failed for the layering, not for something else); EXPECT=pass needs success.
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(EXPECT STREQUAL "fail")
  if(rc EQUAL 0)
    message(FATAL_ERROR "${TARGET} compiled: a library can include a header of one it does not link")
  endif()
  string(FIND "${out}${err}" "${HEADER}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${TARGET} failed, but not on ${HEADER}:\n${out}${err}")
  endif()
  message(STATUS "${TARGET}: refused as it should be (${HEADER} not found)")
elseif(NOT rc EQUAL 0)
  message(FATAL_ERROR "${TARGET} should compile:\n${out}${err}")
endif()
