// multipart/form-data read from a file: fields, the file part copied out exactly (CRLFs and a boundary-like
// line inside it, a part larger than the scan block), and the errors of a malformed body.
#include "server/multipart.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace embedserve {
namespace {

namespace fs = std::filesystem;

fs::path temp(const std::string& name) {
  return fs::temp_directory_path() / ("embedserve-multipart-" + name + "-" + std::to_string(::getpid()));
}

fs::path write(const std::string& name, const std::string& content) {
  const fs::path p = temp(name);
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string body(const std::string& boundary, const std::string& file) {
  return "--" + boundary + "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--" + boundary +
         "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\nContent-Type: "
         "application/jsonl\r\n\r\n" + file + "\r\n--" + boundary + "--\r\n";
}

TEST(Multipart, BoundaryComesFromTheContentType) {
  EXPECT_EQ(*multipart_boundary("multipart/form-data; boundary=abc"), "abc");
  EXPECT_EQ(*multipart_boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\""), "a b");
  EXPECT_FALSE(multipart_boundary("application/json").ok());
  EXPECT_FALSE(multipart_boundary("multipart/form-data").ok());
}

TEST(Multipart, CopiesTheFilePartExactlyAndReturnsTheFields) {
  // CRLFs, a "--boundary" not preceded by CRLF, and 3 MiB so the delimiter scan crosses block edges.
  std::string file = "line one\r\nline two\n--xyz not a delimiter\r\n";
  while (file.size() < (3u << 20)) file += "{\"custom_id\": \"a\", \"body\": {}}\n";
  const fs::path out = temp("out");
  auto up = read_multipart_file(write("ok", body("xyz", file)), "xyz", out);
  ASSERT_TRUE(up.ok()) << up.status().message();
  EXPECT_EQ(up->fields.at("purpose"), "batch");
  EXPECT_EQ(up->file_field, "file");
  EXPECT_EQ(up->filename, "in.jsonl");
  EXPECT_EQ(up->file_bytes, file.size());
  EXPECT_EQ(read(out), file);
}

TEST(Multipart, MalformedBodiesAreInvalidArguments) {
  const fs::path out = temp("bad");
  auto no_close = read_multipart_file(write("no-close", "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv"),
                                      "b", out);
  EXPECT_EQ(no_close.status().code(), ErrorCode::kInvalidArgument);
  auto no_file = read_multipart_file(
      write("no-file", "--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--b--\r\n"), "b", out);
  EXPECT_EQ(no_file.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(no_file.status().message().find("'file'"), std::string::npos);
  auto wrong_boundary = read_multipart_file(write("wrong", body("xyz", "data")), "other", out);
  EXPECT_EQ(wrong_boundary.status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace embedserve
