// FileStorage: the bytes of uploaded files and batch results under <data-dir>/files, uploads in progress under
// <data-dir>/tmp, and appends that are made durable before the database says they exist.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace embedserve::jobs {

class FileStorage {
 public:
  // Creates <dir>/files and <dir>/tmp, and empties tmp (uploads a crash interrupted).
  static StatusOr<FileStorage> open(const std::filesystem::path& dir, uint64_t max_bytes);

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path path_of(const std::string& storage_name) const { return dir_ / "files" / storage_name; }
  // A fresh path under tmp/ for an upload being received.
  StatusOr<std::filesystem::path> temp_path() const;
  // A fresh random storage name (never derived from an id a client sees).
  static StatusOr<std::string> new_storage_name();

  // Bytes held under files/ and tmp/ now.
  uint64_t used_bytes() const;
  uint64_t max_bytes() const { return max_bytes_; }  // --max-storage-bytes; 0: unbounded
  // resource_exhausted naming --max-storage-bytes when `extra` more bytes would pass the bound.
  Status reserve(uint64_t extra) const;

  // Moves a finished upload from tmp/ into files/ under `storage_name`, durably (fsync of file and folder).
  Status adopt(const std::filesystem::path& temp, const std::string& storage_name) const;
  void remove(const std::string& storage_name) const;
  // Deletes every file under files/ whose name is not in `referenced` (left by a crash between writing a
  // file and recording it), returning how many went.
  size_t remove_unreferenced(const std::vector<std::string>& referenced) const;

 private:
  FileStorage(std::filesystem::path dir, uint64_t max_bytes) : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  std::filesystem::path dir_;
  uint64_t max_bytes_ = 0;
};

// A result file being appended to. Opening cuts it back to `committed` bytes, dropping whatever a crash left
// past the last commit; sync() makes what was appended durable before the caller records the new size.
class AppendFile {
 public:
  static StatusOr<AppendFile> open(const std::filesystem::path& path, uint64_t committed);
  AppendFile(AppendFile&& other) noexcept;
  AppendFile& operator=(AppendFile&&) = delete;
  ~AppendFile();

  Status append(std::string_view bytes);
  Status sync();
  // Cuts the file back to `size` (after a failed append: never leave half a line).
  Status truncate(uint64_t size);
  uint64_t size() const { return size_; }

 private:
  AppendFile(int fd, std::filesystem::path path, uint64_t size) : fd_(fd), path_(std::move(path)), size_(size) {}
  int fd_ = -1;
  std::filesystem::path path_;
  uint64_t size_ = 0;
};

// The error for a failed write: ENOSPC/EDQUOT/EFBIG are resource_exhausted ("the disk holding --data-dir is
// full"), anything else an io_error; both name the file.
Status write_error(const std::filesystem::path& path, int err);

}  // namespace embedserve::jobs
