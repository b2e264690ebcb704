// normalize_image: format detection, the config rules, platform choice, ref names, and refusal of bad layouts.
#include "quorate/normalize/image.h"

#include <gtest/gtest.h>

#include <random>

#include "quorate/core/file.h"
#include "quorate/core/sha256.h"
#include "quorate/normalize/oci.h"
#include "tests/support/test_util.h"

namespace quorate::normalize {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using quorate::testing::ScratchDir;
using quorate::testing::slurp;

constexpr int64_t kImageEpoch = 1500000000;

// A one-layer image written with our own writers, in a layout that may list several platforms.
class ImageTest : public ::testing::Test {
 protected:
  Descriptor add_image(OciLayoutWriter& w, const std::string& arch, const json& extra_config = json::object()) {
    CanonicalLayerWriter layer(LayerOptions{});
    Entry e;
    e.path = "etc/arch";
    e.mtime = 1700000000;
    EXPECT_TRUE(layer.add_bytes(e, arch + "\n").ok());
    auto blob = w.begin_blob();
    EXPECT_TRUE(blob.ok());
    auto s = layer.write(**blob);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    auto layer_desc = (*blob)->commit(s->media_type);
    json config = {{"architecture", arch},
                   {"os", "linux"},
                   {"created", "2023-03-04T05:06:07.891Z"},
                   {"docker_version", "20.10"},
                   {"container", "abcdef"},
                   {"config", {{"Hostname", "abcdef"}, {"Cmd", {"/bin/sh"}}}},
                   {"history", {{{"created", "2023-03-04T05:06:07Z"}, {"created_by", "ADD arch"}}}},
                   {"rootfs", {{"type", "layers"}, {"diff_ids", {s->diff_id}}}}};
    config.update(extra_config);
    auto c = w.add_blob(kMediaTypeConfig, config.dump(2));
    auto m = w.add_blob(kMediaTypeManifest, make_manifest(*c, {*layer_desc}).value());
    Descriptor d = *m;
    return d;
  }

  void write_index(const fs::path& dir, const std::vector<std::pair<Descriptor, std::string>>& manifests) {
    json list = json::array();
    for (const auto& [d, arch] : manifests) {
      json j = d.to_json();
      j["platform"] = {{"os", "linux"}, {"architecture", arch}};
      list.push_back(j);
    }
    quorate::testing::spit(dir / "index.json",
                           json({{"schemaVersion", 2}, {"mediaType", kMediaTypeIndex}, {"manifests", list}}).dump());
  }

  LayerOptions options() {
    LayerOptions o;
    o.source_date_epoch = kImageEpoch;
    return o;
  }

  json read_json_blob(const fs::path& layout, const std::string& digest) {
    return json::parse(slurp(layout / "blobs/sha256" / digest_hex(digest)));
  }

  // An OCI layout at `dir` of `count` distinct gzip layers, each one file of 1,000,000 bytes that do not
  // compress (so a layer's blob is about what it expands to, and bytes read count layers read); their
  // descriptors in image order.
  std::vector<Descriptor> distinct_layers_image(const fs::path& dir, size_t count) {
    fs::create_directories(dir);
    auto w = OciLayoutWriter::open(dir);
    EXPECT_TRUE(w.ok());
    std::vector<Descriptor> layers;
    json diff_ids = json::array();
    for (size_t i = 0; i < count; ++i) {
      std::mt19937 random(static_cast<uint32_t>(i));
      std::string content(1'000'000, '\0');
      for (char& c : content) c = static_cast<char>(random());
      CanonicalLayerWriter layer(LayerOptions{});
      Entry e;
      e.path = "f" + std::to_string(i);
      e.mtime = 1700000000;
      EXPECT_TRUE(layer.add_bytes(e, content).ok());
      auto blob = w->begin_blob();
      EXPECT_TRUE(blob.ok());
      auto written = layer.write(**blob);
      EXPECT_TRUE(written.ok()) << written.status().to_string();
      layers.push_back((*blob)->commit(written->media_type).value());
      diff_ids.push_back(written->diff_id);
    }
    json config = {
        {"architecture", "amd64"}, {"os", "linux"}, {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
    auto c = w->add_blob(kMediaTypeConfig, config.dump());
    auto m = w->add_blob(kMediaTypeManifest, make_manifest(*c, layers).value());
    EXPECT_TRUE(w->write_index(*m, "").ok());
    return layers;
  }

  ScratchDir dir_;
};

TEST_F(ImageTest, DetectsFormatsByContent) {
  fs::create_directories(dir_ / "oci");
  auto w = OciLayoutWriter::open(dir_ / "oci");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->write_index(add_image(*w, "amd64"), "v1").ok());
  EXPECT_EQ(*detect_image_format(dir_ / "oci"), ImageFormat::kOciLayout);
  ASSERT_EQ(quorate::testing::run("tar -C " + (dir_ / "oci").string() + " -cf " + (dir_ / "oci.tar").string() + " .")
                .exit_code,
            0);
  EXPECT_EQ(*detect_image_format(dir_ / "oci.tar"), ImageFormat::kOciArchive);
  ASSERT_EQ(
      quorate::testing::run("tar -C " + (dir_ / "oci").string() + " -cf " + (dir_ / "layer.tar").string() + " blobs")
          .exit_code,
      0);
  EXPECT_EQ(*detect_image_format(dir_ / "layer.tar"), ImageFormat::kNotImage);
  EXPECT_TRUE(detect_image_format(dir_ / "absent").status().is_not_found());
  // A layer that happens to ship a manifest.json of its own stays a layer.
  fs::create_directories(dir_ / "root");
  quorate::testing::spit(dir_ / "root/manifest.json", R"({"name": "my-web-app", "icons": []})");
  ASSERT_EQ(quorate::testing::run("tar -C " + (dir_ / "root").string() + " -czf " + (dir_ / "app.tgz").string() +
                                  " manifest.json")
                .exit_code,
            0);
  EXPECT_EQ(*detect_image_format(dir_ / "app.tgz"), ImageFormat::kNotImage);
}

// The probe reads no further than an image archive can reach: a member name longer than a file system takes,
// or more members than an image archive may have, make the tar a layer. A layer of 3,000 pax names of 990 KB
// (3 MB of gzip) was read whole by the probe, 45 s, before normalize refused it at its first entry; 1.9 s now.
TEST_F(ImageTest, TheFormatProbeStopsWhereNoImageArchiveGoes) {
  fs::create_directories(dir_ / "oci");
  auto w = OciLayoutWriter::open(dir_ / "oci");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->write_index(add_image(*w, "amd64"), "v1").ok());
  auto r = quorate::testing::run(
      "python3 -c " +
      quorate::testing::sh("import os,sys,tarfile\n"
                           "src, long_name, many = sys.argv[1:4]\n"
                           "def image(t):\n"
                           "  for n in sorted(os.listdir(src)): t.add(os.path.join(src, n), arcname=n)\n"
                           "with tarfile.open(long_name, 'w', format=tarfile.PAX_FORMAT) as t:\n"
                           "  i = tarfile.TarInfo('d/' + 'n' * 5000); t.addfile(i)\n"
                           "  image(t)\n"
                           "with tarfile.open(many, 'w', format=tarfile.PAX_FORMAT) as t:\n"
                           "  for k in range(10000): t.addfile(tarfile.TarInfo('f%05d' % k))\n"
                           "  image(t)\n") +
      " " + quorate::testing::sh((dir_ / "oci").string()) + " " + quorate::testing::sh((dir_ / "long.tar").string()) +
      " " + quorate::testing::sh((dir_ / "many.tar").string()));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(*detect_image_format(dir_ / "long.tar"), ImageFormat::kNotImage);
  EXPECT_EQ(*detect_image_format(dir_ / "many.tar"), ImageFormat::kNotImage);
}

// An image tar's links are remembered by name and target while it is extracted: 2,000 symlinks of 500 KB pax
// names and targets after the layout's own members (635 KB of zstd) held 3 GB. A name or link target over
// 4,096 bytes is refused at its member; a layout with a symlink of 4,000 bytes still normalizes.
TEST_F(ImageTest, AnImageTarsLongLinkIsRefusedAtItsMember) {
  fs::create_directories(dir_ / "oci");
  auto w = OciLayoutWriter::open(dir_ / "oci");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->write_index(add_image(*w, "amd64"), "v1").ok());
  // The layout as a tar, then a symlink "extra" whose target is `size` bytes.
  auto tar_with_link = [&](const std::string& name, size_t size) {
    fs::path out = dir_ / name;
    auto r = quorate::testing::run(
        "python3 -c " +
        quorate::testing::sh("import os,sys,tarfile\n"
                             "src, out, size = sys.argv[1], sys.argv[2], int(sys.argv[3])\n"
                             "with tarfile.open(out, 'w', format=tarfile.PAX_FORMAT) as t:\n"
                             "  for n in sorted(os.listdir(src)): t.add(os.path.join(src, n), arcname=n)\n"
                             "  i = tarfile.TarInfo('extra'); i.type = tarfile.SYMTYPE; i.linkname = 'l' * size\n"
                             "  t.addfile(i)\n") +
        " " + quorate::testing::sh((dir_ / "oci").string()) + " " + quorate::testing::sh(out.string()) + " " +
        std::to_string(size));
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return out;
  };
  auto o = options();
  o.temp_dir = dir_ / "tmp";
  fs::create_directories(o.temp_dir);
  auto long_link = tar_with_link("long.tar", 5000);
  ASSERT_EQ(*detect_image_format(long_link), ImageFormat::kOciArchive);
  auto s = normalize_image(long_link, dir_ / "out-long", o);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().is_bad_input()) << s.status().to_string();
  EXPECT_NE(s.status().message().find("has a name or link target of more than 4096 bytes"), std::string::npos)
      << s.status().to_string();
  EXPECT_TRUE(fs::is_empty(o.temp_dir));
  auto fine = normalize_image(tar_with_link("fine.tar", 4000), dir_ / "out-fine", o);
  EXPECT_TRUE(fine.ok()) << fine.status().to_string();
}

TEST_F(ImageTest, ConfigGetsEpochTimesNewDiffIdsAndLosesHostFields) {
  fs::create_directories(dir_ / "in");
  auto w = OciLayoutWriter::open(dir_ / "in");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->write_index(add_image(*w, "amd64"), "").ok());
  auto s = normalize_image(dir_ / "in", dir_ / "out", options());
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->ref_name, "latest");
  ASSERT_EQ(s->layers.size(), 1u);
  json config = read_json_blob(dir_ / "out", s->config_digest);
  EXPECT_EQ(config["created"], "2017-07-14T02:40:00Z");
  EXPECT_EQ(config["history"][0]["created"], "2017-07-14T02:40:00Z");
  EXPECT_EQ(config["history"][0]["created_by"], "ADD arch");
  EXPECT_EQ(config["rootfs"]["diff_ids"][0], s->layers[0].diff_id);
  EXPECT_FALSE(config.contains("docker_version"));
  EXPECT_FALSE(config.contains("container"));
  EXPECT_FALSE(config["config"].contains("Hostname"));
  EXPECT_EQ(config["config"]["Cmd"][0], "/bin/sh");
  // The config blob is canonical JSON.
  EXPECT_EQ(slurp(dir_ / "out/blobs/sha256" / digest_hex(s->config_digest)), canonical_json(config, "config").value());
  json index = json::parse(slurp(dir_ / "out/index.json"));
  EXPECT_EQ(index["manifests"][0]["digest"], s->manifest_digest);
  EXPECT_EQ(index["manifests"][0]["annotations"][kRefNameAnnotation], "latest");
}

// A layer listed again is the same canonical layer, written once and listed again: one small layer that
// expands a lot, listed 128 times, was read and compressed 128 times. Counted in bytes read, not time.
TEST_F(ImageTest, ALayerListedAgainIsNormalizedOnce) {
  fs::create_directories(dir_ / "in");
  auto w = OciLayoutWriter::open(dir_ / "in");
  ASSERT_TRUE(w.ok());
  LayerOptions plain;
  plain.compression = Compression::kNone;
  CanonicalLayerWriter layer(plain);
  Entry e;
  e.path = "big";
  e.mtime = 1700000000;
  ASSERT_TRUE(layer.add_bytes(e, std::string(8u << 20, 'x')).ok());
  auto blob = w->begin_blob();
  ASSERT_TRUE(blob.ok());
  auto written = layer.write(**blob);
  ASSERT_TRUE(written.ok()) << written.status().to_string();
  auto layer_desc = (*blob)->commit(written->media_type).value();
  constexpr size_t kListed = 8;
  json config = {{"architecture", "amd64"},
                 {"os", "linux"},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", std::vector<std::string>(kListed, written->diff_id)}}}};
  auto c = w->add_blob(kMediaTypeConfig, config.dump());
  auto m = w->add_blob(kMediaTypeManifest, make_manifest(*c, std::vector<Descriptor>(kListed, layer_desc)).value());
  ASSERT_TRUE(w->write_index(*m, "").ok());

  const uint64_t before = quorate::testing::bytes_read_by_this_process();
  auto s = normalize_image(dir_ / "in", dir_ / "out", options());
  const uint64_t read = quorate::testing::bytes_read_by_this_process() - before;
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  ASSERT_EQ(s->layers.size(), kListed);
  json manifest = read_json_blob(dir_ / "out", s->manifest_digest);
  ASSERT_EQ(manifest["layers"].size(), kListed);
  for (size_t i = 1; i < kListed; ++i) {
    EXPECT_EQ(manifest["layers"][i], manifest["layers"][0]);
    EXPECT_EQ(s->layers[i].diff_id, s->layers[0].diff_id);
  }
  // Read once (its digest checked on the way); eight times before.
  EXPECT_LT(read, 3 * layer_desc.size) << read;
}

// Each layer may expand to the per-layer limit, and an image may list 128 distinct ones: 128 small zstd bombs
// were 128 times that limit in time and spool. The distinct layers of an image expand to a bound together,
// counted as they are read: ten layers of 1 MB, each under the per-layer 1 MiB, are refused within the fourth
// against a total of 3 MiB, before the others are read (counted in bytes read, as the blobs do not compress).
TEST_F(ImageTest, AnImagesDistinctLayersExpandToABoundTogether) {
  auto layers = distinct_layers_image(dir_ / "in", 10);
  LayerOptions lo = options();
  lo.max_expanded_bytes = 1u << 20;
  ImageOptions io;
  io.max_total_expanded_bytes = 3u << 20;
  const uint64_t before = quorate::testing::bytes_read_by_this_process();
  auto s = normalize_image(dir_ / "in", dir_ / "out", lo, io);
  const uint64_t read = quorate::testing::bytes_read_by_this_process() - before;
  ASSERT_FALSE(s.ok()) << "ten layers of 1 MB were normalized within a total of 3 MiB";
  EXPECT_TRUE(s.status().is_bad_input()) << s.status().to_string();
  EXPECT_NE(s.status().message().find("layer blob " + layers[3].digest + ": "), std::string::npos)
      << s.status().to_string();
  EXPECT_NE(s.status().message().find("the image's layers expand to more than 3145728 bytes together"),
            std::string::npos)
      << s.status().to_string();
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  // Three layers read and written (their spools read back) and the fourth's blob, 7 MB: less than the ten
  // blobs hold (10 MB; all ten with their spools made it 20 MB).
  EXPECT_LT(read, 10 * layers[0].size) << read;
}

// An image tar's members are the image's blobs, so they are bounded as its layers are together, not as one
// layer: three layers of 1 MB under a per-layer 1 MiB, in an OCI layout tar of 3 MB, were refused as a tar
// over 1 MiB, and a docker-archive of real 2 GB layers would have been refused at the default 8 GiB.
TEST_F(ImageTest, AnImageTarIsBoundedAsItsLayersAreTogether) {
  distinct_layers_image(dir_ / "in", 3);
  ASSERT_EQ(
      quorate::testing::run("tar -C " + (dir_ / "in").string() + " -cf " + (dir_ / "in.tar").string() + " .").exit_code,
      0);
  auto from_dir = normalize_image(dir_ / "in", dir_ / "from-dir", options());
  ASSERT_TRUE(from_dir.ok()) << from_dir.status().to_string();
  LayerOptions lo = options();
  lo.max_expanded_bytes = 1u << 20;
  ImageOptions io;
  io.max_total_expanded_bytes = 3u << 20;
  auto s = normalize_image(dir_ / "in.tar", dir_ / "out", lo, io);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->manifest_digest, from_dir->manifest_digest);
}

// Under its bound an image is normalized as without one, to the same bytes; the count is of what the
// per-layer limit counts (content, 512 bytes an entry, names), so three layers of 1,000,000 bytes of content
// pass a total of 3 MiB and are refused at 3,000,000, within the third.
TEST_F(ImageTest, AnImageWithinItsTotalIsNormalizedAsWithoutOne) {
  auto layers = distinct_layers_image(dir_ / "in", 3);
  auto unbounded = normalize_image(dir_ / "in", dir_ / "unbounded", options());
  ASSERT_TRUE(unbounded.ok()) << unbounded.status().to_string();
  LayerOptions lo = options();
  lo.max_expanded_bytes = 1u << 20;
  ImageOptions io;
  io.max_total_expanded_bytes = 3u << 20;
  auto s = normalize_image(dir_ / "in", dir_ / "out", lo, io);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->manifest_digest, unbounded->manifest_digest);

  io.max_total_expanded_bytes = 3'000'000;
  auto refused = normalize_image(dir_ / "in", dir_ / "refused", lo, io);
  ASSERT_FALSE(refused.ok()) << "three layers of 1,000,000 bytes of content were normalized within 3,000,000";
  EXPECT_TRUE(refused.status().is_bad_input()) << refused.status().to_string();
  EXPECT_NE(refused.status().message().find("layer blob " + layers[2].digest + ": "), std::string::npos)
      << refused.status().to_string();
  EXPECT_NE(refused.status().message().find("the image's layers expand to more than 3000000 bytes together"),
            std::string::npos)
      << refused.status().to_string();
}

// The total is never below the per-layer limit (the larger applies): raising the layer's limit (the CLI's
// --max-expanded-size) past the image's lets the image expand that much too, and no further.
TEST_F(ImageTest, AnImagesTotalIsNeverBelowItsLayersLimit) {
  auto layers = distinct_layers_image(dir_ / "in", 3);
  LayerOptions lo = options();
  lo.max_expanded_bytes = 2u << 20;
  ImageOptions io;
  io.max_total_expanded_bytes = 1u << 20;
  auto s = normalize_image(dir_ / "in", dir_ / "out", lo, io);
  ASSERT_FALSE(s.ok()) << "three layers of 1 MB were normalized within a total of 2 MiB";
  EXPECT_TRUE(s.status().is_bad_input()) << s.status().to_string();
  EXPECT_NE(s.status().message().find("layer blob " + layers[2].digest + ": "), std::string::npos)
      << s.status().to_string();
  EXPECT_NE(s.status().message().find("the image's layers expand to more than 2097152 bytes together"),
            std::string::npos)
      << s.status().to_string();
}

TEST_F(ImageTest, MultiPlatformIndexNeedsAPlatform) {
  fs::create_directories(dir_ / "in");
  auto w = OciLayoutWriter::open(dir_ / "in");
  ASSERT_TRUE(w.ok());
  auto amd = add_image(*w, "amd64"), arm = add_image(*w, "arm64");
  write_index(dir_ / "in", {{amd, "amd64"}, {arm, "arm64"}});
  auto refused = normalize_image(dir_ / "in", dir_ / "out", options());
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.status().is_bad_input());
  EXPECT_NE(refused.status().message().find("linux/arm64"), std::string::npos) << refused.status().message();
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  ImageOptions pick;
  pick.platform = "linux/arm64";
  auto s = normalize_image(dir_ / "in", dir_ / "out", options(), pick);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(read_json_blob(dir_ / "out", s->config_digest)["architecture"], "arm64");
  EXPECT_EQ(s->input_manifest_digest, arm.digest);
  pick.platform = "linux/s390x";
  EXPECT_FALSE(normalize_image(dir_ / "in", dir_ / "out2", options(), pick).ok());
}

TEST_F(ImageTest, MissingBlobIsBadInputAndLeavesNothing) {
  fs::create_directories(dir_ / "in");
  auto w = OciLayoutWriter::open(dir_ / "in");
  ASSERT_TRUE(w.ok());
  auto m = add_image(*w, "amd64");
  ASSERT_TRUE(w->write_index(m, "v1").ok());
  json manifest = read_json_blob(dir_ / "in", m.digest);
  fs::remove(dir_ / "in/blobs/sha256" / digest_hex(manifest["layers"][0]["digest"].get<std::string>()));
  auto s = normalize_image(dir_ / "in", dir_ / "out", options());
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().is_bad_input()) << s.status().to_string();
  EXPECT_NE(s.status().message().find(manifest["layers"][0]["digest"].get<std::string>()), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

TEST_F(ImageTest, BrokenIndexJsonIsBadInput) {
  fs::create_directories(dir_ / "in");
  quorate::testing::spit(dir_ / "in/index.json", "{\"manifests\": [");
  auto s = normalize_image(dir_ / "in", dir_ / "out", options());
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().is_bad_input());
  EXPECT_NE(s.status().message().find("index.json"), std::string::npos);
}

TEST_F(ImageTest, ExistingOutputIsNotOverwritten) {
  fs::create_directories(dir_ / "in");
  auto w = OciLayoutWriter::open(dir_ / "in");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->write_index(add_image(*w, "amd64"), "v1").ok());
  fs::create_directories(dir_ / "out");
  quorate::testing::spit(dir_ / "out/keep", "mine");
  EXPECT_FALSE(normalize_image(dir_ / "in", dir_ / "out", options()).ok());
  EXPECT_EQ(slurp(dir_ / "out/keep"), "mine");
}

}  // namespace
}  // namespace quorate::normalize
