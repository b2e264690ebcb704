// Helpers shared by the store's files: blob paths, file locks, hashing, the index, blob copies.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "quorate/core/status.h"
#include "quorate/imagestore/image_store.h"
#include "quorate/normalize/compress.h"
#include "quorate/normalize/options.h"

namespace quorate::normalize {
class ImageFiles;
}

namespace quorate::imagestore::internal {

inline constexpr uint64_t kMaxJsonBytes = 16u << 20;

std::filesystem::path blob_path(const std::filesystem::path& store, const std::string& digest);
// `<store>/tmp`: archives being extracted and pulls in flight (each in its own fresh directory).
std::filesystem::path temp_dir(const std::filesystem::path& store);

enum class LockMode { kExclusive, kShared, kExclusiveIfFree };

// A flock() on `path` (created when absent), released on destruction. kExclusiveIfFree: bad_input naming
// `busy_what` when another holder has it, instead of waiting.
class FileLock {
 public:
  static Result<FileLock> acquire(const std::filesystem::path& path, LockMode mode = LockMode::kExclusive,
                                  const std::string& busy_what = "");
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock();
  // Gives up ownership of the descriptor (still locked) to the caller.
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// Layer blobs hashed once, not on every build (docs/decisions.md, "Verified layer blobs"): when a layer blob
// hashes to its digest, `<store>/verified/<hex>` records the blob's device, inode, size, mtime and ctime, its
// diff_id and its expanded size, and a later verify skips the hash while the blob's stat is still exactly
// that. Any write, truncate, rename over, chmod or touch of the blob moves its ctime, which no unprivileged
// process can set.
//
// Both digests of a layer blob that must hash to `digest` (normalize::layer_blob_digests, decompressing at
// most `max_expanded` bytes, counted into `together`), recorded unless the blob changed during the hash, or
// its ctime is less than 2 s older than the hash's start by the file system's own clock (a write in the same
// clock tick might not move ctime). A record that cannot be written is no error.
Result<normalize::LayerBlobDigests> hash_layer_blob(const std::filesystem::path& store, const std::string& digest,
                                                    const std::filesystem::path& blob, uint64_t max_expanded,
                                                    normalize::ExpandedTotal& together);
// The diff_id and expanded size recorded for `digest` when the record matches the blob's stat now; nothing
// otherwise (also for a record written before they were recorded). The digest field is `digest`.
std::optional<normalize::LayerBlobDigests> verified_layer(const std::filesystem::path& store, const std::string& digest,
                                                          const std::filesystem::path& blob);
// Forgets the record of `digest` (its blob is being removed).
void forget_verified(const std::filesystem::path& store, const std::string& digest);

Result<nlohmann::json> parse_json(const std::string& bytes, const std::string& what);

// Copies `src` to the store blob `digest` unless it is there already, checking the bytes on the way;
// bad_input naming `what` and both digests on a mismatch, or both sizes when `src` is not `size` bytes long
// (the size a descriptor gives).
Status copy_blob(const std::filesystem::path& store, const std::filesystem::path& src, const std::string& digest,
                 const std::string& what, std::optional<uint64_t> size = std::nullopt);
// The blobs an import or pull adds to the store, removed again on destruction unless keep() was called, and
// by a command's SIGINT/SIGTERM handling (add_interrupt_undo) while it lives: a failed or interrupted one
// leaves the store as it was (complete blobs no index entry lists would stay for good: `rm` collects only the
// blobs of images it removes). A blob the index lists is never removed (an import interrupted once it wrote
// the index), nor anything when the index or a manifest it lists cannot be read. Made and destroyed under
// the store lock, so no other import can come to rely on a new blob meanwhile. Made, it first removes what a
// killed import left: the blobs no index entry lists and the `.HEX.tmp.*` copies, older than this process.
class NewBlobs {
 public:
  explicit NewBlobs(const std::filesystem::path& store);
  NewBlobs(const NewBlobs&) = delete;
  NewBlobs& operator=(const NewBlobs&) = delete;
  ~NewBlobs();
  void keep() { keep_ = true; }

 private:
  void remove_added() const noexcept;
  std::filesystem::path store_;
  std::set<std::string> before_;
  uint64_t undo_ = 0;
  bool keep_ = false;
};

// Writes `bytes` as a store blob; returns its digest.
Result<std::string> write_blob(const std::filesystem::path& store, const std::string& bytes);

// The store's index.json (an empty one when absent), the images it lists, and an atomic rewrite of it.
// The caller holds the store lock (`<store>/.lock`) around read-modify-write. images_of refuses an index with
// an entry that is not a descriptor (bad_input naming `where` and the entry): skipping it would leave its image
// listed in the file but unknown to `rm`, which could then collect the blobs it shares.
Result<nlohmann::json> read_index(const std::filesystem::path& store);
// Every blob the manifest `digest` names (itself, its config, its layers); bad_input when it cannot be read.
Result<std::set<std::string>> blobs_of(const std::filesystem::path& store, const std::string& digest);
std::string index_name(const std::filesystem::path& store);  // "image store index <store>/index.json"
Result<std::vector<StoredImage>> images_of(const nlohmann::json& index, const std::string& where);
Status write_index(const std::filesystem::path& store, const nlohmann::json& index);
// Adds the images to index.json (an image already listed is kept as it is).
Status add_to_index(const std::filesystem::path& store, const std::vector<StoredImage>& images);

// The images of an OCI layout (directory or extracted oci-archive) / of a docker-archive, copied into the
// store (blobs only: the caller adds them to the index). `source` names the input in messages.
Result<std::vector<StoredImage>> import_oci_files(const std::filesystem::path& store,
                                                  const normalize::ImageFiles& files, const std::string& source);
Result<std::vector<StoredImage>> import_docker_files(const std::filesystem::path& store,
                                                     const normalize::ImageFiles& files, const std::string& source);

// The root file system of verified layers, unpacked into `dir` (which exists and is empty).
struct LayerFile {
  std::string digest;
  std::filesystem::path blob;
};
Status unpack_layers(const std::vector<LayerFile>& layers, const std::filesystem::path& dir);

}  // namespace quorate::imagestore::internal
