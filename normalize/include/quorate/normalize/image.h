// Canonical images: read a docker-archive, an OCI layout directory or an OCI layout tar, and write its
// canonical OCI image layout (every layer normalized, config and manifest rewritten).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "quorate/core/status.h"
#include "quorate/normalize/layer.h"
#include "quorate/normalize/options.h"

namespace quorate::normalize {

enum class ImageFormat { kNotImage, kDockerArchive, kOciLayout, kOciArchive };

// What `input` is, by content: a directory with index.json is an OCI layout; a tar (any compression) holding
// index.json and oci-layout is an OCI archive; a tar whose manifest.json is docker's (an array of objects
// with Config and Layers) is a docker-archive; anything else kNotImage (possibly a layer). Reads the tar's
// headers through to the end (docker save writes manifest.json last). not_found when absent.
Result<ImageFormat> detect_image_format(const std::filesystem::path& input);
const char* image_format_name(ImageFormat f);  // "docker-archive", "oci", "oci-archive", "none"

struct ImageOptions {
  // "os/arch[/variant]" to pick from a multi-platform index; empty: the input must hold one image.
  std::string platform;
  // Ref name written to index.json; empty: the input's tag (docker RepoTags or the OCI ref name), else
  // "latest".
  std::string ref_name;
  // Where tar inputs are extracted; empty = /tmp.
  std::filesystem::path temp_dir;
  // The most the image's distinct layers may expand to together, counted as LayerOptions::max_expanded_bytes
  // counts a layer's, as they are read; never below that per-layer limit (the larger of the two applies), so
  // an image whose one layer may expand to N may expand to N in all.
  uint64_t max_total_expanded_bytes = kDefaultMaxImageExpandedBytes;
};

struct ImageSummary {
  ImageFormat input_format = ImageFormat::kNotImage;
  std::string manifest_digest;  // of the canonical manifest (the image digest)
  uint64_t manifest_size = 0;
  std::string config_digest;          // the content digest
  std::string input_manifest_digest;  // the input's manifest digest (docker-archive: sha256 of its config)
  std::string ref_name;
  std::vector<LayerSummary> layers;  // in image order
};

// Normalizes the image at `input` into a new OCI layout at `output_dir` (which must not exist or be empty;
// written through an AtomicDir, so a failure leaves nothing there). Every blob read is checked against its
// digest. Errors: bad_input naming the blob, file or field (digest mismatch, missing blob, broken JSON,
// hostile path in a tar, several images without a platform choice, the layers expanding to more than the
// image's bound together, named at the layer and entry where the count passed it), usage for a bad output
// path.
Result<ImageSummary> normalize_image(const std::filesystem::path& input, const std::filesystem::path& output_dir,
                                     const LayerOptions& layer_options, const ImageOptions& image_options = {});

}  // namespace quorate::normalize
