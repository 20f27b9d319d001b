// Reading the embed command's texts and writing its vectors: JSON Lines, plain text, .jsonl, .npy.
#include "cli/embed_io.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <system_error>

#include <unistd.h>

#include "cli/partial_files.h"
#include "core/utf8.h"

namespace embedserve::cli {
namespace {

std::string lower_extension(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

bool is_blank(std::string_view s) {
  return s.find_first_not_of(" \t\r\f\v") == std::string_view::npos;
}

std::string at(const std::string& name, size_t line) { return name + ":" + std::to_string(line) + ": "; }

// Editors on Windows start UTF-8 files with a byte-order mark; it is not part of the first text.
std::string_view skip_bom(std::string_view s) {
  return s.substr(0, 3) == "\xEF\xBB\xBF" ? s.substr(3) : s;
}

}  // namespace

InputFormat detect_input_format(const std::filesystem::path& path, std::string_view content) {
  const std::string ext = lower_extension(path);
  if (ext == ".jsonl" || ext == ".ndjson" || ext == ".json") return InputFormat::kJsonLines;
  if (ext == ".txt") return InputFormat::kPlainText;
  content = skip_bom(content);
  size_t pos = 0;
  while (pos < content.size()) {
    size_t end = content.find('\n', pos);
    if (end == std::string_view::npos) end = content.size();
    std::string_view line = content.substr(pos, end - pos);
    if (!is_blank(line)) {
      const size_t first = line.find_first_not_of(" \t\r\f\v");
      return line[first] == '{' ? InputFormat::kJsonLines : InputFormat::kPlainText;
    }
    pos = end + 1;
  }
  return InputFormat::kPlainText;
}

StatusOr<std::vector<InputText>> parse_input(std::string_view content, InputFormat format, const std::string& name) {
  std::vector<InputText> out;
  content = skip_bom(content);
  size_t pos = 0, line_no = 0;
  while (pos < content.size()) {
    size_t end = content.find('\n', pos);
    if (end == std::string_view::npos) end = content.size();
    std::string_view line = content.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (Status st = validate_utf8(line); !st.ok()) return invalid_argument(at(name, line_no) + st.message());
    if (format == InputFormat::kPlainText) {
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      out.push_back({std::string(line), line_no});
      continue;
    }
    if (is_blank(line)) continue;
    nlohmann::json doc = nlohmann::json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded())
      return invalid_argument(at(name, line_no) + "not valid JSON (each line must be an object like {\"text\": \"...\"})");
    if (!doc.is_object()) return invalid_argument(at(name, line_no) + "expected a JSON object like {\"text\": \"...\"}");
    auto it = doc.find("text");
    if (it == doc.end()) return invalid_argument(at(name, line_no) + "the object has no \"text\" field");
    if (!it->is_string()) return invalid_argument(at(name, line_no) + "\"text\" must be a string");
    out.push_back({it->get<std::string>(), line_no});
  }
  return out;
}

StatusOr<std::string> read_input_file(const std::string& path) {
  if (path == "-") {
    std::string data{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
    if (std::cin.bad()) return io_error("reading standard input failed");
    return data;
  }
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return not_found("input file " + path + " does not exist");
  if (std::filesystem::is_directory(path, ec)) return invalid_argument("input " + path + " is a directory, not a file");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return io_error("cannot open input file " + path + ": " + std::strerror(errno));
  std::string data;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
  const bool failed = std::ferror(f);
  std::fclose(f);
  if (failed) return io_error("reading input file " + path + " failed");
  return data;
}

StatusOr<OutputFormat> output_format_for(const std::filesystem::path& path) {
  if (path == "-") return OutputFormat::kJsonLines;  // standard output: text, so it can be piped to jq and friends
  const std::string ext = lower_extension(path);
  if (ext == ".jsonl" || ext == ".ndjson") return OutputFormat::kJsonLines;
  if (ext == ".npy") return OutputFormat::kNpy;
  return invalid_argument("output " + path.string() + ": unknown format '" + ext +
                          "'; name the file .jsonl (JSON Lines) or .npy (float32 matrix)");
}

std::string npy_header(size_t rows, size_t cols) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                     std::to_string(cols) + "), }";
  // magic (6) + version (2) + header length (2) + dict + padding + '\n' ≡ 0 (mod 64)
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(dict.size() & 0xFF));
  out.push_back(static_cast<char>(dict.size() >> 8));
  return out + dict;
}

void append_float(std::string& out, float v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

namespace {

}  // namespace

EmbeddingWriter::EmbeddingWriter(std::filesystem::path path, OutputFormat format, size_t rows, size_t cols,
                                 std::FILE* file)
    : path_(std::move(path)), format_(format), rows_(rows), cols_(cols), file_(file) {
  if (to_stdout()) return;
  partial_ = path_;
  partial_ += ".partial";
}

bool EmbeddingWriter::to_stdout() const { return path_ == "-"; }

EmbeddingWriter::~EmbeddingWriter() {
  if (file_ && to_stdout()) {  // what went out cannot be taken back; the error message says the run failed
    std::fflush(file_);
  } else if (file_) {  // finish() was never reached: drop the incomplete file
    std::fclose(file_);
    std::error_code ec;
    std::filesystem::remove(partial_, ec);
    forget_on_signal(partial_);
  }
}

StatusOr<std::unique_ptr<EmbeddingWriter>> EmbeddingWriter::open(const std::filesystem::path& path,
                                                                 OutputFormat format, size_t rows, size_t cols) {
  if (path == "-") {
    if (format != OutputFormat::kJsonLines)
      return invalid_argument("--output -: standard output takes JSON Lines only; name a file for .npy");
    return std::unique_ptr<EmbeddingWriter>(new EmbeddingWriter(path, format, rows, cols, stdout));
  }
  std::filesystem::path partial = path;
  partial += ".partial";
  unlink_on_signal(partial);  // before it exists: a Ctrl-C right after the fopen must not leave it behind
  std::FILE* f = std::fopen(partial.c_str(), "wb");
  if (!f) {
    forget_on_signal(partial);
    return io_error("cannot create output file " + partial.string() + ": " + std::strerror(errno));
  }
  std::unique_ptr<EmbeddingWriter> w(new EmbeddingWriter(path, format, rows, cols, f));
  if (format == OutputFormat::kNpy) EMBEDSERVE_RETURN_IF_ERROR(w->write(npy_header(rows, cols)));
  return w;
}

Status EmbeddingWriter::write(std::string_view bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size())
    return io_error("writing " + (to_stdout() ? std::string("standard output") : partial_.string()) +
                    " failed: " + std::strerror(errno));
  return Status();
}

Status EmbeddingWriter::write_row(std::span<const float> row) {
  if (row.size() != cols_ || written_ >= rows_)
    return internal_error("EmbeddingWriter: row " + std::to_string(written_) + " of " + std::to_string(row.size()) +
                          " floats does not fit a " + std::to_string(rows_) + " x " + std::to_string(cols_) + " output");
  buffer_.clear();
  if (format_ == OutputFormat::kNpy) {
    // float32 little-endian, as the header's '<f4' says; x86-64 and AArch64 Linux are little-endian.
    buffer_.append(reinterpret_cast<const char*>(row.data()), row.size_bytes());
  } else {
    buffer_ += "{\"index\":" + std::to_string(written_) + ",\"embedding\":[";
    for (size_t i = 0; i < row.size(); ++i) {
      if (i) buffer_.push_back(',');
      append_float(buffer_, row[i]);
    }
    buffer_ += "]}\n";
  }
  ++written_;
  return write(buffer_);
}

Status EmbeddingWriter::finish() {
  if (written_ != rows_)
    return internal_error("EmbeddingWriter: " + std::to_string(written_) + " rows written, expected " +
                          std::to_string(rows_));
  if (to_stdout()) {
    const bool flush_failed = std::fflush(file_) != 0;
    file_ = nullptr;
    if (flush_failed) return io_error(std::string("writing standard output failed: ") + std::strerror(errno));
    return Status();
  }
  const bool flush_failed = std::fflush(file_) != 0;
  const bool close_failed = std::fclose(file_) != 0;
  file_ = nullptr;
  std::error_code ec;
  if (flush_failed || close_failed) {
    const int error = errno;
    std::filesystem::remove(partial_, ec);
    forget_on_signal(partial_);
    return io_error("writing " + partial_.string() + " failed: " + std::strerror(error));
  }
  std::filesystem::rename(partial_, path_, ec);
  if (ec) {  // still the .partial: removed on the way out (the destructor finds no file to close)
    std::error_code removed;
    std::filesystem::remove(partial_, removed);
    forget_on_signal(partial_);
    return io_error("cannot rename " + partial_.string() + " to " + path_.string() + ": " + ec.message());
  }
  forget_on_signal(partial_);
  return Status();
}

}  // namespace embedserve::cli
