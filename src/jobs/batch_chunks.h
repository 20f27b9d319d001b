// BatchChunks: a batch input file read from a byte offset in chunks of lines, each chunk's requests started
// on the endpoint and, when its responses are back, rendered into output and error bytes. Shared by the
// server's runner (which commits each chunk) and `embedserve embed` on batch input (which writes it).
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <future>
#include <string>
#include <vector>

#include "core/status.h"
#include "jobs/batch_endpoint.h"
#include "jobs/batch_lines.h"

namespace embedserve::jobs {

// Reads an input file's lines from a byte offset through a 1 MiB window, so memory does not grow with the file
// or with a long line (a line past `max_line_bytes` is reported as too long and its bytes dropped).
class LineReader {
 public:
  static StatusOr<LineReader> open(const std::filesystem::path& path, int64_t offset, size_t max_line_bytes);
  LineReader(LineReader&& other) noexcept;
  LineReader& operator=(LineReader&&) = delete;
  ~LineReader();
  // The next line without its '\n' and the input offset it starts at; false at the end of the input.
  StatusOr<bool> next(std::string& line, int64_t& line_offset, bool& too_long);
  // Input offset just past the last line returned.
  int64_t offset() const { return buffer_offset_ + static_cast<int64_t>(buffer_pos_); }

 private:
  LineReader(int fd, int64_t offset, size_t max_line_bytes)
      : fd_(fd), max_line_bytes_(max_line_bytes), buffer_offset_(offset) {}
  int fd_ = -1;
  size_t max_line_bytes_;
  std::string buffer_;     // input bytes from buffer_offset_ on, read ahead
  size_t buffer_pos_ = 0;  // the next unread byte of buffer_
  int64_t buffer_offset_ = 0;
  bool eof_ = false;
};

// What one finished chunk adds to a job.
struct ChunkResult {
  int64_t end_offset = 0;  // input bytes consumed up to the end of the chunk's last line
  std::string output;      // output lines, in input order
  std::string errors;      // error lines, in input order
  int64_t completed = 0, failed = 0;
};

struct ChunkOptions {
  std::string endpoint = "/v1/embeddings";
  // A chunk is the unit of commit and of resume: 512 lines keep the work redone after a crash small and the last
  // chunk's tail short, and three in flight keep the engine fed while the runner writes, syncs and commits one
  // and parses and tokenises the next (measured: the engine thread runnable ~92% of a job's wall time).
  size_t lines_per_chunk = 512;
  size_t chunks_in_flight = 3;
  size_t max_line_bytes = 64u << 20;      // a longer line is an error line (as --max-body-bytes is for HTTP)
  std::string request_id_prefix = "req";  // request ids are "<prefix>_<input byte offset of the line>"
};

class BatchChunks {
 public:
  // Opens `input` and seeks to `offset` (a line boundary a previous run committed).
  static StatusOr<BatchChunks> open(const std::filesystem::path& input, int64_t offset, BatchEndpoint& endpoint,
                                    ChunkOptions options);
  BatchChunks(BatchChunks&& other) noexcept = default;
  BatchChunks& operator=(BatchChunks&&) = delete;
  ~BatchChunks();

  // The next chunk's result, in input order; nullopt at the end of the input.
  StatusOr<std::optional<ChunkResult>> next();

 private:
  struct Started {
    int64_t end_offset = 0;
    // Per line, in order: the index of its response in `responses`, or -1 with `error` set.
    std::vector<std::string> request_ids;
    std::vector<int> response_index;
    std::vector<std::string> custom_ids;
    std::vector<LineError> errors;
    std::future<std::vector<EndpointResponse>> responses;
    size_t n_requests = 0;
  };
  BatchChunks(LineReader reader, BatchEndpoint& endpoint, ChunkOptions options)
      : reader_(std::move(reader)), endpoint_(&endpoint), options_(std::move(options)) {}
  // Reads up to lines_per_chunk lines and starts their requests; false at the end of the input.
  StatusOr<bool> start_chunk();

  LineReader reader_;
  BatchEndpoint* endpoint_;
  ChunkOptions options_;
  std::deque<Started> in_flight_;
};

}  // namespace embedserve::jobs
