// ResponseReader: reads one HTTP/1.1 response at a time off a keep-alive connection (Content-Length, chunked, or
// delimited by the close), into a buffer reused from one response to the next.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace embedserve::load {

class ResponseReader {
 public:
  enum class Progress { kNeedMore, kComplete, kMalformed };

  ResponseReader() { buf_.resize(kInitialBytes); }

  // Room for recv() to write at least `min_free` bytes into; call received() with what it wrote.
  std::span<char> writable(size_t min_free = 16 * 1024);
  Progress received(size_t n);
  // The peer closed the connection: completes a body that runs to the close, else the answer is cut short.
  Progress closed();

  // Valid once received() or closed() said kComplete.
  int status() const { return status_; }
  bool keep_alive() const { return keep_alive_; }
  std::string_view body() const { return {buf_.data() + header_end_, body_end_ - header_end_}; }
  // Bytes received past the end of the answer: with one request in flight a server sends none.
  size_t bytes_after_answer() const { return len_ - message_end_; }
  // Why the answer is malformed (kMalformed).
  const std::string& error() const { return error_; }
  bool started() const { return len_ > 0; }

  // Forgets the answer (and anything after it), keeping the buffer's capacity for the next one.
  void reset();

 private:
  static constexpr size_t kInitialBytes = 64 * 1024;
  static constexpr size_t kMaxHeaderBytes = 64 * 1024;

  Progress parse_headers();
  Progress parse_chunks();
  Progress malformed(std::string why);

  std::vector<char> buf_;
  size_t len_ = 0;          // bytes received into buf_
  size_t header_end_ = 0;   // just past the blank line ending the headers; 0 until they are in
  size_t body_end_ = 0;     // end of the (de-chunked) body inside buf_
  size_t message_end_ = 0;  // end of the answer's bytes as received (past the last chunk and trailers)
  size_t content_length_ = 0;
  enum class Framing { kLength, kChunked, kUntilClose } framing_ = Framing::kLength;
  size_t chunk_scan_ = 0;   // chunked: where the next chunk-size line starts
  bool chunks_done_ = false;
  int status_ = 0;
  bool keep_alive_ = true;
  std::string error_;
};

}  // namespace embedserve::load
