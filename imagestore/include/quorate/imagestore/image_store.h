// The image store: images a build may use, kept byte for byte and found only by their manifest digest.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "quorate/core/status.h"

namespace quorate::imagestore {

struct StoredImage {
  std::string digest;    // "sha256:…" of the manifest: the only way a build names it
  std::string ref_name;  // org.opencontainers.image.ref.name as imported (informational; may be empty)
  uint64_t size = 0;     // the manifest's size
};

struct VerifiedLayer {
  std::string media_type;
  std::string digest;
  std::filesystem::path blob;
};

// An image whose manifest, config and every layer blob were hashed against the pin in this process.
struct VerifiedImage {
  std::string digest;
  nlohmann::json config;  // the parsed config blob
  std::vector<VerifiedLayer> layers;
};

// A directory that is itself an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`), plus
// `rootfs/<hex>/`: each image's root file system, unpacked once. Safe for several processes at once: index
// updates and unpacking take flock()s; blobs and root file systems appear by atomic rename only.
class ImageStore {
 public:
  // Opens (creating when absent) the store at `dir`. io when it cannot be created.
  static Result<ImageStore> open(const std::filesystem::path& dir);
  const std::filesystem::path& dir() const { return dir_; }

  // Copies every image listed in the OCI layout directory `layout`'s index.json into the store, byte for
  // byte (never re-normalized: the digest a team published is the digest the store holds), each blob
  // checked against its digest while copied. bad_input naming the blob on a mismatch, a hostile name or a
  // nested index; not_found when `layout` is not a layout. Returns what was imported.
  Result<std::vector<StoredImage>> import_layout(const std::filesystem::path& layout);

  // Every image in the store, by digest.
  Result<std::vector<StoredImage>> list() const;

  // Hashes the manifest `digest`, its config and every layer blob against the pin. not_found (saying how to
  // get it: `quorate image import`) when the store lacks the manifest; bad_input naming the blob when bytes
  // do not match or the manifest is not one image's manifest.
  Result<VerifiedImage> verify(const std::string& digest) const;

  // The image's root file system, read-only by convention (builds bind it read-only): unpacked from the
  // verified layers on first use under an exclusive lock, then renamed into place, so a crash mid-unpack
  // leaves only a temporary that no build trusts (removed by the next unpack). Empty `dev`, `proc`, `src`,
  // `out` and `tmp` directories are made at the top (mount points for the sandbox; minimal images lack
  // them). bad_input naming the layer and entry for a hostile layer; io otherwise.
  Result<std::filesystem::path> rootfs(const VerifiedImage& image) const;

 private:
  explicit ImageStore(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path dir_;
};

}  // namespace quorate::imagestore
