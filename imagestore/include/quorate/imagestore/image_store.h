// The image store: images a build may use, kept byte for byte and found only by their manifest digest.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "quorate/core/status.h"

namespace quorate::imagestore {

struct StoredImage {
  std::string digest;      // "sha256:…" of the manifest: the only way a build names it
  std::string ref_name;    // org.opencontainers.image.ref.name as imported (informational; may be empty)
  uint64_t size = 0;       // the manifest's size
  std::string media_type;  // the manifest's (OCI, or Docker v2 schema 2 as a registry served it); empty: OCI
};

struct VerifiedLayer {
  std::string media_type;
  std::string digest;
  std::filesystem::path blob;
};

// An image whose manifest and config were hashed against the pin in this process, and every layer blob too, or
// found unchanged (same inode, size, mtime and ctime) since it was (docs/decisions.md, "Verified layer blobs").
struct VerifiedImage {
  std::string digest;
  nlohmann::json config;  // the parsed config blob
  std::vector<VerifiedLayer> layers;
};

// An unpacked root file system in use: while this object lives it holds a shared flock() on the tree's lock
// file, so `ImageStore::remove` refuses to take the tree away from under a running build. Move-only.
class RootfsLease {
 public:
  RootfsLease(RootfsLease&& other) noexcept : path_(std::move(other.path_)), fd_(other.fd_) { other.fd_ = -1; }
  RootfsLease& operator=(RootfsLease&&) = delete;
  ~RootfsLease();
  const std::filesystem::path& path() const { return path_; }

 private:
  friend class ImageStore;
  RootfsLease(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::filesystem::path path_;
  int fd_ = -1;
};

// Where `ImageStore::pull` gets an image from, and how.
struct PullOptions {
  std::string reference;         // "NAME@sha256:HEX" (NAME may carry a :tag, which is dropped); a tag alone is refused
  std::filesystem::path skopeo;  // the skopeo executable (the caller finds it; the library reads no PATH)
  bool insecure_registry =
      false;  // plain HTTP / unverified TLS (skopeo --src-tls-verify=false): loopback test registries
  std::chrono::seconds timeout{1800};                // skopeo is killed after this long
  std::function<void(const std::string&)> progress;  // progress lines; may be empty
};

// A directory that is itself an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`), plus
// `rootfs/<hex>/`: each image's root file system, unpacked once. Safe for several processes at once: imports
// and removals hold the store's flock(), unpacking and using a tree hold its own; blobs and root file systems
// appear and disappear by atomic rename only.
class ImageStore {
 public:
  // Opens (creating when absent) the store at `dir`, made absolute against the current directory (root file
  // systems are bound into sandboxes, whose working directory is `/`). io when it cannot be created.
  static Result<ImageStore> open(const std::filesystem::path& dir);
  const std::filesystem::path& dir() const { return dir_; }

  // Copies every image of `source` into the store, byte for byte (never re-normalized: the digest a team
  // published is the digest the store holds), each blob checked against its digest while copied. `source`
  // is an OCI layout directory, an oci-archive (a tar of one, extracted under the store with every member
  // path checked) or a docker-archive (`docker save`), for which the store writes the OCI manifest itself
  // (docs/image-store.md says which digest results). bad_input naming the blob on a mismatch, a hostile name
  // or a nested index; not_found when `source` does not exist. Returns what was imported.
  Result<std::vector<StoredImage>> import(const std::filesystem::path& source);
  // import() of an OCI layout directory only.
  Result<std::vector<StoredImage>> import_layout(const std::filesystem::path& layout);

  // Copies `options.reference` from its registry with skopeo (into a temporary layout under the store, then
  // import()), and checks that the manifest it got is the pinned one. bad_input for a tag-only reference or
  // a manifest other than the pin (naming both digests; nothing is stored); io when skopeo fails or times
  // out, with its stderr; not_found (naming the Debian package) when `options.skopeo` is not there.
  Result<StoredImage> pull(const PullOptions& options);

  // Every image in the store, by digest.
  Result<std::vector<StoredImage>> list() const;

  // Removes the images from the index (all or none: not_found naming a digest the store lacks, and nothing
  // removed), then the blobs no remaining image references and their root file systems (renamed out of
  // place first, so no build ever sees half a tree). bad_input when a tree is in use (a RootfsLease is held).
  Status remove(const std::vector<std::string>& digests);

  // Hashes the manifest `digest`, its config and every layer blob against the pin (a layer blob unchanged
  // since this store last hashed it is not hashed again: see VerifiedImage). not_found (saying how to
  // get it: `quorate image import`) when the store lacks the manifest; bad_input naming the blob when bytes
  // do not match or the manifest is not one image's manifest.
  Result<VerifiedImage> verify(const std::string& digest) const;

  // The image's root file system, read-only by convention (builds bind it read-only), held until the lease
  // is destroyed: unpacked from the verified layers on first use under an exclusive lock, then renamed into
  // place, so a crash mid-unpack leaves only a temporary that no build trusts (removed by the next unpack).
  // Empty `dev`, `proc`, `src`, `out` and `tmp` directories are made at the top (mount points for the
  // sandbox; minimal images lack them). bad_input naming the layer and entry for a hostile layer; io otherwise.
  // `progress`, when set, is told when an unpack starts and ends (it can take minutes for a large image).
  Result<RootfsLease> rootfs(const VerifiedImage& image,
                             const std::function<void(const std::string&)>& progress = {}) const;

 private:
  explicit ImageStore(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path dir_;
};

}  // namespace quorate::imagestore
