// in_private_mounts, mount_overlay and add_upper_dir: the overlay half of Containerfile RUN and COPY layers.
#include "overlay.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <thread>

#include "output_tree.h"

namespace quorate::builder {
namespace fs = std::filesystem;
using normalize::Entry;
using normalize::EntryType;

Status in_private_mounts(const std::function<Status()>& fn) {
  Status result;
  std::thread worker([&] {
    // Only this thread's file system context moves to the new namespace (CLONE_NEWNS implies CLONE_FS).
    if (::unshare(CLONE_NEWNS) != 0) {
      int e = errno;
      result = Status::unsupported(std::string("cannot make a private mount namespace (") + std::strerror(e) +
                                   "): Containerfile RUN and COPY need root (CAP_SYS_ADMIN) on the build machine");
      return;
    }
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      result = Status::from_errno("make mounts private", errno);
      return;
    }
    try {
      result = fn();
    } catch (const std::exception& e) {
      result = Status::internal(std::string("in a private mount namespace: ") + e.what());
    }
  });
  worker.join();
  return result;
}

Result<fs::path> expose_for_user(const fs::path& merged, const fs::path& work) {
  std::error_code ec;
  fs::path abs_work = fs::weakly_canonical(fs::absolute(work, ec), ec);
  auto under = [&](const char* dir) {
    auto rel = abs_work.lexically_relative(dir);
    return !rel.empty() && *rel.begin() != "..";
  };
  fs::path base = under("/run") ? "/tmp" : "/run";
  if (::mount("tmpfs", base.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k") != 0) {
    return Status::from_errno("mount a tmpfs over " + base.string() + " (private)", errno);
  }
  fs::path target = base / "quorate-stage";
  if (::mkdir(target.c_str(), 0755) != 0) return Status::from_errno("mkdir " + target.string(), errno);
  if (::mount(merged.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return Status::from_errno("bind " + merged.string() + " at " + target.string(), errno);
  }
  return target;
}

Status mount_overlay(const std::vector<fs::path>& lowers, const fs::path& upper, const fs::path& work,
                     const fs::path& merged) {
  std::string options = "lowerdir=";
  std::vector<fs::path> all = lowers;
  if (!upper.empty()) all.insert(all.end(), {upper, work});
  for (const auto& p : all) {
    if (p.string().find_first_of(":,\\") != std::string::npos) {
      return Status::unsupported("overlay directory " + p.string() + " holds ':', ',' or '\\'; use another --work-dir");
    }
  }
  for (size_t i = 0; i < lowers.size(); ++i) options += (i ? ":" : "") + lowers[i].string();
  if (!upper.empty()) options += ",upperdir=" + upper.string() + ",workdir=" + work.string();
  options += ",redirect_dir=off,metacopy=off,index=off,xino=off";
  if (options.size() >= 4000)
    return Status::unsupported("too many layers for one overlay mount (" + std::to_string(lowers.size()) + ")");
  if (::mount("overlay", merged.c_str(), "overlay", 0, options.c_str()) != 0) {
    return Status::from_errno("mount overlay at " + merged.string(), errno);
  }
  return Status();
}

namespace {

std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash + 1);
}

std::string name_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

Entry whiteout(const std::string& path) {
  Entry e;
  e.path = path;
  e.type = EntryType::kFile;
  e.mode = 0;
  return e;
}

}  // namespace

Status add_upper_dir(const fs::path& dir, uint64_t max_bytes, uint64_t& bytes, normalize::CanonicalLayerWriter& writer,
                     const std::function<Status()>& keep_going) {
  OutputLimits limits;
  limits.max_bytes = max_bytes;
  auto entries = QR_TRY(read_output_tree(dir, limits, bytes));
  HardlinkPaths links;
  for (const OutputEntry& o : entries) {
    QR_RETURN_IF_ERROR(keep_going());
    const struct stat& st = o.st;
    if (S_ISCHR(st.st_mode) && st.st_rdev == 0) {  // overlayfs's deletion mark
      QR_RETURN_IF_ERROR(writer.add(whiteout(parent_of(o.path) + ".wh." + name_of(o.path))));
      continue;
    }
    Entry e;
    e.path = o.path;
    e.uid = st.st_uid;
    e.gid = st.st_gid;
    e.mtime = st.st_mtim.tv_sec;
    e.mode = st.st_mode & 07777;
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      e.type = S_ISCHR(st.st_mode) ? EntryType::kCharDevice : EntryType::kBlockDevice;
      e.devmajor = major(st.st_rdev);
      e.devminor = minor(st.st_rdev);
      QR_RETURN_IF_ERROR(writer.add(std::move(e)));
    } else if (!QR_TRY(add_output_entry(writer, std::move(e), o, dir / o.path, links))) {
      return Status::bad_input("a socket cannot be part of a layer: " + o.path);
    }
    if (S_ISDIR(st.st_mode) && o.opaque) {
      QR_RETURN_IF_ERROR(writer.add(whiteout(o.path + "/.wh..wh..opq")));
    }
  }
  return Status();
}

}  // namespace quorate::builder
