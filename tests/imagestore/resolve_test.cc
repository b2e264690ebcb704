// resolve_image (`verify --image`) on images a hostile source serves: skopeo's dir: transport copies what the
// source holds, and resolve_image must check every byte of it against the descriptors before the config's
// digest stands for the image.
#include "quorate/imagestore/resolve.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <time.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "quorate/core/sha256.h"
#include "quorate/core/sink.h"
#include "quorate/normalize/compress.h"
#include "support/test_util.h"

namespace quorate::imagestore {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;
using testing::ScratchDir;
using testing::spit;

std::string gzip(const std::string& bytes) {
  StringSink out;
  auto z = normalize::make_compressor(normalize::Compression::kGzip, 9, 1, &out);
  EXPECT_TRUE(z->write(bytes).ok());
  EXPECT_TRUE(z->finish().ok());
  return out.take();
}

// An image in skopeo's dir: transport: blobs named by hex digest, manifest.json, version. `edit` changes the
// manifest and config JSON before they are written (the config's digest follows its edits).
struct DirImage {
  std::string layer_gz;  // the layer blob
  std::string diff_id;   // its uncompressed digest
  int layer_count = 1;   // how many times the manifest lists it
  std::function<void(json& manifest, json& config)> edit = [](json&, json&) {};

  std::string write(const fs::path& dir) const {
    fs::create_directories(dir);
    auto put = [&](const std::string& bytes) {
      std::string d = sha256_digest(bytes);
      spit(dir / digest_hex(d), bytes);
      return d;
    };
    std::string layer = put(layer_gz);
    json config = {
        {"architecture", "amd64"}, {"os", "linux"}, {"rootfs", {{"type", "layers"}, {"diff_ids", json::array()}}}};
    json manifest = {{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.manifest.v1+json"}};
    for (int i = 0; i < layer_count; ++i) {
      config["rootfs"]["diff_ids"].push_back(diff_id);
      manifest["layers"].push_back(
          {{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", layer}, {"size", layer_gz.size()}});
    }
    edit(manifest, config);
    std::string config_bytes = config.dump();
    manifest["config"] = {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                          {"digest", put(config_bytes)},
                          {"size", config_bytes.size()}};
    spit(dir / "manifest.json", manifest.dump());
    spit(dir / "version", "Directory Transport Version: 1.1\n");
    return manifest["config"]["digest"];
  }
};

class Resolve : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists("/usr/bin/skopeo")) GTEST_SKIP() << "skopeo is not installed";
    std::string tar(10240, '\0');  // an empty tar: two zero blocks and padding
    image_.layer_gz = gzip(tar);
    image_.diff_id = sha256_digest(tar);
  }

  Result<ResolvedImage> resolve(const DirImage& image, const std::string& name) {
    image.write(scratch_ / name);
    ResolveOptions o;
    o.reference = "dir:" + (scratch_ / name).string();
    o.skopeo = "/usr/bin/skopeo";
    o.temp_dir = scratch_.path();
    o.timeout = std::chrono::seconds(120);
    return resolve_image(o);
  }

  ScratchDir scratch_;
  DirImage image_;
};

TEST_F(Resolve, AnImageWhoseBytesMatchItsDescriptorsResolvesToItsConfig) {
  image_.layer_count = 2;
  std::string config = image_.write(scratch_ / "expected");
  auto r = resolve(image_, "good");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->config_digest, config);
  EXPECT_EQ(r->manifest_digest, sha256_digest(testing::slurp(scratch_ / "good" / "manifest.json")));
  EXPECT_EQ(r->diff_ids, (std::vector<std::string>{image_.diff_id, image_.diff_id}));
}

// skopeo copies a layer whose descriptor gives another size without a word (it checks the config's size, not a
// layer's); the OCI spec says not to trust it.
TEST_F(Resolve, ABlobOfAnotherSizeThanItsDescriptorIsRefused) {
  DirImage layer = image_;
  layer.edit = [](json& manifest, json&) {
    manifest["layers"][0]["size"] = manifest["layers"][0]["size"].get<int>() + 5;
  };
  auto r = resolve(layer, "layer-size");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kBadInput);
  EXPECT_THAT(r.status().message(), HasSubstr("layer 0"));
  EXPECT_THAT(r.status().message(), HasSubstr("its descriptor says"));
}

TEST_F(Resolve, AConfigWithFieldsOfTheWrongTypeIsRefusedNamingTheField) {
  DirImage image = image_;
  image.edit = [](json&, json& config) { config["config"] = {{"Labels", "not an object"}}; };
  auto r = resolve(image, "labels");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kBadInput);
  EXPECT_THAT(r.status().message(), HasSubstr("config.Labels"));

  image.edit = [](json&, json& config) { config["rootfs"]["diff_ids"][0] = 5; };
  r = resolve(image, "diff-id-number");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("rootfs.diff_ids"));

  image.edit = [](json&, json& config) { config.erase("rootfs"); };
  r = resolve(image, "no-rootfs");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("no rootfs.diff_ids"));
}

TEST_F(Resolve, ALayerThatDoesNotDecompressToItsDiffIdIsRefused) {
  DirImage image = image_;
  image.diff_id = sha256_digest("something else");
  auto r = resolve(image, "diff-id");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("not the config's diff_id " + image.diff_id));
}

double cpu_seconds() {
  timespec t{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

// A manifest may list one layer many times; a hostile one lists a small bomb 128 times (the most a manifest
// may list). It is decompressed once, not 128 times: the CPU this process spends on it stays within a few
// times that of the same image listing it once (128 times as much before the fix).
TEST_F(Resolve, ALayerListedManyTimesIsDecompressedOnce) {
  std::string zeros(64u << 20, '\0');
  DirImage bomb;
  bomb.layer_gz = gzip(zeros);
  bomb.diff_id = sha256_digest(zeros);
  zeros.clear();
  double start = cpu_seconds();
  ASSERT_TRUE(resolve(bomb, "once").ok());
  double once = cpu_seconds() - start;

  bomb.layer_count = 128;
  start = cpu_seconds();
  auto r = resolve(bomb, "many");
  double many = cpu_seconds() - start;
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->diff_ids.size(), 128u);
  EXPECT_LT(many, 8 * once) << "listed once: " << once << " CPU s; listed 128 times: " << many << " CPU s";
}

}  // namespace
}  // namespace quorate::imagestore
