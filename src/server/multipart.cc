// multipart/form-data (RFC 7578): delimiter scan over the body file in 1 MiB blocks, part headers, and a
// kernel-side copy (copy_file_range) of the file part.
#include "server/multipart.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace embedserve {
namespace {

constexpr size_t kBlock = 1u << 20;
constexpr size_t kMaxPartHeader = 16u << 10;
constexpr size_t kMaxField = 64u << 10;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The value of parameter `name` in a header value such as `form-data; name="file"; filename="a.jsonl"`.
std::string header_param(std::string_view value, std::string_view name) {
  const std::string lowered = lower(value);
  size_t at = 0;
  while ((at = lowered.find(std::string(name) + "=", at)) != std::string::npos) {
    const bool starts = at == 0 || lowered[at - 1] == ' ' || lowered[at - 1] == ';' || lowered[at - 1] == '\t';
    at += name.size() + 1;
    if (!starts) continue;
    if (at < value.size() && value[at] == '"') {
      std::string out;
      for (size_t i = at + 1; i < value.size() && value[i] != '"'; ++i) {
        if (value[i] == '\\' && i + 1 < value.size()) ++i;
        out += value[i];
      }
      return out;
    }
    const size_t end = value.find(';', at);
    std::string out(value.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at));
    while (!out.empty() && (out.back() == ' ' || out.back() == '\t')) out.pop_back();
    return out;
  }
  return "";
}

Status read_at(int fd, uint64_t offset, size_t n, std::string& out) {
  out.resize(n);
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, out.data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return io_error(std::string("cannot read the upload: ") + std::strerror(errno));
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  return Status();
}

// Offsets of every occurrence of `delim` in the file, found block by block (blocks overlap by delim.size()-1
// bytes, so an occurrence across a block edge is found once).
StatusOr<std::vector<uint64_t>> find_all(int fd, uint64_t size, const std::string& delim) {
  std::vector<uint64_t> at;
  std::string block;
  for (uint64_t offset = 0; offset < size;) {
    EMBEDSERVE_RETURN_IF_ERROR(read_at(fd, offset, kBlock, block));
    if (block.empty()) break;
    for (size_t pos = block.find(delim); pos != std::string::npos; pos = block.find(delim, pos + 1))
      at.push_back(offset + pos);
    if (offset + block.size() >= size) break;
    offset += block.size() - std::min(block.size(), delim.size() - 1);
  }
  std::sort(at.begin(), at.end());
  at.erase(std::unique(at.begin(), at.end()), at.end());
  return at;
}

Status copy_range(int from, uint64_t offset, uint64_t n, const std::filesystem::path& to) {
  Fd out{::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
  if (out.fd < 0) return io_error("cannot create " + to.string() + ": " + std::strerror(errno));
  loff_t in_off = static_cast<loff_t>(offset);
  while (n > 0) {
    const ssize_t c = ::copy_file_range(from, &in_off, out.fd, nullptr, n, 0);
    if (c < 0 && errno == EINTR) continue;
    if (c <= 0) {
      const int err = errno;
      return err == ENOSPC || err == EDQUOT
                 ? resource_exhausted("the disk holding --data-dir is full while storing the upload")
                 : io_error("cannot copy the upload into " + to.string() + ": " + std::strerror(c < 0 ? err : EIO));
    }
    n -= static_cast<uint64_t>(c);
  }
  return Status();
}

}  // namespace

StatusOr<std::string> multipart_boundary(std::string_view content_type) {
  if (lower(content_type).rfind("multipart/form-data", 0) != 0)
    return invalid_argument("upload the file as multipart/form-data (fields 'file' and 'purpose'), not '" +
                            std::string(content_type) + "'");
  std::string b = header_param(content_type, "boundary");
  if (b.empty() || b.size() > 70)
    return invalid_argument("the multipart/form-data Content-Type needs a boundary parameter of 1 to 70 characters");
  return b;
}

StatusOr<MultipartUpload> read_multipart_file(const std::filesystem::path& body, const std::string& boundary,
                                              const std::filesystem::path& file_out) {
  Fd in{::open(body.c_str(), O_RDONLY | O_CLOEXEC)};
  if (in.fd < 0) return io_error("cannot open the upload " + body.string() + ": " + std::strerror(errno));
  const off_t size = ::lseek(in.fd, 0, SEEK_END);
  if (size < 0) return io_error(std::string("cannot size the upload: ") + std::strerror(errno));
  // Every delimiter is CRLF "--" boundary, except the first, which may open the body without the CRLF.
  const std::string delim = "\r\n--" + boundary;
  EMBEDSERVE_ASSIGN_OR_RETURN(auto found, find_all(in.fd, static_cast<uint64_t>(size), delim));
  std::string head;
  EMBEDSERVE_RETURN_IF_ERROR(read_at(in.fd, 0, boundary.size() + 2, head));
  std::vector<uint64_t> starts;  // offset of each delimiter's "--"
  if (head == "--" + boundary) starts.push_back(0);
  for (uint64_t f : found) starts.push_back(f + 2);
  const auto malformed = [] {
    return invalid_argument("the upload is not well-formed multipart/form-data (a part or the closing boundary "
                            "is missing)");
  };
  if (starts.size() < 2) return malformed();
  MultipartUpload out;
  bool have_file = false;
  std::string text;
  for (size_t i = 0; i + 1 < starts.size(); ++i) {
    const uint64_t part = starts[i] + 2 + boundary.size();  // past "--boundary"
    const uint64_t end = starts[i + 1] - 2;                 // the CRLF before the next delimiter
    EMBEDSERVE_RETURN_IF_ERROR(read_at(in.fd, part, static_cast<size_t>(std::min<uint64_t>(kMaxPartHeader, end - part)),
                                       text));
    if (text.rfind("--", 0) == 0) break;  // the closing delimiter: nothing after it counts
    if (text.rfind("\r\n", 0) != 0) return malformed();
    const size_t header_end = text.find("\r\n\r\n");
    if (header_end == std::string::npos) return malformed();
    std::string disposition;
    for (size_t line = 2; line < header_end;) {
      size_t eol = text.find("\r\n", line);
      if (eol == std::string::npos || eol > header_end) eol = header_end;
      std::string_view h(text.data() + line, eol - line);
      const size_t colon = h.find(':');
      if (colon != std::string_view::npos && lower(h.substr(0, colon)) == "content-disposition")
        disposition = std::string(h.substr(colon + 1));
      line = eol + 2;
    }
    const std::string name = header_param(disposition, "name");
    const uint64_t data = part + header_end + 4;
    if (name.empty() || data > end) return malformed();
    if (lower(disposition).find("filename") != std::string::npos) {
      if (have_file) return invalid_argument("the upload carries more than one file; send one per request");
      have_file = true;
      out.file_field = name;
      out.filename = header_param(disposition, "filename");
      out.file_bytes = end - data;
      EMBEDSERVE_RETURN_IF_ERROR(copy_range(in.fd, data, end - data, file_out));
    } else {
      if (end - data > kMaxField) return invalid_argument("the multipart field '" + name + "' is longer than 64 KiB");
      EMBEDSERVE_RETURN_IF_ERROR(read_at(in.fd, data, static_cast<size_t>(end - data), out.fields[name]));
    }
  }
  if (!have_file) return invalid_argument("the upload carries no file: send it in the multipart field 'file'");
  return out;
}

}  // namespace embedserve
