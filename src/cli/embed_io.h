// The embed command's files: reading texts (JSON Lines or plain text) and writing vectors (.jsonl or .npy).
#pragma once

#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace embedserve::cli {

enum class InputFormat { kJsonLines, kPlainText };

// One text to embed and where it came from, so every error can name the line.
struct InputText {
  std::string text;
  size_t line = 0;  // 1-based line number in the input file
};

// `.jsonl` / `.ndjson` / `.json` → JSON Lines; `.txt` → plain text; anything else (stdin included) is
// sniffed: JSON Lines when the first non-blank line starts with '{', plain text otherwise.
InputFormat detect_input_format(const std::filesystem::path& path, std::string_view content);

// JSON Lines: every non-blank line is an object with a string "text" (other keys are ignored); blank
// lines are skipped, as the format allows. Plain text: every line is one text, an empty line an empty
// text (it still embeds: the tokenizer appends EOS), a trailing '\r' is dropped (CRLF files), and the
// newline that ends the file does not start another text. Lines split on '\n' only, so U+2028 inside
// a text stays there. A leading UTF-8 byte-order mark is skipped. Errors (bad JSON, no "text", invalid
// UTF-8) name `name` and the line.
StatusOr<std::vector<InputText>> parse_input(std::string_view content, InputFormat format, const std::string& name);

// Reads a whole file, or standard input for "-". Errors name the path.
StatusOr<std::string> read_input_file(const std::string& path);

enum class OutputFormat { kJsonLines, kNpy };

// `.jsonl` / `.ndjson` → JSON Lines, `.npy` → NumPy; anything else is an invalid_argument naming both.
StatusOr<OutputFormat> output_format_for(const std::filesystem::path& path);

// The NumPy v1.0 header of a little-endian float32 C-order matrix, padded with spaces so the data starts
// at a multiple of 64 bytes (what numpy.save writes and numpy.load expects).
std::string npy_header(size_t rows, size_t cols);

// Appends the shortest decimal that reads back to exactly `v` (std::to_chars); NaN/Inf, which JSON
// cannot hold, are written as null.
void append_float(std::string& out, float v);

// Writes rows in index order to `<path>.partial` and renames it onto `path` in finish(), so a failed or
// interrupted run never leaves a file that looks complete; the .partial is removed on failure, and on SIGINT or
// SIGTERM while it is open. Path "-" writes JSON Lines straight to standard output instead.
class EmbeddingWriter {
 public:
  static StatusOr<std::unique_ptr<EmbeddingWriter>> open(const std::filesystem::path& path, OutputFormat format,
                                                        size_t rows, size_t cols);
  ~EmbeddingWriter();
  EmbeddingWriter(const EmbeddingWriter&) = delete;
  EmbeddingWriter& operator=(const EmbeddingWriter&) = delete;

  // row.size() must equal cols; at most `rows` calls.
  Status write_row(std::span<const float> row);
  // Checks that all rows arrived, flushes, closes and renames into place.
  Status finish();

 private:
  EmbeddingWriter(std::filesystem::path path, OutputFormat format, size_t rows, size_t cols, std::FILE* file);
  Status write(std::string_view bytes);
  bool to_stdout() const;  // path "-": rows go to standard output, with no .partial file and no rename

  std::filesystem::path path_;
  std::filesystem::path partial_;
  OutputFormat format_;
  size_t rows_;
  size_t cols_;
  size_t written_ = 0;
  std::FILE* file_ = nullptr;
  std::string buffer_;
};

}  // namespace embedserve::cli
