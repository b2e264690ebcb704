// Reading a base image pinned by digest from an OCI image layout directory, checking every byte against the pin.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "quorate/core/status.h"
#include "quorate/normalize/oci.h"

namespace quorate::builder {

struct BaseLayer {
  std::string media_type;
  std::string digest;
  std::filesystem::path blob;  // the file in the layout; its digest is checked when it is copied
};

struct BaseImageData {
  std::string name;
  std::string manifest_digest;
  nlohmann::json config;  // the parsed config blob (its bytes matched the manifest's config digest)
  std::vector<BaseLayer> layers;
  std::vector<std::string> diff_ids;
};

// Finds the manifest `digest` in the layout at `layout` (listed in index.json, directly or through a nested
// index, or present as a blob), and checks that the manifest and config bytes hash to their digests.
// bad_input "base image NAME: …" when the layout does not hold the pinned digest or a blob's bytes do not
// match; not_found when the layout is missing.
Result<BaseImageData> read_base_image(const std::filesystem::path& layout, const std::string& name,
                                      const std::string& digest);

// Copies the layer blob `blob` of base image `image` into `layout` (streamed, up to 16 GiB): bad_input naming
// the image and both digests when its bytes do not hash to `digest`. For a layout's layers this is their check;
// for an image store's, verified before the build started, it catches a file changed since.
Result<normalize::Descriptor> copy_base_layer(normalize::OciLayoutWriter& layout, const std::string& image,
                                              const std::string& media_type, const std::string& digest,
                                              const std::filesystem::path& blob);

}  // namespace quorate::builder
