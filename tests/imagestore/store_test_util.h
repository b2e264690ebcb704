// Test helpers for the image store: a second image sharing busybox's layer, a tar of a layout, the store's
// blob and tree listings.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "imagestore/busybox_image.h"
#include "quorate/core/sha256.h"
#include "quorate/normalize/oci.h"
#include "support/test_util.h"

namespace quorate::testing {

// A copy of the busybox layout at `from` whose one image has another config (Env `env`, each "K=V") but the
// same layer; returns its manifest digest.
inline std::string make_sibling_image(const std::filesystem::path& from, const std::filesystem::path& dir,
                                      const std::vector<std::string>& env) {
  std::filesystem::copy(from, dir, std::filesystem::copy_options::recursive);
  auto index = nlohmann::json::parse(slurp(dir / "index.json"));
  std::string old = index["manifests"][0]["digest"];
  auto manifest = nlohmann::json::parse(slurp(dir / "blobs/sha256" / digest_hex(old)));
  auto config =
      nlohmann::json::parse(slurp(dir / "blobs/sha256" / digest_hex(manifest["config"]["digest"].get<std::string>())));
  config["config"]["Env"] = env;
  auto layout = normalize::OciLayoutWriter::open(dir);
  auto config_desc = layout->add_blob(normalize::kMediaTypeConfig, canonical_json(config, "config").value());
  normalize::Descriptor layer{manifest["layers"][0]["mediaType"].get<std::string>(),
                              manifest["layers"][0]["digest"].get<std::string>(),
                              manifest["layers"][0]["size"].get<uint64_t>(),
                              {}};
  auto m = layout->add_blob(normalize::kMediaTypeManifest, normalize::make_manifest(*config_desc, {layer}).value());
  EXPECT_TRUE(layout->write_index(*m, "sibling").ok());
  return m->digest;
}
inline std::string make_sibling_image(const std::filesystem::path& from, const std::filesystem::path& dir,
                                      const std::string& env) {
  return make_sibling_image(from, dir, std::vector<std::string>{env});
}

// The file names under `dir` (not recursive).
inline std::set<std::string> names_in(const std::filesystem::path& dir) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) out.insert(e.path().filename().string());
  return out;
}

}  // namespace quorate::testing
