// Root file systems and removal: unpack once per digest, lease a tree to a build (shared flock), and take
// images out of the store (index, unreferenced blobs, trees renamed out of place before they are deleted).
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "quorate/core/file.h"
#include "quorate/core/sha256.h"
#include "quorate/core/temporaries.h"
#include "quorate/imagestore/image_store.h"
#include "quorate/normalize/oci.h"
#include "store_internal.h"

namespace quorate::imagestore {
namespace fs = std::filesystem;
using internal::FileLock;
using internal::LockMode;
using nlohmann::json;

namespace {

// Leftovers named `.<kind>-<hex>-*` in the rootfs directory (a crashed unpack or removal): never trusted.
void remove_leftovers(const fs::path& dir, const std::string& prefix) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().filename().string().rfind(prefix, 0) == 0) (void)remove_tree(e.path());
  }
}

// Unpacks the image into rootfs/<hex> unless it is there (under the tree's exclusive lock).
Status unpack_once(const fs::path& dir, const VerifiedImage& image,
                   const std::function<void(const std::string&)>& progress) {
  std::string hex = digest_hex(image.digest);
  fs::path root = dir / hex;
  // The tree's lock is also what builds hold shared for as long as they use the tree, so waiting for it
  // exclusively would wait for every running build (and, in one process, for itself). Ask without waiting:
  // when it is held and the tree is there, someone holds a lease and nothing is left to do; when it is held
  // and the tree is not there, someone is unpacking it: look again shortly.
  std::error_code ec;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::hours(1);
  std::optional<FileLock> held;
  while (!held) {
    auto lock = FileLock::acquire(dir / (hex + ".lock"), LockMode::kExclusiveIfFree,
                                  "the root file system of image " + image.digest);
    if (lock.ok()) {
      held.emplace(std::move(*lock));
      break;
    }
    if (!lock.status().is_bad_input()) return lock.status();
    if (fs::is_directory(root, ec)) return Status();
    if (std::chrono::steady_clock::now() > give_up) {
      return Status::io("waited an hour for another process to unpack image " + image.digest);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (fs::is_directory(root, ec)) return Status();
  remove_leftovers(dir, ".tmp-" + hex);
  remove_leftovers(dir, ".trash-" + hex);
  std::string templ = (dir / (".tmp-" + hex + "-XXXXXX")).string();
  if (::mkdtemp(templ.data()) == nullptr) return Status::from_errno("create a directory in " + dir.string(), errno);
  fs::path tmp = fs::canonical(templ, ec);
  if (ec) return Status::io("resolve " + templ + ": " + ec.message());
  std::vector<internal::LayerFile> layers;
  uint64_t compressed = 0;
  for (const auto& l : image.layers) {
    layers.push_back({l.digest, l.blob});
    std::error_code size_ec;
    uint64_t size = fs::file_size(l.blob, size_ec);
    if (!size_ec) compressed += size;
  }
  if (progress) {
    progress("unpacking image " + image.digest.substr(0, 19) + " (" + std::to_string(layers.size()) + " layers, " +
             std::to_string(compressed >> 20) + " MiB compressed)");
  }
  Status s = internal::unpack_layers(layers, tmp);
  if (s.ok() && progress) progress("unpacked image " + image.digest.substr(0, 19));
  if (s.ok() && ::rename(tmp.c_str(), root.c_str()) != 0) s = Status::from_errno("rename into " + root.string(), errno);
  if (!s.ok()) {
    (void)remove_tree(tmp);
    return s.with_context("unpack image " + image.digest);
  }
  return Status();
}

}  // namespace

RootfsLease::~RootfsLease() {
  if (fd_ >= 0) ::close(fd_);
}

Result<RootfsLease> ImageStore::rootfs(const VerifiedImage& image,
                                       const std::function<void(const std::string&)>& progress) const {
  std::string hex = digest_hex(image.digest);
  fs::path dir = dir_ / "rootfs";
  fs::path root = dir / hex;
  // Shared lock first; when the tree is absent, unpack it under the exclusive lock and look again (a
  // removal may take it between the two).
  for (int attempt = 0; attempt < 3; ++attempt) {
    {
      auto lock = QR_TRY(FileLock::acquire(dir / (hex + ".lock"), LockMode::kShared));
      std::error_code ec;
      if (fs::is_directory(root, ec)) return RootfsLease(root, lock.release());
    }  // released before the exclusive lock is asked for: this process would otherwise wait for itself
    QR_RETURN_IF_ERROR(unpack_once(dir, image, progress));
  }
  return Status::io("the root file system of image " + image.digest + " was removed while it was being unpacked");
}

Status ImageStore::remove(const std::vector<std::string>& digests) {
  for (const auto& d : digests) QR_RETURN_IF_ERROR(check_digest(d));
  auto store_lock = QR_TRY(FileLock::acquire(dir_ / ".lock"));
  auto index = QR_TRY(internal::read_index(dir_));
  std::set<std::string> doomed(digests.begin(), digests.end()), listed;
  for (const auto& i : QR_TRY(internal::images_of(index, internal::index_name(dir_)))) listed.insert(i.digest);
  for (const auto& d : doomed) {
    if (!listed.count(d)) return Status::not_found("image " + d + " is not in the image store " + dir_.string());
  }
  // What the remaining images need stays; a remaining manifest that cannot be read stops the removal.
  std::set<std::string> kept, candidates;
  for (const auto& d : listed) {
    if (doomed.count(d)) continue;
    auto blobs = internal::blobs_of(dir_, d);
    if (!blobs.ok()) return blobs.status().with_context("image " + d + " stays, but its blobs cannot be listed");
    kept.insert(blobs->begin(), blobs->end());
  }
  for (const auto& d : doomed) {
    auto blobs = internal::blobs_of(dir_, d);
    candidates.insert(d);
    if (blobs.ok()) candidates.insert(blobs->begin(), blobs->end());
  }
  // Trees first, each under its own lock, refused while a build holds it; all or nothing.
  fs::path rootfs_dir = dir_ / "rootfs";
  std::vector<FileLock> tree_locks;
  for (const auto& d : doomed) {
    std::string hex = digest_hex(d);
    tree_locks.push_back(QR_TRY(FileLock::acquire(rootfs_dir / (hex + ".lock"), LockMode::kExclusiveIfFree,
                                                  "the root file system of image " + d)));
  }
  std::vector<fs::path> trash;
  for (const auto& d : doomed) {
    std::string hex = digest_hex(d);
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(rootfs_dir / hex, ec))) continue;
    std::string templ = (rootfs_dir / (".trash-" + hex + "-XXXXXX")).string();
    if (::mkdtemp(templ.data()) == nullptr)
      return Status::from_errno("create a directory in " + rootfs_dir.string(), errno);
    fs::path to = fs::path(templ) / hex;
    if (::rename((rootfs_dir / hex).c_str(), to.c_str()) != 0)
      return Status::from_errno("move " + hex + " out of place", errno);
    trash.push_back(templ);
  }
  json kept_entries = json::array();
  for (const auto& m : index["manifests"]) {
    if (!(m.is_object() && m.contains("digest") && m["digest"].is_string() && doomed.count(m["digest"])))
      kept_entries.push_back(m);
  }
  index["manifests"] = kept_entries;
  QR_RETURN_IF_ERROR(internal::write_index(dir_, index));
  for (const auto& d : candidates) {
    if (kept.count(d)) continue;
    std::error_code ec;
    internal::forget_verified(dir_, d);
    fs::remove(internal::blob_path(dir_, d), ec);
    if (ec) return Status::io("remove blob " + d + ": " + ec.message());
  }
  tree_locks.clear();
  for (const auto& t : trash) QR_RETURN_IF_ERROR(remove_tree(t));
  for (const auto& d : doomed) remove_leftovers(rootfs_dir, ".trash-" + digest_hex(d));
  return Status();
}

}  // namespace quorate::imagestore
