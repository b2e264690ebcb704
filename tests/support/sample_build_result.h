// A build result as `quorate build --result-out` writes it (docs/build-result.md), for tests that sign and
// judge attestations without building: every digest is derived from the names given. Benchmarks and the
// scale benchmark's load node sign the same (bench/ includes this header).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "quorate/core/sha256.h"

namespace quorate::testing {

inline const std::string kSampleRepo = "file:///srv/git/hello.git";
inline std::string sample_commit(const std::string& name) { return sha256_hex("commit " + name).substr(0, 40); }
// The manifest digest the build result of image `image` names.
inline std::string sample_image_digest(const std::string& image) { return sha256_digest("manifest " + image); }

// What differs between the build results tests and benchmarks sign; every digest not given is derived from
// `image`, a name.
struct SampleBuild {
  std::string commit;
  std::string image;
  std::string manifest_digest;  // "" = sample_image_digest(image)
  std::string config_digest;    // "" = sha256 of "config " + image
  std::string repo = kSampleRepo;
  std::string name = "example.org/hello";
  std::string started_on = "2026-11-23T08:00:00Z";
  std::string finished_on = "2026-11-23T08:00:03Z";
};

inline std::string sample_build_result(const SampleBuild& b) {
  const std::string& image = b.image;
  nlohmann::json j = {{"schema", "https://quorate.dev/build-result/v1"},
                      {"canonical_form", 1},
                      {"image",
                       {{"name", b.name},
                        {"manifest_digest", b.manifest_digest.empty() ? sample_image_digest(image) : b.manifest_digest},
                        {"config_digest", b.config_digest.empty() ? sha256_digest("config " + image) : b.config_digest},
                        {"diff_ids", {sha256_digest("layer " + image)}},
                        {"layers",
                         {{{"digest", sha256_digest("blob " + image)},
                           {"size", 123},
                           {"media_type", "application/vnd.oci.image.layer.v1.tar+gzip"}}}}}},
                      {"source",
                       {{"uri", b.repo},
                        {"commit", b.commit},
                        {"tree", sha256_hex("tree").substr(0, 40)},
                        {"recipe_path", "quorate.toml"}}},
                      {"base_images", nlohmann::json::array()},
                      {"platform", {{"os", "linux"}, {"architecture", "amd64"}}},
                      {"source_date_epoch", 1700000000},
                      {"compressor", "gzip zlib 1.2.13 level 6"},
                      {"toolchain", {{"quorate", "0.1.0"}}},
                      {"environment", {{"TZ", "UTC"}}},
                      {"sandbox", "none"},
                      {"started_on", b.started_on},
                      {"finished_on", b.finished_on}};
  return j.dump();
}

inline std::string sample_build_result(const std::string& commit, const std::string& image) {
  SampleBuild b;
  b.commit = commit;
  b.image = image;
  return sample_build_result(b);
}

}  // namespace quorate::testing
