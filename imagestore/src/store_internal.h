// Helpers shared by the store's files: blob paths, file locks, hashing.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "quorate/core/status.h"

namespace quorate::imagestore::internal {

std::filesystem::path blob_path(const std::filesystem::path& store, const std::string& digest);

// An exclusive flock() on `path` (created when absent), released on destruction.
class FileLock {
 public:
  static Result<FileLock> acquire(const std::filesystem::path& path);
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// "sha256:<hex>" of the file's bytes; io when it cannot be read.
Result<std::string> hash_file(const std::filesystem::path& path);

// The root file system of verified layers, unpacked into `dir` (which exists and is empty).
struct LayerFile {
  std::string digest;
  std::filesystem::path blob;
};
Status unpack_layers(const std::vector<LayerFile>& layers, const std::filesystem::path& dir);

}  // namespace quorate::imagestore::internal
