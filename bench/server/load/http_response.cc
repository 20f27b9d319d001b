// ResponseReader: the status line, the three headers that frame a response (Content-Length, Transfer-Encoding,
// Connection) and the body, without copying it out of the receive buffer.
#include "http_response.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace embedserve::load {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Whether a comma-separated header value lists `token` (case-insensitive), e.g. "keep-alive, Upgrade".
bool lists_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (iequals(item, token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

size_t find_crlf(const char* data, size_t from, size_t to) {
  if (to < from + 2) return std::string_view::npos;
  const void* hit = memmem(data + from, to - from, "\r\n", 2);
  return hit ? static_cast<size_t>(static_cast<const char*>(hit) - data) : std::string_view::npos;
}

}  // namespace

std::span<char> ResponseReader::writable(size_t min_free) {
  if (buf_.size() - len_ < min_free) buf_.resize(std::max(buf_.size() * 2, len_ + min_free));
  return {buf_.data() + len_, buf_.size() - len_};
}

void ResponseReader::reset() {
  len_ = header_end_ = body_end_ = message_end_ = content_length_ = chunk_scan_ = 0;
  framing_ = Framing::kLength;
  chunks_done_ = false;
  status_ = 0;
  keep_alive_ = true;
  error_.clear();
}

ResponseReader::Progress ResponseReader::malformed(std::string why) {
  error_ = std::move(why);
  return Progress::kMalformed;
}

ResponseReader::Progress ResponseReader::received(size_t n) {
  const size_t before = len_;
  len_ += n;
  if (header_end_ == 0) {
    // The blank line may straddle the previous read: look from 3 bytes before the new ones.
    const size_t from = before >= 3 ? before - 3 : 0;
    const void* hit = memmem(buf_.data() + from, len_ - from, "\r\n\r\n", 4);
    if (!hit) {
      if (len_ > kMaxHeaderBytes) return malformed("the answer's headers pass 64 KiB without ending");
      return Progress::kNeedMore;
    }
    header_end_ = static_cast<size_t>(static_cast<const char*>(hit) - buf_.data()) + 4;
    if (auto p = parse_headers(); p != Progress::kNeedMore) return p;
  }
  switch (framing_) {
    case Framing::kLength:
      if (len_ < header_end_ + content_length_) {
        writable(header_end_ + content_length_ - len_);  // one allocation for a large body, not a doubling per read
        return Progress::kNeedMore;
      }
      body_end_ = message_end_ = header_end_ + content_length_;
      return Progress::kComplete;
    case Framing::kChunked:
      return parse_chunks();
    case Framing::kUntilClose:
      return Progress::kNeedMore;
  }
  return Progress::kNeedMore;
}

ResponseReader::Progress ResponseReader::closed() {
  if (header_end_ != 0 && framing_ == Framing::kUntilClose) {
    body_end_ = message_end_ = len_;
    keep_alive_ = false;
    return Progress::kComplete;
  }
  if (len_ == 0) return malformed("the server closed the connection without answering");
  return malformed("the server closed the connection in the middle of its answer (" + std::to_string(len_) +
                   " bytes received)");
}

ResponseReader::Progress ResponseReader::parse_headers() {
  std::string_view head(buf_.data(), header_end_ - 4);
  size_t eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  // "HTTP/1.1 200 OK"
  if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/" || status_line[8] != ' ')
    return malformed("the answer does not start with an HTTP status line: '" +
                     std::string(status_line.substr(0, 80)) + "'");
  const bool http10 = status_line.substr(5, 3) == "1.0";
  keep_alive_ = !http10;
  auto [ptr, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, status_);
  if (ec != std::errc() || ptr != status_line.data() + 12 || status_ < 100 || status_ > 999)
    return malformed("the status line has no three-digit status: '" + std::string(status_line.substr(0, 80)) + "'");
  if (status_ < 200) return malformed("an interim " + std::to_string(status_) + " answer: none was asked for");

  bool has_length = false, chunked = false;
  std::string_view rest = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
  while (!rest.empty()) {
    size_t end = rest.find("\r\n");
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return malformed("a header line without a colon: '" +
                                                          std::string(line.substr(0, 80)) + "'");
    std::string_view name = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (iequals(name, "content-length")) {
      auto [p, e] = std::from_chars(value.data(), value.data() + value.size(), content_length_);
      if (e != std::errc() || p != value.data() + value.size())
        return malformed("Content-Length is not a number: '" + std::string(value) + "'");
      has_length = true;
    } else if (iequals(name, "transfer-encoding")) {
      chunked = lists_token(value, "chunked");
    } else if (iequals(name, "connection")) {
      if (lists_token(value, "close")) keep_alive_ = false;
      else if (lists_token(value, "keep-alive")) keep_alive_ = true;
    }
  }
  if (status_ == 204 || status_ == 304) {
    content_length_ = 0;
    framing_ = Framing::kLength;
  } else if (chunked) {
    framing_ = Framing::kChunked;  // takes precedence over a Content-Length (RFC 9112, 6.3)
    chunk_scan_ = body_end_ = header_end_;
  } else if (has_length) {
    framing_ = Framing::kLength;
  } else {
    framing_ = Framing::kUntilClose;
    keep_alive_ = false;
  }
  return Progress::kNeedMore;
}

ResponseReader::Progress ResponseReader::parse_chunks() {
  // Chunk data is moved down to body_end_ as each chunk completes, so the body ends up contiguous after the
  // headers; body_end_ never passes chunk_scan_, so the move never overwrites bytes not yet read.
  char* data = buf_.data();
  while (!chunks_done_) {
    size_t eol = find_crlf(data, chunk_scan_, len_);
    if (eol == std::string_view::npos) {
      if (len_ - chunk_scan_ > 1024) return malformed("a chunk-size line passes 1 KiB");
      return Progress::kNeedMore;
    }
    std::string_view size_line(data + chunk_scan_, eol - chunk_scan_);
    size_line = size_line.substr(0, size_line.find(';'));  // chunk extensions
    size_t size = 0;
    auto [p, e] = std::from_chars(size_line.data(), size_line.data() + size_line.size(), size, 16);
    if (e != std::errc() || size_line.empty())
      return malformed("a chunk size is not hexadecimal: '" + std::string(size_line.substr(0, 40)) + "'");
    const size_t data_start = eol + 2;
    if (size == 0) {
      chunks_done_ = true;
      chunk_scan_ = data_start;  // now the start of the trailer lines
      break;
    }
    if (len_ < data_start + size + 2) {
      writable(data_start + size + 2 - len_);
      data = buf_.data();
      return Progress::kNeedMore;
    }
    if (data[data_start + size] != '\r' || data[data_start + size + 1] != '\n')
      return malformed("a chunk's data is not followed by CRLF");
    std::memmove(data + body_end_, data + data_start, size);
    body_end_ += size;
    chunk_scan_ = data_start + size + 2;
  }
  // Trailer lines, then the blank line that ends the answer.
  while (true) {
    size_t eol = find_crlf(data, chunk_scan_, len_);
    if (eol == std::string_view::npos) return Progress::kNeedMore;
    const bool blank = eol == chunk_scan_;
    chunk_scan_ = eol + 2;
    if (blank) {
      message_end_ = chunk_scan_;
      return Progress::kComplete;
    }
  }
}

}  // namespace embedserve::load
