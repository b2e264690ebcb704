// The source tree of one commit, read from the Git object database (libgit2) — never from a working directory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "quorate/core/status.h"

namespace quorate::builder {

struct TreeEntry {
  enum class Kind { kFile, kExecutable, kSymlink, kDirectory };
  std::string path;  // relative, '/'-separated, as stored in Git
  Kind kind = Kind::kFile;
  std::string oid;    // blob id (hex); empty for directories
  uint64_t size = 0;  // the blob's size in bytes (from its header; 0 for directories)
};

// What one commit's files may weigh, checked when it is opened from the object database's headers, before any
// blob is read (a blob is read whole, and Git stores a gigabyte of zeros in a megabyte): a file of more than
// kMaxFileBytes, files totalling more than kMaxTreeBytes counted once per tree entry that names them, or a
// symlink whose target is kMaxLinkTargetBytes or longer, get bad_input naming the commit. Bounds of the commit alone,
// so honest nodes agree on them.
inline constexpr uint64_t kMaxFileBytes = uint64_t{1} << 30;
inline constexpr uint64_t kMaxTreeBytes = uint64_t{16} << 30;
inline constexpr uint64_t kMaxLinkTargetBytes = 4096;  // PATH_MAX: a symlink's target is shorter
// What a commit's tree may list, checked as it is walked: empty files weigh nothing, and a few kilobytes of
// trees naming trees list billions of entries (1000 x 1000 x 1000), each held with its path. At most
// kMaxTreeEntries entries (directories included), nested at most kMaxTreeDepth levels (as a build's output
// may be), whose paths total at most kMaxTreePathBytes (a path is held whole, so a deep chain costs its
// depth squared).
inline constexpr uint64_t kMaxTreeEntries = 1'000'000;
inline constexpr size_t kMaxTreeDepth = 256;
inline constexpr uint64_t kMaxTreePathBytes = uint64_t{256} << 20;

// The most a clone of a URL may receive (the pack, as sent): a build request names the URL, and libgit2 writes
// whatever the server sends. The Linux kernel's whole history is about 5 GB.
inline constexpr uint64_t kMaxCloneBytes = uint64_t{16} << 30;

// What ends a clone of a URL early: past `max_bytes` received, or when `keep_going` (asked as data arrives)
// says why not (the build's deadline, a cancel).
struct CloneLimits {
  uint64_t max_bytes = kMaxCloneBytes;
  std::function<Status()> keep_going;
};

// One resolved commit of one repository. Not thread-safe (libgit2 objects are not shared between threads).
class GitSource {
 public:
  // Opens `repo` — a local repository path (working clone or bare; only its object database is read) or a URL
  // libgit2 can clone (file://, https://, ssh://), which is cloned bare into a fresh directory under
  // `clone_dir` and removed on destruction — and resolves `rev` to a commit.
  // not_found for a missing repository or revision, io naming the URL when cloning fails; a clone `limits`
  // ends is bad_input naming the bound, or the error `keep_going` gave. A server that stalls without sending
  // is not noticed until it sends again (libgit2 1.5 has no socket timeout).
  static Result<std::unique_ptr<GitSource>> open(const std::string& repo, const std::string& rev,
                                                 const std::filesystem::path& clone_dir,
                                                 const CloneLimits& limits = {});
  ~GitSource();

  const std::string& commit_id() const { return commit_; }
  const std::string& tree_id() const { return tree_; }
  int64_t commit_time() const { return commit_time_; }  // committer time, seconds since the epoch

  // Every entry of the commit's tree (directories included), sorted by path bytewise. Submodules are
  // refused (unsupported naming the path): their content is not in this repository.
  const std::vector<TreeEntry>& entries() const { return entries_; }

  // The bytes of a blob; internal when the object database fails.
  Result<std::string> read_blob(const std::string& oid) const;
  // The bytes of the file at `path` in the commit; not_found naming the path and commit.
  Result<std::string> read_path(const std::string& path) const;
  // Writes the tree into `dir` (which must exist and be empty): files 0644 or 0755, symlinks as stored,
  // every mtime set to `mtime` so that nothing of the checkout's time reaches a build. Every file is created
  // relative to its parent's descriptor, opened without following symlinks: nothing is written outside `dir`.
  Status checkout(const std::filesystem::path& dir, int64_t mtime) const;

 private:
  struct Impl;
  explicit GitSource(std::unique_ptr<Impl> impl);
  Status load(const std::string& rev);
  std::unique_ptr<Impl> impl_;
  std::string commit_;
  std::string tree_;
  int64_t commit_time_ = 0;
  std::vector<TreeEntry> entries_;
};

// Git fsck's rule for one tree entry name, applied to every entry before anything is written: bad_input naming
// the entry (`dir` is its parent path with a trailing '/', or empty) when the name is empty, holds '/' or NUL,
// is "." or "..", or is ".git" in any case or filesystem alias. A commit with such an entry is refused whole.
Status check_tree_entry_name(const std::string& dir, std::string_view name);

// True when `repo` is a URL to clone rather than a local path ("scheme://…" or "user@host:path").
bool is_remote(const std::string& repo);

// The libgit2 version, e.g. "1.5.1".
std::string libgit2_version();

}  // namespace quorate::builder
