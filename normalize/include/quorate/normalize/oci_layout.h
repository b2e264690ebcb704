// The image of an OCI image layout (a directory or an extracted oci-archive): the one reader of index.json
// and the manifest it leads to, shared by normalize and `quorate diff`. (The image store imports every
// manifest of a layout byte for byte and has its own walk over index.json for that.)
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "quorate/core/status.h"
#include "quorate/normalize/image_files.h"

namespace quorate::normalize {

struct OciLayer {
  std::string digest;          // as the manifest names it; the blob's bytes are not read here
  std::filesystem::path file;  // the blob's file
  std::string media_type;      // as the manifest names it ("" when it names none)
};

struct OciImage {
  std::string manifest_digest;
  std::string ref_name;     // the descriptor's org.opencontainers.image.ref.name annotation, or ""
  nlohmann::json manifest;  // an object, checked against manifest_digest
  nlohmann::json config;    // an object, checked against the digest the manifest names
  std::vector<OciLayer> layers;
};

// The one image index.json leads to. Nested indexes are followed one level; `platform` ("os/arch[/variant]")
// picks among several images and may be empty only when there is one. bad_input naming the member for
// missing members, blobs that do not match their digest, JSON that is not of the layout's shape, more than
// 4096 descriptors (nested ones counted), no image for `platform`, or several images and no `platform`.
Result<OciImage> read_oci_layout(const ImageFiles& files, const std::string& platform);

// The image whose manifest is the blob `digest` (a pin: index.json is not consulted), its manifest and config
// checked against their digests, every blob against its descriptor's size (`size`: the manifest's own, when a
// descriptor gave it). unsupported when the blob is an image index or a Docker manifest list.
Result<OciImage> read_oci_manifest(const ImageFiles& files, const std::string& digest,
                                   std::optional<uint64_t> size = std::nullopt);

}  // namespace quorate::normalize
