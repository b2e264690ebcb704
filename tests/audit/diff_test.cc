// quorate diff at the layer level: the changed file and nothing else; ignore lists; renderings. Image inputs
// in every format, hostile archives refused with nothing written outside the private directory; --deep with
// stand-in diffoscope scripts: both versions of a changed (also hardlinked) file, cut reports, timeouts.
#include "quorate/audit/diff.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>

#include "quorate/core/sha256.h"
#include "quorate/normalize/image.h"
#include "tests/support/test_util.h"

namespace quorate::audit {
namespace {
namespace fs = std::filesystem;
using quorate::testing::run;
using quorate::testing::ScratchDir;
using quorate::testing::sh;

// An executable script `body` (after #!/bin/sh) in `dir`, named diffoscope.
fs::path stand_in(const fs::path& dir, const std::string& body) {
  fs::create_directories(dir);
  fs::path p = dir / "diffoscope";
  quorate::testing::spit(p, "#!/bin/sh\n" + body);
  fs::permissions(p, fs::perms::owner_all);
  return p;
}

bool is_empty_dir(const fs::path& dir) { return fs::is_directory(dir) && fs::is_empty(dir); }

class DiffTest : public ::testing::Test {
 protected:
  std::string make(const std::string& args) {
    std::string out = (dir_ / ("l" + std::to_string(n_++) + ".tar")).string();
    auto r = run("python3 " + sh((quorate::testing::source_dir() / "tests/normalize/make_layer.py").string()) +
                 " tree " + sh(out) + " " + args);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return out;
  }
  ScratchDir dir_;
  int n_ = 0;
};

TEST_F(DiffTest, OneChangedBitNamesThatFileAndNothingElse) {
  auto d = diff_layers(make("--order sorted"), make("--order reversed --tweak --compress gzip"), {});
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  // usr/bin/tool2 is a hardlink to usr/bin/tool: the same file under two names.
  ASSERT_EQ(d->changes.size(), 2u);
  EXPECT_EQ(d->changes[0].path, "usr/bin/tool");
  EXPECT_EQ(d->changes[1].path, "usr/bin/tool2");
  for (const auto& c : d->changes) {
    ASSERT_EQ(c.fields.size(), 1u);
    EXPECT_EQ(c.fields[0].field, "content");
  }
}

TEST_F(DiffTest, SameFilesInAnotherEncodingShowNoDifference) {
  auto d = diff_layers(make("--order sorted"), make("--order shuffled --dot --noise --compress zstd"), {});
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_TRUE(d->changes.empty());
}

TEST_F(DiffTest, MtimeOnlyDifferencesShowUnlessIgnored) {
  auto a = make("--mtime 1000");
  auto b = make("--mtime 2000");
  auto shown = diff_layers(a, b, {});
  ASSERT_TRUE(shown.ok());
  ASSERT_FALSE(shown->changes.empty());
  for (const auto& c : shown->changes) {
    for (const auto& f : c.fields) EXPECT_EQ(f.field, "mtime") << c.path;
  }
  DiffOptions o;
  o.ignore = {"mtime"};
  auto hidden = diff_layers(a, b, o);
  ASSERT_TRUE(hidden.ok());
  EXPECT_TRUE(hidden->changes.empty());
}

TEST_F(DiffTest, OwnersAndAddedFilesAreReported) {
  auto d = diff_layers(make(""), make("--owner 7"), {});
  ASSERT_TRUE(d.ok());
  ASSERT_FALSE(d->changes.empty());
  EXPECT_EQ(d->changes[0].fields[0].field, "owner");
  EXPECT_EQ(d->changes[0].fields[0].b, "7:7 (builder:builder)");
}

TEST_F(DiffTest, DeepReportsShowBothVersionsAlsoOfAHardlink) {
  DiffOptions o;
  // `cmp -l` prints the 1-based offset and both octal values of each differing byte.
  o.diffoscope = stand_in(dir_ / "bin", "echo \"$@\"\ncmp -l \"$3\" \"$4\"\nexit 1\n");
  o.temp_dir = dir_ / "tmp";
  fs::create_directories(o.temp_dir);
  auto d = diff_layers(make("--order sorted"), make("--order reversed --tweak --compress gzip"), o);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  ASSERT_EQ(d->changes.size(), 2u);
  for (const auto& c : d->changes) {
    std::string name = c.path.substr(c.path.rfind('/') + 1);
    EXPECT_EQ(c.deep.substr(0, c.deep.find('\n')), "--text - a/" + name + " b/" + name) << c.deep;
    EXPECT_NE(c.deep.find("\n12346 "), std::string::npos) << c.path << ": " << c.deep;
    EXPECT_EQ(std::count(c.deep.begin(), c.deep.end(), '\n'), 2) << c.deep;  // one byte differs, no note
  }
  EXPECT_TRUE(is_empty_dir(o.temp_dir));
}

TEST_F(DiffTest, DeepReportsAreCutAndSlowRunsKilled) {
  auto a = make("");
  auto b = make("--tweak");
  DiffOptions o;
  o.diffoscope = stand_in(dir_ / "long", "seq 1 100000\nexit 1\n");
  o.deep_max_lines = 10;
  auto cut = diff_layers(a, b, o);
  ASSERT_TRUE(cut.ok()) << cut.status().to_string();
  ASSERT_FALSE(cut->changes.empty());
  std::string expected;
  for (int i = 1; i <= 10; ++i) expected += std::to_string(i) + "\n";
  EXPECT_EQ(cut->changes[0].deep, expected + "[report cut after 10 lines]\n");

  o.diffoscope = stand_in(dir_ / "slow", "echo started\nsleep 30\n");
  o.deep_timeout = std::chrono::seconds(1);
  auto start = std::chrono::steady_clock::now();
  auto slow = diff_layers(a, b, o);
  ASSERT_TRUE(slow.ok()) << slow.status().to_string();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  EXPECT_EQ(slow->changes[0].deep, "started\n[diffoscope still ran after 1 s and was killed]\n");

  o.diffoscope = stand_in(dir_ / "broken", "echo 'Traceback: boom' >&2\nexit 2\n");
  auto broken = diff_layers(a, b, o);
  ASSERT_TRUE(broken.ok()) << broken.status().to_string();
  EXPECT_EQ(broken->changes[0].deep, "Traceback: boom\n[diffoscope failed: exit status 2]\n");
}

TEST_F(DiffTest, FindDiffoscopeLooksThroughThePathOnly) {
  auto found = find_diffoscope("/nonexistent::" + (dir_ / "bin").string());
  EXPECT_EQ(found.status().code(), Code::kUsage);
  EXPECT_NE(found.status().message().find("diffoscope is not installed"), std::string::npos);
  auto program = stand_in(dir_ / "bin", "exit 0\n");
  found = find_diffoscope("/nonexistent::" + (dir_ / "bin").string());
  ASSERT_TRUE(found.ok()) << found.status().to_string();
  EXPECT_EQ(*found, program);
  EXPECT_EQ(find_diffoscope("").status().code(), Code::kUsage);
}

// Whole images: docker-archives from tests/cli/make_image.py, their canonical layouts, and those as tars.
class DiffImagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.temp_dir = dir_ / "tmp";
    fs::create_directories(options_.temp_dir);
  }
  fs::path archive(const std::string& args) {
    fs::path out = dir_ / ("image" + std::to_string(n_++) + ".tar");
    auto r = run("python3 " + sh((quorate::testing::source_dir() / "tests/cli/make_image.py").string()) + " " +
                 sh(out.string()) + " " + args);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return out;
  }
  fs::path oci_tar(const fs::path& docker_archive) {
    fs::path layout = dir_ / ("oci" + std::to_string(n_++));
    normalize::LayerOptions lo;
    lo.source_date_epoch = 1500000000;
    auto s = normalize::normalize_image(docker_archive, layout, lo);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    fs::path tar = layout.string() + ".tar";
    EXPECT_EQ(run("tar -C " + sh(layout.string()) + " -cf " + sh(tar.string()) + " .").exit_code, 0);
    return tar;
  }
  // An OCI layout `name` whose manifest lists each of `layers` (tar files) `repeat` times, its config holding
  // `extra`'s fields besides os, architecture and rootfs.
  fs::path layout(const std::string& name, const nlohmann::json& extra, const std::vector<fs::path>& layers,
                  int repeat = 1) {
    fs::path out = dir_ / name;
    fs::create_directories(out / "blobs/sha256");
    auto blob = [&](const std::string& bytes) {
      std::string digest = sha256_digest(bytes);
      quorate::testing::spit(out / "blobs/sha256" / digest.substr(7), bytes);
      return nlohmann::json{{"digest", digest}, {"size", bytes.size()}};
    };
    nlohmann::json descriptors = nlohmann::json::array(), diff_ids = nlohmann::json::array();
    for (int i = 0; i < repeat; ++i) {
      for (const auto& file : layers) {
        auto d = blob(quorate::testing::slurp(file));
        d["mediaType"] = "application/vnd.oci.image.layer.v1.tar";
        diff_ids.push_back(d["digest"]);
        descriptors.push_back(d);
      }
    }
    nlohmann::json config = extra;
    config["os"] = "linux";
    config["architecture"] = "amd64";
    config["rootfs"] = {{"type", "layers"}, {"diff_ids", diff_ids}};
    auto config_descriptor = blob(config.dump());
    config_descriptor["mediaType"] = "application/vnd.oci.image.config.v1+json";
    auto manifest = blob(nlohmann::json{
        {"schemaVersion", 2},
        {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
        {"config", config_descriptor},
        {"layers",
         descriptors}}.dump());
    manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json";
    quorate::testing::spit(out / "index.json", nlohmann::json{{"schemaVersion", 2}, {"manifests", {manifest}}}.dump());
    quorate::testing::spit(out / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    return out;
  }
  // A tar of `count` empty files, written by Python: `name` is an expression of i.
  fs::path python_layer(const std::string& file, int count, const std::string& name) {
    fs::path out = dir_ / file;
    auto r = run("python3 -c " +
                 sh("import io,sys,tarfile\n"
                    "t=tarfile.open(sys.argv[1],'w',format=tarfile.PAX_FORMAT)\n"
                    "for i in range(int(sys.argv[2])): t.addfile(tarfile.TarInfo(" +
                    name + "),io.BytesIO(b''))\nt.close()\n") +
                 " " + sh(out.string()) + " " + std::to_string(count));
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return out;
  }
  // `count` tars named `prefix`0.tar, … each of one file of `bytes` random bytes: distinct layers whose
  // content is what they expand to.
  std::vector<fs::path> random_layers(const std::string& prefix, int count, int bytes) {
    std::vector<fs::path> out;
    for (int i = 0; i < count; ++i) {
      out.push_back(dir_ / (prefix + std::to_string(i) + ".tar"));
      auto r = run("python3 -c " +
                   sh("import io,os,sys,tarfile\n"
                      "t=tarfile.open(sys.argv[1],'w'); i=tarfile.TarInfo('f'); i.size=int(sys.argv[2])\n"
                      "t.addfile(i,io.BytesIO(os.urandom(i.size))); t.close()\n") +
                   " " + sh(out.back().string()) + " " + std::to_string(bytes));
      EXPECT_EQ(r.exit_code, 0) << r.out;
    }
    return out;
  }

  ScratchDir dir_;
  DiffOptions options_;
  int n_ = 0;
};

uint64_t listed_bytes(const ImageDiff& d) {
  uint64_t n = 0;
  auto fields = [&](const std::vector<FieldDiff>& fs) {
    for (const auto& f : fs) n += f.field.size() + f.a.size() + f.b.size();
  };
  fields(d.manifest);
  fields(d.config);
  for (const auto& l : d.layers) {
    for (const auto& c : l.changes) {
      n += c.path.size();
      fields(c.fields);
    }
  }
  return n;
}

// A config's fields are compared as a tree walked with one pointer: flattening it first made a string of every
// leaf's pointer, and one long key over a long array (15 MB) asked for terabytes. What is listed is bounded;
// the rest is counted.
TEST_F(DiffImagesTest, AConfigOfALongKeyOverALongArrayIsListedWithinBounds) {
  auto layer = python_layer("one.tar", 1, "'f'");
  auto plain = layout("plain", nlohmann::json::object(), {layer});
  const std::string key(16 << 10, 'k');
  auto wide = layout("wide", {{"x", {{key, std::vector<int>(10'000, 0)}}}}, {layer});
  auto d = diff_images(plain, wide, options_);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_LE(listed_bytes(*d), kMaxListedBytes);
  EXPECT_LT(d->config.size(), 10'000u);
  EXPECT_EQ(d->config.size() + d->config_omitted, 10'000u);
  EXPECT_EQ(d->config[0].field, "/x/" + key + "/0");
  EXPECT_EQ(d->config[0].a, "(absent)");
  EXPECT_EQ(d->config[0].b, "0");
}

// Leaves are compared as they are: an empty array is not null (flattening made both null).
TEST_F(DiffImagesTest, AnEmptyArrayAndNullDiffer) {
  auto layer = python_layer("one.tar", 1, "'f'");
  auto a = layout("a", {{"config", {{"Cmd", nlohmann::json::array()}}}}, {layer});
  auto b = layout("b", {{"config", {{"Cmd", nullptr}}}}, {layer});
  auto d = diff_images(a, b, options_);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  ASSERT_EQ(d->config.size(), 1u) << to_text(*d);
  EXPECT_EQ(d->config[0].field, "/config/Cmd");
  EXPECT_EQ(d->config[0].a, "[]");
  EXPECT_EQ(d->config[0].b, "null");
}

// One layer of long paths listed over and over: every copy's paths were kept (a 76 KB image of 240 MB of
// paths listed 16 times held 8.6 GB and ended in bad_alloc). The changes listed across the layers are bounded;
// the rest are counted.
TEST_F(DiffImagesTest, ALayerOfLongPathsListedOverAndOverIsListedWithinBounds) {
  auto plain = layout("plain", nlohmann::json::object(), {python_layer("one.tar", 1, "'f'")});
  auto paths = python_layer("long.tar", 1000, "('d'*250+'/')*200+str(i)");
  auto repeated = layout("repeated", nlohmann::json::object(), {paths}, 4);
  auto d = diff_images(plain, repeated, options_);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_LE(listed_bytes(*d), kMaxListedBytes);
  size_t changes = 0;
  for (const auto& l : d->layers) changes += l.changes.size() + l.omitted;
  EXPECT_EQ(changes, 1 + 4 * 1000u);  // layer 0: f removed, 1000 added; layers 1-3: 1000 added each
  EXPECT_GT(d->layers.back().omitted, 0u);
}

// Layers whose digests match on both sides are not compared: a blob that is not what its digest says (here
// of the same size, so the descriptor's size passes) would pass for the one that is, and the diff said
// "identical". Every layer is hashed against its digest first.
TEST_F(DiffImagesTest, ALayerThatIsNotWhatItsDigestSaysIsRefused) {
  auto original = layout("original", nlohmann::json::object(), {python_layer("hi.tar", 1, "'hi'")});
  auto forged = dir_ / "forged";
  fs::copy(original, forged, fs::copy_options::recursive);
  auto manifest_digest =
      nlohmann::json::parse(quorate::testing::slurp(forged / "index.json"))["manifests"][0]["digest"];
  auto manifest = nlohmann::json::parse(
      quorate::testing::slurp(forged / "blobs/sha256" / manifest_digest.get<std::string>().substr(7)));
  std::string layer_digest = manifest["layers"][0]["digest"];
  fs::path blob = forged / "blobs/sha256" / layer_digest.substr(7);
  quorate::testing::spit(blob, quorate::testing::slurp(python_layer("ho.tar", 1, "'ho'")));
  ASSERT_EQ(fs::file_size(blob), fs::file_size(original / "blobs/sha256" / layer_digest.substr(7)));

  auto d = diff_images(original, forged, options_);
  ASSERT_FALSE(d.ok()) << to_text(*d);
  EXPECT_EQ(d.status().code(), Code::kBadInput) << d.status().to_string();
  EXPECT_NE(
      d.status().message().find(forged.string() + " (oci): layer 0 (" + layer_digest + ") does not match its digest"),
      std::string::npos)
      << d.status().to_string();
}

// A pair of layers listed again differs the same way (their digests are checked): it is compared once and its
// changes listed again, not read again. One 33 KB layer of 1 GiB of zeros against another, listed 32 times on
// each side, was read 32 times. Counted in bytes read (/proc/self/io), not time.
TEST_F(DiffImagesTest, APairOfLayersListedAgainIsReadOnce) {
  auto big_file = [&](const std::string& name) {  // a tar of one 8 MiB file `name`
    fs::path out = dir_ / (name + ".tar");
    auto r = run("python3 -c " +
                 sh("import io,sys,tarfile\n"
                    "t=tarfile.open(sys.argv[1],'w'); i=tarfile.TarInfo(sys.argv[2]); i.size=8<<20\n"
                    "t.addfile(i,io.BytesIO(sys.argv[2].encode()*(8<<20))); t.close()\n") +
                 " " + sh(out.string()) + " " + name);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return out;
  };
  auto a = big_file("a");
  auto left = layout("left", nlohmann::json::object(), {a}, 8);
  auto right = layout("right", nlohmann::json::object(), {big_file("b")}, 8);
  const uint64_t before = quorate::testing::bytes_read_by_this_process();
  auto d = diff_images(left, right, options_);
  const uint64_t read = quorate::testing::bytes_read_by_this_process() - before;
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  ASSERT_EQ(d->layers.size(), 8u);
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(d->layers[i].index, i);
    ASSERT_EQ(d->layers[i].changes.size(), 2u);
    EXPECT_EQ(d->layers[i].changes[0].path, "a");
    EXPECT_EQ(d->layers[i].changes[0].kind, FileChange::Kind::kRemoved);
  }
  // Each file is hashed once and indexed once: 4 reads of 8 MiB; indexing 8 pairs would make it 18.
  EXPECT_LT(read, uint64_t{6} * fs::file_size(a)) << read;
}

// Each layer may expand to the per-layer limit and an image may list 128 distinct ones: a diff of 128 small
// bombs on each side took 256 times that limit. What the layers compared expand to, both images' together,
// is bounded, counted as they are read: five distinct layers of 1,000,000 bytes on each side, each under the
// per-layer 1 MiB, are refused at the second layer of the right image against a total of 3 MiB, and the
// third pair is never read.
TEST_F(DiffImagesTest, TheLayersOfBothImagesExpandToABoundTogether) {
  auto left = layout("left", nlohmann::json::object(), random_layers("a", 5, 1'000'000));
  auto right = layout("right", nlohmann::json::object(), random_layers("b", 5, 1'000'000));
  options_.max_expanded_bytes = 1u << 20;
  options_.max_total_expanded_bytes = 3u << 20;
  std::vector<std::string> progress;
  options_.progress = [&](const std::string& line) { progress.push_back(line); };
  const uint64_t before = quorate::testing::bytes_read_by_this_process();
  auto d = diff_images(left, right, options_);
  const uint64_t read = quorate::testing::bytes_read_by_this_process() - before;
  ASSERT_FALSE(d.ok()) << "ten layers of 1 MB were compared within a total of 3 MiB";
  EXPECT_EQ(d.status().code(), Code::kBadInput) << d.status().to_string();
  EXPECT_NE(d.status().message().find(right.string() + " layer 1: "), std::string::npos) << d.status().to_string();
  EXPECT_NE(d.status().message().find("the layers of both images expand to more than 3145728 bytes together"),
            std::string::npos)
      << d.status().to_string();
  EXPECT_NE(std::ranges::find(progress, "layer 2/5: reading"), progress.end());
  EXPECT_EQ(std::ranges::find(progress, "layer 3/5: reading"), progress.end());
  // Every layer hashed (10 MB) and four indexed (14 MB in all); indexing all ten would make it 20 MB.
  EXPECT_LT(read, uint64_t{17'000'000}) << read;
  EXPECT_TRUE(is_empty_dir(options_.temp_dir));
}

// Within the bound two images are compared as without one: the count is of content, so two layers of 750,000
// bytes on each side pass a total of exactly 3,000,000 with the same diff, and are refused one byte under it,
// within the right image's second layer.
TEST_F(DiffImagesTest, ImagesWithinTheTotalAreComparedAsWithoutOne) {
  auto left = layout("left", nlohmann::json::object(), random_layers("a", 2, 750'000));
  auto right = layout("right", nlohmann::json::object(), random_layers("b", 2, 750'000));
  auto unbounded = diff_images(left, right, options_);
  ASSERT_TRUE(unbounded.ok()) << unbounded.status().to_string();
  options_.max_expanded_bytes = 1u << 20;
  options_.max_total_expanded_bytes = 3'000'000;
  auto d = diff_images(left, right, options_);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(to_json(*d), to_json(*unbounded));
  EXPECT_EQ(d->layers.size(), 2u);

  options_.max_total_expanded_bytes = 2'999'999;
  auto refused = diff_images(left, right, options_);
  ASSERT_FALSE(refused.ok()) << "four layers of 750,000 bytes were compared within 2,999,999";
  EXPECT_EQ(refused.status().code(), Code::kBadInput) << refused.status().to_string();
  EXPECT_NE(refused.status().message().find(right.string() + " layer 1: "), std::string::npos)
      << refused.status().to_string();
  EXPECT_NE(refused.status().message().find("the layers of both images expand to more than 2999999 bytes together"),
            std::string::npos)
      << refused.status().to_string();
}

TEST_F(DiffImagesTest, DockerSaveLayoutsOfOneImageAreIdentical) {
  auto legacy = archive("");
  for (const char* other : {"--layout blobs", "--symlink-layers --reverse", "--symlink-layers"}) {
    auto d = diff_images(legacy, archive(other), options_);
    ASSERT_TRUE(d.ok()) << other << ": " << d.status().to_string();
    EXPECT_TRUE(d->identical()) << other << ": " << to_text(*d);
  }
  EXPECT_TRUE(is_empty_dir(options_.temp_dir));
}

TEST_F(DiffImagesTest, ArchivesOfAnyFormatAreComparedAsTheyAre) {
  auto a = archive("");
  auto b = archive("--greeting bonjour");
  auto d = diff_images(oci_tar(a), oci_tar(b), options_);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  ASSERT_EQ(d->layers.size(), 1u) << to_text(*d);
  ASSERT_EQ(d->layers[0].changes.size(), 1u) << to_text(*d);
  EXPECT_EQ(d->layers[0].changes[0].path, "etc/hello.conf");

  // The docker-archive against its canonical form: times and owners, not contents.
  auto mixed = diff_images(a, oci_tar(a), options_);
  ASSERT_TRUE(mixed.ok()) << mixed.status().to_string();
  EXPECT_FALSE(mixed->identical());
  for (const auto& layer : mixed->layers) {
    for (const auto& c : layer.changes) {
      for (const auto& f : c.fields) EXPECT_TRUE(f.field == "mtime" || f.field == "owner") << c.path << " " << f.field;
    }
  }
  EXPECT_TRUE(is_empty_dir(options_.temp_dir));
}

TEST_F(DiffImagesTest, HostileArchivesAreRefusedWithNothingWrittenOutside) {
  auto good = archive("");
  for (const char* damage : {"hostile-path", "absolute-path", "symlink-escape"}) {
    auto bad = archive(std::string("--damage ") + damage);
    auto d = diff_images(good, bad, options_);
    ASSERT_FALSE(d.ok()) << damage;
    EXPECT_EQ(d.status().code(), Code::kBadInput) << d.status().to_string();
    EXPECT_NE(d.status().message().find(bad.string() + " (docker-archive): "), std::string::npos)
        << d.status().to_string();
    EXPECT_TRUE(is_empty_dir(options_.temp_dir)) << damage;  // "../escaped" would have landed here
  }
  EXPECT_FALSE(fs::exists("/tmp/quorate-escaped"));
}

TEST_F(DiffImagesTest, BrokenArchivesNameTheInputAndWhatIsWrong) {
  auto good = archive("");
  const std::pair<const char*, const char*> cases[] = {{"--damage missing-layer", "is missing"},
                                                       {"--damage bad-config-digest", "does not match its digest"},
                                                       {"--damage broken-json", "is not valid JSON"}};
  for (const auto& [args, why] : cases) {
    auto bad = archive(args);
    auto d = diff_images(good, bad, options_);
    ASSERT_FALSE(d.ok()) << args;
    EXPECT_NE(d.status().message().find(bad.string()), std::string::npos) << d.status().to_string();
    EXPECT_NE(d.status().message().find(why), std::string::npos) << d.status().to_string();
  }
  options_.max_expanded_bytes = 4096;
  auto big = diff_images(good, good, options_);
  EXPECT_EQ(big.status().code(), Code::kBadInput);
  EXPECT_NE(big.status().message().find("more than the limit of 4096 bytes"), std::string::npos)
      << big.status().to_string();
  EXPECT_TRUE(is_empty_dir(options_.temp_dir));
}

// A layout that lists two images, one per platform: the diff takes the one --platform names, the same reader
// normalize uses.
TEST_F(DiffImagesTest, LayoutsOfSeveralPlatformsNeedOneChosen) {
  fs::path amd = oci_tar(archive("")).replace_extension();
  fs::path arm = oci_tar(archive("--greeting bonjour")).replace_extension();
  fs::path both = dir_ / "both";
  fs::create_directories(both / "blobs/sha256");
  nlohmann::json manifests = nlohmann::json::array();
  for (const auto& [layout, arch] : {std::pair{amd, "amd64"}, std::pair{arm, "arm64"}}) {
    for (const auto& blob : fs::directory_iterator(layout / "blobs/sha256")) {
      fs::copy_file(blob.path(), both / "blobs/sha256" / blob.path().filename(), fs::copy_options::skip_existing);
    }
    auto d = nlohmann::json::parse(quorate::testing::slurp(layout / "index.json"))["manifests"][0];
    d["platform"] = {{"os", "linux"}, {"architecture", arch}};
    manifests.push_back(d);
  }
  fs::copy_file(amd / "oci-layout", both / "oci-layout");
  quorate::testing::spit(both / "index.json", nlohmann::json({{"schemaVersion", 2}, {"manifests", manifests}}).dump());

  auto unchosen = diff_images(both, amd, options_);
  ASSERT_FALSE(unchosen.ok());
  EXPECT_EQ(unchosen.status().code(), Code::kBadInput);
  EXPECT_NE(unchosen.status().message().find("lists 2 images (linux/amd64, linux/arm64); choose one with --platform"),
            std::string::npos)
      << unchosen.status().to_string();

  options_.platform = "linux/amd64";
  auto same = diff_images(both, amd, options_);
  ASSERT_TRUE(same.ok()) << same.status().to_string();
  EXPECT_TRUE(same->identical()) << to_text(*same);

  options_.platform = "linux/arm64";
  auto other = diff_images(both, amd, options_);
  ASSERT_TRUE(other.ok()) << other.status().to_string();
  ASSERT_EQ(other->layers.size(), 1u) << to_text(*other);
  ASSERT_EQ(other->layers[0].changes.size(), 1u) << to_text(*other);
  EXPECT_EQ(other->layers[0].changes[0].path, "etc/hello.conf");

  options_.platform = "linux/s390x";
  auto none = diff_images(both, amd, options_);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("has no image for platform linux/s390x"), std::string::npos)
      << none.status().to_string();
}

TEST_F(DiffImagesTest, DeepExplainsChangedFilesOfArchives) {
  options_.diffoscope = stand_in(dir_ / "bin", "shift 2\ndiff \"$1\" \"$2\"\n");
  auto d = diff_images(archive(""), archive("--greeting bonjour --layout blobs"), options_);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  ASSERT_EQ(d->layers.size(), 1u);
  EXPECT_EQ(d->layers[0].changes[0].deep, "1c1\n< greeting=hello\n---\n> greeting=bonjour\n");
  EXPECT_TRUE(is_empty_dir(options_.temp_dir));
}

TEST(DiffOptions, UnknownIgnoreFieldIsAUsageError) {
  EXPECT_EQ(check_ignore({"mtime", "colour"}).code(), Code::kUsage);
  EXPECT_TRUE(check_ignore({"mtime", "owner", "created"}).ok());
}

TEST(DiffRendering, JsonAndTextNameTheLayerAndPath) {
  ImageDiff d;
  d.layers.push_back({1, "sha256:a", "sha256:b", {{"bin/app", FileChange::Kind::kChanged, {{"content", "x", "y"}}}}});
  auto j = to_json(d);
  EXPECT_EQ(j["identical"], false);
  EXPECT_EQ(j["layers"][0]["index"], 1);
  EXPECT_EQ(j["layers"][0]["changes"][0]["path"], "bin/app");
  EXPECT_NE(to_text(d).find("changed bin/app"), std::string::npos);
  EXPECT_FALSE(j["layers"][0]["changes"][0].contains("deep"));
  EXPECT_EQ(to_text(ImageDiff{}), "images are identical\n");
}

TEST(DiffRendering, WhatWasNotListedIsCounted) {
  ImageDiff d;
  d.config.push_back({"/a", "1", "2"});
  d.config_omitted = 5;
  d.layers.push_back({0, "sha256:a", "sha256:b", {{"bin/app", FileChange::Kind::kAdded, {}}}, 7});
  EXPECT_EQ(to_text(d),
            "config /a: 1 -> 2\n"
            "config: 5 more differing fields not listed (the diff lists at most 1000000 differences, 134217728 "
            "bytes of them)\n"
            "layer 0 (sha256:a -> sha256:b)\n"
            "  added bin/app\n"
            "  7 more changes not listed (the diff lists at most 1000000 differences, 134217728 bytes of them)\n");
  auto j = to_json(d);
  EXPECT_EQ(j["config_omitted"], 5);
  EXPECT_EQ(j["manifest_omitted"], 0);
  EXPECT_EQ(j["layers"][0]["omitted"], 7);
}

TEST(DiffRendering, DeepReportsGoUnderTheirFile) {
  ImageDiff d;
  d.layers.push_back({0, "sha256:a", "sha256:b", {{"bin/app", FileChange::Kind::kChanged, {{"content", "x", "y"}}}}});
  d.layers[0].changes[0].deep = "--- a/app\n+++ b/app\n";
  EXPECT_EQ(to_json(d)["layers"][0]["changes"][0]["deep"], "--- a/app\n+++ b/app\n");
  EXPECT_NE(to_text(d).find("      content: x -> y\n      diffoscope:\n        --- a/app\n        +++ b/app\n"),
            std::string::npos)
      << to_text(d);
}

TEST(DiffRendering, TextMasksWhatTheImagesChose) {
  ImageDiff d;
  d.config.push_back({"config.Labels.\x1b]0;t\x07", "a\x9b", "b\xc2\x85"});
  d.layers.push_back({0, "sha256:a", "sha256:b", {{"bin/\x1b[2Jevil", FileChange::Kind::kAdded, {}}}});
  d.layers[0].changes[0].deep = "--- a/\x1b[1m\n";
  EXPECT_EQ(to_text(d),
            "config config.Labels.?]0;t?: a? -> b?\n"
            "layer 0 (sha256:a -> sha256:b)\n"
            "  added bin/?[2Jevil\n"
            "      diffoscope:\n"
            "        --- a/?[1m\n");
}

}  // namespace
}  // namespace quorate::audit
