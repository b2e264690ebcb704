// An image as a registry (or any skopeo transport) holds it, reduced to what attestations name: the manifest
// digest, the config (content) digest, and the layers' diff_ids, every one checked against the bytes.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "quorate/core/status.h"

namespace quorate::imagestore {

struct ResolveOptions {
  // A skopeo source: docker://HOST/REPO@sha256:HEX (a registry reference must be pinned by digest),
  // oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:REF], dir:DIR.
  std::string reference;
  std::filesystem::path skopeo;    // the skopeo executable (the caller finds it)
  bool insecure_registry = false;  // skopeo --src-tls-verify=false (loopback test registries)
  std::filesystem::path temp_dir;  // parent of the temporary copy; must exist
  std::chrono::seconds timeout{1800};
  uint64_t max_expanded_bytes = uint64_t{8} << 30;  // per layer, uncompressed: the decompression bomb guard
};

struct ResolvedImage {
  std::string manifest_digest;  // sha256 of the manifest bytes as the source holds them
  std::string manifest_media_type;
  std::string config_digest;  // the content digest attestations carry as the "config" byproduct
  std::vector<std::string> diff_ids;
};

// Copies the image with `skopeo copy SOURCE dir:TMP` (the dir transport keeps the manifest and blobs as the
// source serves them), then checks: the manifest's sha256 is the pinned digest (docker://), the config blob's
// sha256 is its descriptor's, every layer blob's sha256 is its descriptor's, and every layer decompressed
// (gzip, zstd or none) hashes to the config's diff_id at its position. Only then is the config digest the
// image's content digest. bad_input naming the first mismatch; io when skopeo fails; not_found without skopeo.
Result<ResolvedImage> resolve_image(const ResolveOptions& options);

// Whether `s` names a skopeo source rather than a bare sha256: digest.
bool is_transport_reference(const std::string& s);

}  // namespace quorate::imagestore
