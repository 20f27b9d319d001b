// FileStorage and AppendFile: folders, accounting, durable appends, crash debris removal.
#include "jobs/file_storage.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "jobs/ids.h"

namespace embedserve::jobs {

namespace fs = std::filesystem;

Status write_error(const fs::path& path, int err) {
  const std::string msg = "cannot write " + path.string() + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT || err == EFBIG)
    return resource_exhausted(msg + " (the disk holding --data-dir is full; free space or move --data-dir)");
  return io_error(msg);
}

namespace {

Status sync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open " + dir.string() + ": " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return write_error(dir, err);
  return Status();
}

uint64_t folder_bytes(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::error_code size_ec;
    const auto n = e.file_size(size_ec);
    if (!size_ec) total += n;
  }
  return total;
}

}  // namespace

StatusOr<FileStorage> FileStorage::open(const fs::path& dir, uint64_t max_bytes) {
  for (const char* sub : {"files", "tmp"}) {
    std::error_code ec;
    fs::create_directories(dir / sub, ec);
    if (ec) return io_error("cannot create " + (dir / sub).string() + ": " + ec.message() + " (check --data-dir)");
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir / "tmp", ec)) fs::remove(e.path(), ec);
  return FileStorage(dir, max_bytes);
}

StatusOr<std::string> FileStorage::new_storage_name() {
  // Shares the id generator's randomness, under a prefix no id has, so no client-visible id is ever a path.
  return random_id("data-");
}

StatusOr<fs::path> FileStorage::temp_path() const {
  auto name = random_id("upload-");
  if (!name.ok()) return name.status();
  return dir_ / "tmp" / *name;
}

uint64_t FileStorage::used_bytes() const { return folder_bytes(dir_ / "files") + folder_bytes(dir_ / "tmp"); }

Status FileStorage::reserve(uint64_t extra) const {
  if (max_bytes_ == 0) return Status();
  const uint64_t used = used_bytes();
  if (used + extra > max_bytes_)
    return resource_exhausted("storage under --data-dir would grow to " + std::to_string(used + extra) +
                              " bytes, past --max-storage-bytes " + std::to_string(max_bytes_) +
                              "; delete files (DELETE /v1/files/{id}) or raise the limit");
  return Status();
}

Status FileStorage::adopt(const fs::path& temp, const std::string& storage_name) const {
  const int fd = ::open(temp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open " + temp.string() + ": " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return write_error(temp, err);
  std::error_code ec;
  fs::rename(temp, path_of(storage_name), ec);
  if (ec) return io_error("cannot move " + temp.string() + " into " + (dir_ / "files").string() + ": " + ec.message());
  return sync_dir(dir_ / "files");
}

void FileStorage::remove(const std::string& storage_name) const {
  if (storage_name.empty()) return;
  std::error_code ec;
  fs::remove(path_of(storage_name), ec);
}

size_t FileStorage::remove_unreferenced(const std::vector<std::string>& referenced) const {
  const std::set<std::string> keep(referenced.begin(), referenced.end());
  size_t removed = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_ / "files", ec)) {
    if (keep.count(e.path().filename().string())) continue;
    std::error_code rm;
    if (fs::remove(e.path(), rm)) ++removed;
  }
  return removed;
}

StatusOr<AppendFile> AppendFile::open(const fs::path& path, uint64_t committed) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return write_error(path, errno);
  AppendFile f(fd, path, committed);
  EMBEDSERVE_RETURN_IF_ERROR(f.truncate(committed));
  return f;
}

AppendFile::AppendFile(AppendFile&& other) noexcept : fd_(other.fd_), path_(std::move(other.path_)), size_(other.size_) {
  other.fd_ = -1;
}

AppendFile::~AppendFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status AppendFile::append(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(size_));
    if (n < 0) {
      if (errno == EINTR) continue;
      return write_error(path_, errno);
    }
    size_ += static_cast<uint64_t>(n);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status();
}

Status AppendFile::sync() {
  if (::fdatasync(fd_) != 0) return write_error(path_, errno);
  return Status();
}

Status AppendFile::truncate(uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return write_error(path_, errno);
  size_ = size;
  return Status();
}

}  // namespace embedserve::jobs
