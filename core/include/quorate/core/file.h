// Files: whole-file reads with a size limit, atomic writes (temp + fsync + rename), temporary files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "quorate/core/sink.h"
#include "quorate/core/status.h"

namespace quorate {

// Reads a whole file; bad_input when it is larger than max_bytes, not_found when absent.
Result<std::string> read_file(const std::filesystem::path& path, uint64_t max_bytes = 64u << 20);

// As read_file, for a path that a file names rather than the person running quorate (a roster's public_key,
// a policy's roster): bad_input "<path> is not a regular file (a FIFO)" when it is a FIFO, a device, a socket
// or a directory, which is then never opened. A FIFO would block the read until someone writes to it, and a
// device (/dev/tty, /dev/stdin) is not a file's content. Symbolic links are followed.
Result<std::string> read_regular_file(const std::filesystem::path& path, uint64_t max_bytes = 64u << 20);

// Reads a whole file holding a secret (`what` names it in errors: "private key file"): a regular file, or a
// pipe (`--key <(pass show node-key)`; a FIFO no one writes to reads as empty instead of waiting for ever). A
// device, socket or directory is refused, and so is a file or pipe its group or other users have any
// permission on, with the chmod to run. The type and mode are taken from the descriptor that is then read,
// so what was checked is what is read.
Result<std::string> read_secret_file(const std::filesystem::path& path, uint64_t max_bytes, std::string_view what);

// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename, fsync of the
// directory. `mode` is applied exactly (not filtered by the umask).
Status write_file_atomic(const std::filesystem::path& path, std::string_view bytes, uint32_t mode = 0644);

// A file written in place of `target` that appears there only on commit(). Until then it lives as a hidden
// temporary next to the target; destroying an uncommitted AtomicFile removes it. Not thread-safe.
class AtomicFile final : public Sink {
 public:
  static Result<std::unique_ptr<AtomicFile>> create(const std::filesystem::path& target, uint32_t mode = 0644);
  ~AtomicFile() override;

  Status write(std::span<const uint8_t> bytes) override;
  // fsync, rename over the target, fsync the directory.
  Status commit();
  const std::filesystem::path& temp_path() const { return temp_; }

 private:
  AtomicFile(std::filesystem::path target, std::filesystem::path temp, int fd);
  std::filesystem::path target_;
  std::filesystem::path temp_;
  int fd_;
  bool committed_ = false;
};

// A directory built next to `target` and renamed into place on commit(); removed if never committed.
// The target must not exist yet, or be an empty directory (then it is replaced), so nothing is lost.
class AtomicDir {
 public:
  static Result<AtomicDir> create(const std::filesystem::path& target);
  AtomicDir(AtomicDir&&) noexcept;
  AtomicDir& operator=(AtomicDir&&) = delete;
  ~AtomicDir();

  const std::filesystem::path& path() const { return temp_; }
  Status commit();

 private:
  AtomicDir(std::filesystem::path target, std::filesystem::path temp);
  std::filesystem::path target_;
  std::filesystem::path temp_;
  bool committed_ = false;
};

// An unlinked temporary file for spooling; its descriptor is closed on destruction.
class TempFile {
 public:
  // In `dir`, or in $TMPDIR-independent default "/tmp" when empty. The file has no name once created.
  static Result<TempFile> create(const std::filesystem::path& dir = {});
  TempFile(TempFile&&) noexcept;
  TempFile& operator=(TempFile&&) noexcept;
  ~TempFile();
  int fd() const { return fd_; }

 private:
  explicit TempFile(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// open(2) of `path` with `flags` (O_CLOEXEC added), whatever its length: a path of PATH_MAX bytes or more
// (a deep tree under a long work directory) is opened a part at a time, each directory part with O_PATH and
// the rest relative to it, with the meaning open(2) would give the whole path. -1 and errno on failure.
// Whether a build can read what it wrote must not depend on where the host put its work directory.
int open_any_length(const std::string& path, int flags);

// Writes all of `bytes` to `fd`, retrying on EINTR and short writes.
Status write_all(int fd, std::span<const uint8_t> bytes, const char* what);
// Reads exactly `size` bytes at `offset`; bad_input when the file is shorter.
Status pread_exact(int fd, uint8_t* out, size_t size, uint64_t offset, const char* what);

}  // namespace quorate
