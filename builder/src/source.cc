// GitSource over libgit2: open or clone, resolve a revision, list the tree, read blobs, materialize a checkout.
#include "quorate/builder/source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <optional>
#include <system_error>
#include <utility>

#include "quorate/core/display.h"
#include "quorate/core/file.h"
#include "quorate/core/sha256.h"
#include "quorate/core/temporaries.h"
#include "quorate/git/git.h"

namespace quorate::builder {
namespace {

using git::oid_hex;
template <class T, void (*Free)(T*)>
using GitPtr = git::Ptr<T, Free>;

// A descriptor closed on destruction.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd, o.fd);
    return *this;
  }
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status set_times_at(int dir, const char* name, const std::string& what, int64_t mtime) {
  struct timespec ts[2];
  ts[0].tv_sec = ts[1].tv_sec = static_cast<time_t>(mtime);
  ts[0].tv_nsec = ts[1].tv_nsec = 0;
  int rc = *name == '\0' ? ::futimens(dir, ts) : ::utimensat(dir, name, ts, AT_SYMLINK_NOFOLLOW);
  if (rc != 0) return Status::from_errno("set the time of " + what, errno);
  return Status();
}

// Opens the directory `rel` ('/'-separated, validated names; empty for `root` itself) one component at a
// time, never following a symlink: a checkout cannot be redirected outside its directory.
Result<Fd> open_dir_nofollow(int root, const std::string& rel) {
  Fd dir(::fcntl(root, F_DUPFD_CLOEXEC, 0));
  if (dir.fd < 0) return Status::from_errno("dup a directory descriptor", errno);
  size_t start = 0;
  while (start < rel.size()) {
    size_t slash = rel.find('/', start);
    if (slash == std::string::npos) slash = rel.size();
    std::string name = rel.substr(start, slash - start);
    Fd next(::openat(dir.fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (next.fd < 0) return Status::from_errno("open directory " + rel.substr(0, slash) + " of the checkout", errno);
    dir = std::move(next);
    start = slash + 1;
  }
  return dir;
}

// A checkout is scratch space: no fsync, unlike write_file_atomic.
Status write_plain_at(int dir, const char* name, const std::string& what, const std::string& bytes, uint32_t mode) {
  Fd fd(::openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.fd < 0) return Status::from_errno("create " + what, errno);
  QR_RETURN_IF_ERROR(
      write_all(fd.fd, std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), what.c_str()));
  if (::fchmod(fd.fd, mode) != 0) return Status::from_errno("chmod " + what, errno);
  return Status();
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(uint8_t(x)) == std::tolower(uint8_t(y));
         });
}

}  // namespace

Status check_tree_entry_name(const std::string& dir, std::string_view name) {
  auto refuse = [&](const std::string& why) {
    return Status::bad_input("hostile tree entry \"" + dir + mask_control(name) + "\": " + why);
  };
  if (name.empty()) return refuse("empty name");
  if (name.find('/') != std::string_view::npos) return refuse("a name containing '/'");
  if (name.find('\0') != std::string_view::npos) return refuse("a name containing NUL");
  if (name == "." || name == "..") return refuse("a '.' or '..' component");
  // ".git" in any case, and the aliases other filesystems resolve to it (trailing dots and spaces on NTFS,
  // its 8.3 short name), as git's own fsck refuses them.
  std::string_view trimmed = name;
  while (!trimmed.empty() && (trimmed.back() == '.' || trimmed.back() == ' ')) trimmed.remove_suffix(1);
  if (equals_ignoring_case(trimmed, ".git") || equals_ignoring_case(trimmed, "git~1"))
    return refuse("a '.git' component");
  return Status();
}

namespace {}  // namespace

// Members are destroyed in reverse: the repository is freed before its clone is removed and libgit2 shut down.
struct GitSource::Impl {
  git::Library lib;
  std::optional<TempDir> clone;  // a remote repository's bare clone
  git::Repository repo;
};

bool is_remote(const std::string& repo) {
  if (repo.find("://") != std::string::npos) return true;
  auto at = repo.find('@');
  auto colon = repo.find(':');
  auto slash = repo.find('/');
  return at != std::string::npos && colon != std::string::npos && at < colon &&
         (slash == std::string::npos || colon < slash);
}

std::string libgit2_version() {
  int major = 0, minor = 0, rev = 0;
  git_libgit2_version(&major, &minor, &rev);
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(rev);
}

GitSource::GitSource(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GitSource::~GitSource() = default;

Result<std::unique_ptr<GitSource>> GitSource::open(const std::string& repo, const std::string& rev,
                                                   const std::filesystem::path& clone_dir, const CloneLimits& limits) {
  auto impl = std::make_unique<Impl>();
  if (is_remote(repo)) {
    std::error_code ec;
    std::filesystem::create_directories(clone_dir, ec);
    if (ec) return Status::io("create " + clone_dir.string() + ": " + ec.message());
    impl->clone.emplace(QR_TRY(TempDir::create(clone_dir, "clone-")));
    std::string dir = impl->clone->path().string();
    git_clone_options opts;
    git_clone_options_init(&opts, GIT_CLONE_OPTIONS_VERSION);
    opts.bare = 1;
    opts.checkout_opts.checkout_strategy = GIT_CHECKOUT_NONE;
    struct Watch {
      const CloneLimits& limits;
      Status ended;
      int check(uint64_t received) {
        if (received > limits.max_bytes) {
          ended = Status::bad_input("the clone received more than " + std::to_string(limits.max_bytes) + " bytes");
        } else if (limits.keep_going) {
          ended = limits.keep_going();
        }
        return ended.ok() ? 0 : -1;
      }
    } watch{limits, {}};
    opts.fetch_opts.callbacks.payload = &watch;
    opts.fetch_opts.callbacks.transfer_progress = [](const git_indexer_progress* stats, void* payload) {
      return static_cast<Watch*>(payload)->check(stats->received_bytes);
    };
    opts.fetch_opts.callbacks.sideband_progress = [](const char*, int, void* payload) {
      return static_cast<Watch*>(payload)->check(0);
    };
    if (git_clone(&impl->repo.p, repo.c_str(), dir.c_str(), &opts) != 0) {
      impl->repo.p = nullptr;
      if (!watch.ended.ok()) return watch.ended.with_context("clone " + repo);
      return Status::not_found("cannot clone repository " + repo + ": " + git::last_error());
    }
  } else {
    QR_RETURN_IF_ERROR(git::open_repository(repo, impl->repo));
  }
  std::unique_ptr<GitSource> source(new GitSource(std::move(impl)));
  QR_RETURN_IF_ERROR(source->load(rev));
  return source;
}

Status GitSource::load(const std::string& rev) {
  GitPtr<git_object, git_object_free> obj;
  if (rev.empty()) return Status::usage("no commit given");
  if (git_revparse_single(&obj.p, impl_->repo.p, rev.c_str()) != 0) {
    return Status::not_found("commit \"" + rev + "\" not found: " + git::last_error());
  }
  GitPtr<git_object, git_object_free> peeled;
  if (git_object_peel(&peeled.p, obj.p, GIT_OBJECT_COMMIT) != 0) {
    return Status::not_found("\"" + rev + "\" does not name a commit: " + git::last_error());
  }
  auto* commit = reinterpret_cast<git_commit*>(peeled.p);
  commit_ = oid_hex(git_commit_id(commit));
  tree_ = oid_hex(git_commit_tree_id(commit));
  commit_time_ = static_cast<int64_t>(git_commit_time(commit));
  GitPtr<git_tree, git_tree_free> tree;
  if (git_commit_tree(&tree.p, commit) != 0)
    return Status::internal("read tree of " + commit_ + ": " + git::last_error());

  GitPtr<git_odb, git_odb_free> odb;
  if (git_repository_odb(&odb.p, impl_->repo.p) != 0)
    return Status::internal("open object database: " + git::last_error());
  struct Walk {
    std::vector<TreeEntry>* out;
    git_odb* odb;
    std::string submodule;
    Status refused;
    uint64_t total = 0;
    uint64_t path_bytes = 0;
  } walk{&entries_, odb.p, {}, {}};
  auto cb = [](const char* root, const git_tree_entry* e, void* payload) -> int {
    auto* w = static_cast<Walk*>(payload);
    Status named = check_tree_entry_name(root, git_tree_entry_name(e));
    if (!named.ok()) {
      w->refused = std::move(named);
      return -1;
    }
    const size_t depth = static_cast<size_t>(std::count(root, root + std::strlen(root), '/')) + 1;
    if (depth > kMaxTreeDepth) {
      w->refused = Status::bad_input("its tree nests deeper than " + std::to_string(kMaxTreeDepth) + " levels (at " +
                                     std::string(root).substr(0, 200) + "...)");
      return -1;
    }
    if (w->out->size() >= kMaxTreeEntries) {
      w->refused = Status::bad_input("its tree lists more than " + std::to_string(kMaxTreeEntries) + " entries (at " +
                                     std::string(root) + git_tree_entry_name(e) + ")");
      return -1;
    }
    w->path_bytes += std::strlen(root) + std::strlen(git_tree_entry_name(e));
    if (w->path_bytes > kMaxTreePathBytes) {
      w->refused = Status::bad_input("its paths total more than " + std::to_string(kMaxTreePathBytes) + " bytes (at " +
                                     std::string(root).substr(0, 200) + "...)");
      return -1;
    }
    TreeEntry t;
    t.path = std::string(root) + git_tree_entry_name(e);
    switch (git_tree_entry_filemode(e)) {
      case GIT_FILEMODE_TREE:
        t.kind = TreeEntry::Kind::kDirectory;
        break;
      case GIT_FILEMODE_BLOB_EXECUTABLE:
        t.kind = TreeEntry::Kind::kExecutable;
        break;
      case GIT_FILEMODE_LINK:
        t.kind = TreeEntry::Kind::kSymlink;
        break;
      case GIT_FILEMODE_COMMIT:
        w->submodule = t.path;
        return -1;
      default:
        t.kind = TreeEntry::Kind::kFile;
        break;
    }
    if (t.kind != TreeEntry::Kind::kDirectory) {
      t.oid = oid_hex(git_tree_entry_id(e));
      size_t size = 0;
      git_object_t type = GIT_OBJECT_INVALID;
      int rc = git_odb_read_header(&size, &type, w->odb, git_tree_entry_id(e));
      if (rc == GIT_ENOTFOUND) {
        w->refused = Status::bad_input("file " + t.path + " names blob " + t.oid + ", which the repository lacks");
        return -1;
      }
      if (rc != 0) {
        w->refused = Status::internal("read the header of blob " + t.oid + " (" + t.path + "): " + git::last_error());
        return -1;
      }
      if (type != GIT_OBJECT_BLOB) {
        w->refused = Status::bad_input("file " + t.path + " names " + t.oid + ", which is not a blob");
        return -1;
      }
      t.size = size;
      if (t.size > kMaxFileBytes) {
        w->refused = Status::bad_input("file " + t.path + " is " + std::to_string(t.size) +
                                       " bytes; a file may be at most " + std::to_string(kMaxFileBytes));
        return -1;
      }
      // A link's target is at most PATH_MAX (symlinkat refuses longer ones), but a layer would carry any length.
      if (t.kind == TreeEntry::Kind::kSymlink && t.size >= kMaxLinkTargetBytes) {
        w->refused = Status::bad_input("symlink " + t.path + " has a target of " + std::to_string(t.size) +
                                       " bytes; at most " + std::to_string(kMaxLinkTargetBytes - 1));
        return -1;
      }
      w->total += t.size;
      if (w->total > kMaxTreeBytes) {
        w->refused = Status::bad_input("its files total more than " + std::to_string(kMaxTreeBytes) +
                                       " bytes (each counted once per tree entry naming it; at " + t.path + ")");
        return -1;
      }
    }
    w->out->push_back(std::move(t));
    return 0;
  };
  int rc = git_tree_walk(tree.p, GIT_TREEWALK_PRE, cb, &walk);
  if (!walk.submodule.empty()) {
    return Status::unsupported("commit " + commit_ + " has a submodule at " + walk.submodule +
                               "; submodules are not part of the commit's content and are not supported");
  }
  if (!walk.refused.ok()) return walk.refused.with_context("commit " + commit_);
  if (rc != 0) return Status::internal("walk tree of " + commit_ + ": " + git::last_error());
  std::sort(entries_.begin(), entries_.end(), [](const TreeEntry& a, const TreeEntry& b) { return a.path < b.path; });
  // Git refuses a tree naming one entry twice (a symlink and a directory of the same name, say).
  auto twice = std::adjacent_find(entries_.begin(), entries_.end(),
                                  [](const TreeEntry& a, const TreeEntry& b) { return a.path == b.path; });
  if (twice != entries_.end()) {
    return Status::bad_input("commit " + commit_ + ": hostile tree entry \"" + twice->path + "\": listed twice");
  }
  return Status();
}

Result<std::string> GitSource::read_blob(const std::string& oid_text) const {
  git_oid oid;
  if (git_oid_fromstr(&oid, oid_text.c_str()) != 0) return Status::internal("bad blob id " + oid_text);
  GitPtr<git_blob, git_blob_free> blob;
  if (git_blob_lookup(&blob.p, impl_->repo.p, &oid) != 0) {
    return Status::internal("read blob " + oid_text + ": " + git::last_error());
  }
  const char* data = static_cast<const char*>(git_blob_rawcontent(blob.p));
  return std::string(data, static_cast<size_t>(git_blob_rawsize(blob.p)));
}

Result<std::string> GitSource::read_path(const std::string& path) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), path,
                             [](const TreeEntry& e, const std::string& p) { return e.path < p; });
  if (it == entries_.end() || it->path != path || it->kind == TreeEntry::Kind::kDirectory) {
    return Status::not_found(path + " is not a file in commit " + commit_);
  }
  return read_blob(it->oid);
}

Status GitSource::checkout(const std::filesystem::path& dir, int64_t mtime) const {
  Fd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (root.fd < 0) return Status::from_errno("open checkout directory " + dir.string(), errno);
  std::vector<const TreeEntry*> dirs;
  for (const auto& e : entries_) {
    size_t slash = e.path.rfind('/');
    std::string parent = slash == std::string::npos ? "" : e.path.substr(0, slash);
    std::string name = slash == std::string::npos ? e.path : e.path.substr(slash + 1);
    QR_RETURN_IF_ERROR(check_tree_entry_name(parent.empty() ? "" : parent + "/", name));
    Fd at = QR_TRY(open_dir_nofollow(root.fd, parent));
    const std::string what = (dir / e.path).string();
    if (e.kind == TreeEntry::Kind::kDirectory) {
      if (::mkdirat(at.fd, name.c_str(), 0755) != 0) return Status::from_errno("mkdir " + what, errno);
      if (::fchmodat(at.fd, name.c_str(), 0755, 0) != 0) return Status::from_errno("chmod " + what, errno);
      dirs.push_back(&e);
      continue;
    }
    auto bytes = QR_TRY(read_blob(e.oid));
    if (e.kind == TreeEntry::Kind::kSymlink) {
      // Kept as a link, never followed here: only the sandboxed steps resolve it, inside the sandbox.
      if (::symlinkat(bytes.c_str(), at.fd, name.c_str()) != 0) return Status::from_errno("symlink " + what, errno);
    } else {
      uint32_t mode = e.kind == TreeEntry::Kind::kExecutable ? 0755 : 0644;
      QR_RETURN_IF_ERROR(write_plain_at(at.fd, name.c_str(), what, bytes, mode));
    }
    QR_RETURN_IF_ERROR(set_times_at(at.fd, name.c_str(), what, mtime));
  }
  // Directory times last: creating their entries changed them.
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    Fd d = QR_TRY(open_dir_nofollow(root.fd, (*it)->path));
    QR_RETURN_IF_ERROR(set_times_at(d.fd, "", (dir / (*it)->path).string(), mtime));
  }
  if (::fchmod(root.fd, 0755) != 0) return Status::from_errno("chmod " + dir.string(), errno);
  return set_times_at(root.fd, "", dir.string(), mtime);
}

}  // namespace quorate::builder
