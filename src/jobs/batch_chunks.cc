// BatchChunks: line reading with a bounded buffer, chunk start, and response rendering in input order.
#include "jobs/batch_chunks.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace embedserve::jobs {

namespace {
constexpr size_t kReadBytes = 1u << 20;  // input is read 1 MiB at a time: memory does not grow with the file
}

StatusOr<LineReader> LineReader::open(const std::filesystem::path& path, int64_t offset, size_t max_line_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open the batch input " + path.string() + ": " + std::strerror(errno));
  return LineReader(fd, offset, max_line_bytes);
}

LineReader::LineReader(LineReader&& other) noexcept
    : fd_(other.fd_), max_line_bytes_(other.max_line_bytes_), buffer_(std::move(other.buffer_)),
      buffer_pos_(other.buffer_pos_), buffer_offset_(other.buffer_offset_), eof_(other.eof_) {
  other.fd_ = -1;
}

LineReader::~LineReader() {
  if (fd_ >= 0) ::close(fd_);
}

StatusOr<bool> LineReader::next(std::string& line, int64_t& line_offset, bool& too_long) {
  line.clear();
  too_long = false;
  line_offset = offset();
  for (;;) {
    const size_t nl = buffer_.find('\n', buffer_pos_);
    const size_t end = nl == std::string::npos ? buffer_.size() : nl;
    if (!too_long) {
      line.append(buffer_, buffer_pos_, end - buffer_pos_);
      if (line.size() > max_line_bytes_) {
        too_long = true;  // read on to its end, holding none of it
        line.clear();
      }
    }
    if (nl != std::string::npos) {
      buffer_pos_ = nl + 1;
      return true;
    }
    buffer_pos_ = buffer_.size();
    if (eof_) return !line.empty() || too_long;  // a last line without '\n'
    buffer_offset_ += static_cast<int64_t>(buffer_.size());
    buffer_.resize(kReadBytes);
    buffer_pos_ = 0;
    ssize_t n;
    do n = ::pread(fd_, buffer_.data(), kReadBytes, buffer_offset_);
    while (n < 0 && errno == EINTR);
    if (n < 0) return io_error(std::string("cannot read the batch input: ") + std::strerror(errno));
    buffer_.resize(static_cast<size_t>(n));
    if (n == 0) eof_ = true;
  }
}

StatusOr<BatchChunks> BatchChunks::open(const std::filesystem::path& input, int64_t offset, BatchEndpoint& endpoint,
                                        ChunkOptions options) {
  auto reader = LineReader::open(input, offset, options.max_line_bytes);
  if (!reader.ok()) return reader.status();
  return BatchChunks(std::move(reader).value(), endpoint, std::move(options));
}

BatchChunks::~BatchChunks() {
  // Every started chunk is waited for, so no endpoint work outlives the job that asked for it.
  for (auto& c : in_flight_)
    if (c.responses.valid()) c.responses.wait();
}

StatusOr<bool> BatchChunks::start_chunk() {
  Started c;
  std::vector<std::string> bodies;
  std::string text;
  while (c.request_ids.size() < options_.lines_per_chunk) {
    int64_t line_offset = 0;
    bool too_long = false;
    auto got = reader_.next(text, line_offset, too_long);
    if (!got.ok()) return got.status();
    if (!*got) break;
    if (!too_long && text.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines are no requests
    c.request_ids.push_back(options_.request_id_prefix + "_" + std::to_string(line_offset));
    ParsedLine parsed;
    if (too_long)
      parsed.error = {"", "line_too_long", "the line is longer than " + std::to_string(options_.max_line_bytes) +
                                               " bytes"};
    else
      parsed = parse_batch_line(text, options_.endpoint);
    if (parsed.request) {
      c.response_index.push_back(static_cast<int>(bodies.size()));
      c.custom_ids.push_back(std::move(parsed.request->custom_id));
      c.errors.emplace_back();
      bodies.push_back(std::move(parsed.request->body));
    } else {
      c.response_index.push_back(-1);
      c.custom_ids.push_back(parsed.error.custom_id);
      c.errors.push_back(std::move(parsed.error));
    }
  }
  c.end_offset = reader_.offset();
  if (c.request_ids.empty()) return false;
  c.n_requests = bodies.size();
  if (!bodies.empty()) c.responses = endpoint_->start(std::move(bodies));
  in_flight_.push_back(std::move(c));
  return true;
}

StatusOr<std::optional<ChunkResult>> BatchChunks::next() {
  while (in_flight_.size() < std::max<size_t>(1, options_.chunks_in_flight)) {
    auto started = start_chunk();
    if (!started.ok()) return started.status();
    if (!*started) break;
  }
  if (in_flight_.empty()) return std::optional<ChunkResult>();
  Started c = std::move(in_flight_.front());
  in_flight_.pop_front();
  std::vector<EndpointResponse> responses;
  if (c.responses.valid()) responses = c.responses.get();
  if (responses.size() != c.n_requests)
    return internal_error("the endpoint answered " + std::to_string(responses.size()) + " of " +
                          std::to_string(c.n_requests) + " requests");
  ChunkResult r;
  r.end_offset = c.end_offset;
  for (size_t i = 0; i < c.request_ids.size(); ++i) {
    if (c.response_index[i] < 0) {
      r.errors += render_error_line(c.request_ids[i], c.errors[i]);
      ++r.failed;
      continue;
    }
    const EndpointResponse& resp = responses[static_cast<size_t>(c.response_index[i])];
    // As OpenAI does: a request the endpoint refused (4xx/5xx) goes to the error file with its response.
    const bool ok = resp.status_code >= 200 && resp.status_code < 300;
    (ok ? r.output : r.errors) += render_response_line(c.request_ids[i], c.custom_ids[i], resp.status_code, resp.body);
    ++(ok ? r.completed : r.failed);
  }
  return std::optional<ChunkResult>(std::move(r));
}

}  // namespace embedserve::jobs
