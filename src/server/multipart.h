// multipart/form-data read from a file on disk (an upload streamed there by the HTTP layer): the small text
// fields are returned, the one file field is copied out to its own file, never held in memory.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "core/status.h"

namespace embedserve {

struct MultipartUpload {
  std::map<std::string, std::string> fields;  // text fields (name → value), each at most 64 KiB
  std::string file_field;                     // the name of the field that carried a file ("file")
  std::string filename;                       // its filename parameter
  uint64_t file_bytes = 0;                    // bytes copied to the destination
};

// The boundary parameter of a `multipart/form-data; boundary=...` Content-Type; invalid_argument otherwise.
StatusOr<std::string> multipart_boundary(std::string_view content_type);

// Reads the multipart body in `body` and copies the content of its file field (the one part with a filename)
// to `file_out`. invalid_argument for a body that is not well-formed multipart or holds no file.
StatusOr<MultipartUpload> read_multipart_file(const std::filesystem::path& body, const std::string& boundary,
                                              const std::filesystem::path& file_out);

}  // namespace embedserve
