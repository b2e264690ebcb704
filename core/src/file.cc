// Whole-file reads, atomic files and directories, spool files.
#include "quorate/core/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <system_error>

#include "quorate/core/temporaries.h"

namespace quorate {
namespace fs = std::filesystem;
namespace {

Status fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno("open directory " + dir.string(), errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Status::from_errno("fsync directory " + dir.string(), err);
  return Status();
}

fs::path parent_or_dot(const fs::path& p) {
  fs::path parent = p.parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

}  // namespace

int open_any_length(const std::string& path, int flags) {
  flags |= O_CLOEXEC;
  if (path.size() < PATH_MAX) return ::open(path.c_str(), flags);
  int dir = AT_FDCWD;
  size_t pos = 0;
  auto close_dir = [&] {
    if (dir != AT_FDCWD) ::close(dir);
  };
  while (path.size() - pos >= PATH_MAX) {
    size_t cut = path.rfind('/', pos + PATH_MAX - 1);
    if (cut == std::string::npos || cut < pos) {
      close_dir();
      errno = ENAMETOOLONG;  // one name of PATH_MAX bytes: longer than any file system allows
      return -1;
    }
    std::string part = cut == 0 ? "/" : path.substr(pos, cut - pos);
    if (part.empty()) part = ".";
    int next = ::openat(dir, part.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    const int saved = errno;
    close_dir();
    if (next < 0) {
      errno = saved;
      return -1;
    }
    dir = next;
    pos = cut + 1;
  }
  int fd = ::openat(dir, pos == path.size() ? "." : path.c_str() + pos, flags);
  const int saved = errno;
  close_dir();
  errno = saved;
  return fd;
}

Status write_all(int fd, std::span<const uint8_t> bytes, const char* what) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno(std::string("write ") + what, errno);
    }
    bytes = bytes.subspan(static_cast<size_t>(n));
  }
  return Status();
}

Status pread_exact(int fd, uint8_t* out, size_t size, uint64_t offset, const char* what) {
  while (size > 0) {
    ssize_t n = ::pread(fd, out, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno(std::string("read ") + what, errno);
    }
    if (n == 0) return Status::bad_input(std::string(what) + " is shorter than expected");
    out += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status();
}

namespace {

const char* file_kind(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISDIR(mode)) return "a directory";
  return "not a file";
}

Status not_regular(const fs::path& path, mode_t mode) {
  return Status::bad_input(path.string() + " is not a regular file (" + file_kind(mode) + ")");
}

// The rest of read_file, read_regular_file and read_secret_file, from an open descriptor, which it closes.
Result<std::string> read_all(int fd, const fs::path& path, uint64_t max_bytes) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return Status::from_errno("read " + path.string(), err);
    }
    if (n == 0) break;
    if (out.size() + static_cast<uint64_t>(n) > max_bytes) {
      ::close(fd);
      return Status::bad_input(path.string() + " is larger than the limit of " + std::to_string(max_bytes) + " bytes");
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace

Result<std::string> read_file(const fs::path& path, uint64_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::not_found("no such file: " + path.string());
    return Status::from_errno("open " + path.string(), errno);
  }
  return read_all(fd, path, max_bytes);
}

namespace {

// `path` opened for reading when it is a regular file; `st` is then the descriptor's. Checked before the open,
// which may itself block (a FIFO) or act (a tty may become the controlling terminal), and again on the
// descriptor, in case the path was replaced in between. O_NONBLOCK: should a FIFO take the path's place after
// the stat, the open does not wait for a writer.
Result<int> open_regular(const fs::path& path, struct stat& st) {
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::not_found("no such file: " + path.string());
    return Status::from_errno("stat " + path.string(), errno);
  }
  if (!S_ISREG(st.st_mode)) return not_regular(path, st.st_mode);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) return Status::not_found("no such file: " + path.string());
    return Status::from_errno("open " + path.string(), errno);
  }
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return not_regular(path, st.st_mode);
  }
  return fd;
}

}  // namespace

Result<std::string> read_regular_file(const fs::path& path, uint64_t max_bytes) {
  struct stat st {};
  const int fd = QR_TRY(open_regular(path, st));
  return read_all(fd, path, max_bytes);
}

Result<std::string> read_secret_file(const fs::path& path, uint64_t max_bytes, std::string_view what) {
  // O_NONBLOCK: a FIFO opens without waiting for a writer; O_NOCTTY: a tty does not become ours.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) return Status::not_found(path.string() + ": no such " + std::string(what));
    return Status::from_errno("open " + path.string(), errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::from_errno("stat " + path.string(), err);
  }
  if (S_ISFIFO(st.st_mode)) {
    // A pipe the shell made (`--key <(pass show node-key)`) is read to its writer's end. A FIFO no one has open
    // for writing reads as empty at once, where the blocking open waited for a writer for ever.
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
      const int err = errno;
      ::close(fd);
      return Status::from_errno("fcntl " + path.string(), err);
    }
  } else if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return not_regular(path, st.st_mode).with_context(std::string(what));
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::bad_input(path.string() + ": " + std::string(what) + " has mode " + mode +
                             ", so its group or other users may read (or replace) it. Run: chmod 600 " + path.string());
  }
  return read_all(fd, path, max_bytes);
}

AtomicFile::AtomicFile(fs::path target, fs::path temp, int fd)
    : target_(std::move(target)), temp_(std::move(temp)), fd_(fd) {}

Result<std::unique_ptr<AtomicFile>> AtomicFile::create(const fs::path& target, uint32_t mode) {
  fs::path dir = parent_or_dot(target);
  int fd = -1;
  fs::path temp = QR_TRY(make_temporary([&]() -> Result<fs::path> {
    std::string templ = (dir / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
    fd = ::mkostemp(templ.data(), O_CLOEXEC);
    if (fd < 0) return Status::from_errno("create temporary file next to " + target.string(), errno);
    if (::fchmod(fd, mode) != 0) {
      int err = errno;
      ::close(fd);
      ::unlink(templ.c_str());
      return Status::from_errno("chmod " + templ, err);
    }
    return fs::path(templ);
  }));
  return std::unique_ptr<AtomicFile>(new AtomicFile(target, temp, fd));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
  unregister_temporary(temp_);
}

Status AtomicFile::write(std::span<const uint8_t> bytes) { return write_all(fd_, bytes, temp_.c_str()); }

Status AtomicFile::commit() {
  if (::fsync(fd_) != 0) return Status::from_errno("fsync " + temp_.string(), errno);
  ::close(fd_);
  fd_ = -1;
  if (::rename(temp_.c_str(), target_.c_str()) != 0) return Status::from_errno("rename to " + target_.string(), errno);
  committed_ = true;
  return fsync_dir(parent_or_dot(target_));
}

Status write_file_atomic(const fs::path& path, std::string_view bytes, uint32_t mode) {
  auto file = QR_TRY(AtomicFile::create(path, mode));
  QR_RETURN_IF_ERROR(file->Sink::write(bytes));
  return file->commit();
}

AtomicDir::AtomicDir(fs::path target, fs::path temp) : target_(std::move(target)), temp_(std::move(temp)) {}

AtomicDir::AtomicDir(AtomicDir&& other) noexcept
    : target_(std::move(other.target_)), temp_(std::move(other.temp_)), committed_(other.committed_) {
  other.committed_ = true;  // the moved-from object owns nothing
}

Result<AtomicDir> AtomicDir::create(const fs::path& target) {
  std::error_code ec;
  if (fs::exists(fs::symlink_status(target, ec)) && !(fs::is_directory(target, ec) && fs::is_empty(target, ec))) {
    return Status::usage("output " + target.string() + " already exists and is not an empty directory");
  }
  fs::path dir = parent_or_dot(target);
  fs::path temp = QR_TRY(make_temporary([&]() -> Result<fs::path> {
    std::string templ = (dir / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
    if (::mkdtemp(templ.data()) == nullptr) {
      return Status::from_errno("create temporary directory next to " + target.string(), errno);
    }
    ::chmod(templ.c_str(), 0755);
    return fs::path(templ);
  }));
  return AtomicDir(target, temp);
}

AtomicDir::~AtomicDir() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(temp_, ec);
    unregister_temporary(temp_);
  }
}

Status AtomicDir::commit() {
  std::error_code ec;
  if (fs::is_directory(target_, ec) && fs::is_empty(target_, ec)) fs::remove(target_, ec);
  if (::rename(temp_.c_str(), target_.c_str()) != 0) return Status::from_errno("rename to " + target_.string(), errno);
  committed_ = true;
  unregister_temporary(temp_);
  return fsync_dir(parent_or_dot(target_));
}

Result<TempFile> TempFile::create(const fs::path& dir) {
  fs::path d = temp_parent(dir);
  int fd = ::open(d.c_str(), O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
  if (fd < 0) {
    // Filesystems without O_TMPFILE: create and unlink at once.
    std::string templ = (d / "quorate-spool.XXXXXX").string();
    fd = ::mkostemp(templ.data(), O_CLOEXEC);
    if (fd < 0) return Status::from_errno("create temporary file in " + d.string(), errno);
    ::unlink(templ.c_str());
  }
  return TempFile(fd);
}

TempFile::TempFile(TempFile&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
TempFile& TempFile::operator=(TempFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}
TempFile::~TempFile() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace quorate
