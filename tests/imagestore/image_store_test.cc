// The image store and builds inside a pinned builder image (issue 13, first slice): import byte for byte,
// verify every blob against the pin, unpack once, run steps with the image as / and no host path.
#include "quorate/imagestore/image_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include "builder/git_repo.h"
#include "imagestore/busybox_image.h"
#include "imagestore/store_test_util.h"
#include "quorate/builder/build.h"
#include "quorate/core/file.h"
#include "quorate/core/sha256.h"
#include "quorate/normalize/compress.h"

namespace quorate::imagestore {
namespace {

using quorate::testing::ScratchDir;
using quorate::testing::slurp;
using ::testing::HasSubstr;
using ::testing::Not;

class ImageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { digest_ = quorate::testing::make_busybox_image(scratch_ / "busybox"); }
  ImageStore store() { return ImageStore::open(scratch_ / "store").value(); }
  ScratchDir scratch_;
  std::string digest_;
};

// The names in a store's blobs/sha256: blobs, and the `.HEX.tmp.*` copies of blobs being written.
std::set<std::string> blob_names(const std::filesystem::path& store_dir) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(store_dir / "blobs/sha256", ec)) {
    out.insert(e.path().filename().string());
  }
  return out;
}
size_t temporaries_in(const std::set<std::string>& names) {
  return std::count_if(names.begin(), names.end(),
                       [](const std::string& n) { return n.find(".tmp.") != std::string::npos; });
}

// Runs `quorate image import LAYOUT --image-store STORE_DIR` and sends it `sig` once `ready()` holds (asked every
// 2 ms, for at most 60 s). Its wait status; -1 when `ready()` never held (it is then killed and reaped).
int import_signalled_when(const std::filesystem::path& layout, const std::filesystem::path& store_dir,
                          const std::function<bool()>& ready, int sig) {
  std::string bin = quorate::testing::quorate_bin();
  std::vector<std::string> args = {bin, "image", "import", layout.string(), "--image-store", store_dir.string()};
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid;
  if (::posix_spawn(&pid, bin.c_str(), nullptr, nullptr, argv.data(), environ) != 0) return -1;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!ready() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const bool was_ready = ready();
  ::kill(pid, was_ready ? sig : SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return was_ready ? status : -1;
}

TEST_F(ImageStoreTest, ImportKeepsTheDigestAndListsIt) {
  auto s = store();
  auto imported = s.import_layout(scratch_ / "busybox");
  ASSERT_TRUE(imported.ok()) << imported.status().to_string();
  ASSERT_EQ(imported->size(), 1u);
  EXPECT_EQ((*imported)[0].digest, digest_);
  EXPECT_EQ((*imported)[0].ref_name, "busybox");
  auto listed = s.list();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].digest, digest_);
  EXPECT_TRUE(s.import_layout(scratch_ / "busybox").ok());  // again: still one entry
  EXPECT_EQ(s.list()->size(), 1u);
}

TEST_F(ImageStoreTest, MissingImageSaysHowToGetIt) {
  auto v = store().verify(digest_);
  ASSERT_FALSE(v.ok());
  EXPECT_TRUE(v.status().is_not_found());
  EXPECT_THAT(v.status().message(), HasSubstr("quorate image import"));
}

TEST_F(ImageStoreTest, TamperedLayerBlobIsRefusedNamingIt) {
  auto s = store();
  ASSERT_TRUE(s.import_layout(scratch_ / "busybox").ok());
  auto v = s.verify(digest_);
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  auto blob = v->layers.at(0).blob;
  std::filesystem::permissions(blob, std::filesystem::perms(0644));
  { std::ofstream(blob, std::ios::app) << "x"; }
  auto again = s.verify(digest_);
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(again.status().is_bad_input());
  EXPECT_THAT(again.status().message(), HasSubstr(blob.string()));
}

// A layer blob hashed once is not hashed again while its stat is unchanged; a change that keeps its size and
// mtime (a byte overwritten in place, mtime set back) still moves its ctime, and is caught.
TEST_F(ImageStoreTest, ARecordedLayerIsTrustedOnlyWhileUnchanged) {
  auto s = store();
  ASSERT_TRUE(s.import_layout(scratch_ / "busybox").ok());
  auto first = s.verify(digest_);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  auto blob = first->layers.at(0).blob;
  auto record = scratch_ / "store/verified" / digest_hex(first->layers.at(0).digest);
  EXPECT_FALSE(std::filesystem::exists(record)) << "recorded a blob written less than 2 s before its hash";

  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  ASSERT_TRUE(s.verify(digest_).ok());
  ASSERT_TRUE(std::filesystem::exists(record));
  EXPECT_THAT(slurp(record), HasSubstr("ctime="));
  ASSERT_TRUE(s.verify(digest_).ok());  // through the record

  // A record from before diff_ids were recorded (the stat line alone), or one cut short, is read again once.
  const std::string full = slurp(record);
  for (const std::string& old : {full.substr(0, full.find("diff_id=")), full.substr(0, full.size() - 5)}) {
    quorate::testing::spit(record, old);
    ASSERT_TRUE(s.verify(digest_).ok());
    EXPECT_EQ(slurp(record), full);
  }

  struct stat before {};
  ASSERT_EQ(::stat(blob.c_str(), &before), 0);
  std::filesystem::permissions(blob, std::filesystem::perms(0644));
  {
    std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x7f');
  }
  timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, blob.c_str(), times, 0), 0);
  std::filesystem::permissions(blob, std::filesystem::perms(0444));
  auto tampered = s.verify(digest_);
  ASSERT_FALSE(tampered.ok()) << "a blob changed in place, size and mtime kept, was trusted";
  EXPECT_TRUE(tampered.status().is_bad_input());
  EXPECT_THAT(tampered.status().message(), HasSubstr(blob.string()));
}

TEST_F(ImageStoreTest, RootfsIsUnpackedOnceWithMountPoints) {
  auto s = store();
  ASSERT_TRUE(s.import_layout(scratch_ / "busybox").ok());
  auto v = s.verify(digest_);
  ASSERT_TRUE(v.ok());
  std::vector<std::string> progress;
  auto root = s.rootfs(*v, [&](const std::string& line) { progress.push_back(line); });
  ASSERT_TRUE(root.ok()) << root.status().to_string();
  // The unpack is announced (it can take minutes), with its layer count, and its end.
  ASSERT_EQ(progress.size(), 2u);
  EXPECT_THAT(progress[0], ::testing::StartsWith("unpacking image " + digest_.substr(0, 19) + " (1 layers, "));
  EXPECT_EQ(progress[1], "unpacked image " + digest_.substr(0, 19));
  EXPECT_TRUE(std::filesystem::is_regular_file(root->path() / "bin/busybox"));
  EXPECT_TRUE(std::filesystem::is_symlink(root->path() / "bin/sh"));
  for (const char* d : {"dev", "proc", "src", "out", "tmp"})
    EXPECT_TRUE(std::filesystem::is_directory(root->path() / d)) << d;
  quorate::testing::spit(root->path() / "marker", "same directory");
  progress.clear();
  auto again = s.rootfs(*v, [&](const std::string& line) { progress.push_back(line); });
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(progress.empty()) << "nothing to unpack, nothing to report";
  EXPECT_EQ(again->path(), root->path());
  EXPECT_TRUE(std::filesystem::exists(again->path() / "marker")) << "unpacked twice";
}

// An image of one layer holding a directory `bin` and an empty file named `name` (as a whiteout is written).
std::string make_whiteout_image(const std::filesystem::path& dir, const std::string& name) {
  std::filesystem::create_directories(dir);
  auto layout = normalize::OciLayoutWriter::open(dir);
  normalize::LayerOptions options;
  normalize::CanonicalLayerWriter writer(options);
  normalize::Entry bin;
  bin.path = "bin";
  bin.type = normalize::EntryType::kDirectory;
  bin.mode = 0755;
  EXPECT_TRUE(writer.add(bin).ok());
  normalize::Entry wh;
  wh.path = name;
  wh.mode = 0;
  EXPECT_TRUE(writer.add_bytes(wh, "").ok());
  auto blob = layout->begin_blob();
  auto summary = writer.write(**blob);
  EXPECT_TRUE(summary.ok()) << summary.status().to_string();
  EXPECT_TRUE((*blob)->finish().ok());
  auto layer = (*blob)->commit(summary->media_type);
  nlohmann::json config = {
      {"architecture", "amd64"}, {"os", "linux"}, {"rootfs", {{"type", "layers"}, {"diff_ids", {summary->diff_id}}}}};
  auto config_desc = layout->add_blob(normalize::kMediaTypeConfig, canonical_json(config, "config").value());
  auto manifest =
      layout->add_blob(normalize::kMediaTypeManifest, normalize::make_manifest(*config_desc, {*layer}).value());
  EXPECT_TRUE(layout->write_index(*manifest, "hostile").ok());
  return manifest->digest;
}

// A whiteout names one entry of its directory. `.wh...` at the top of a layer (a whiteout of "..") removed the
// store's rootfs/ directory, every other image's unpacked tree with it; `.wh..` and `.wh.` name the directory.
TEST_F(ImageStoreTest, AWhiteoutOfTheDirectoryOrItsParentIsRefused) {
  auto s = store();
  ASSERT_TRUE(s.import_layout(scratch_ / "busybox").ok());
  auto other = s.rootfs(s.verify(digest_).value());
  ASSERT_TRUE(other.ok()) << other.status().to_string();
  const auto kept = other->path() / "bin/busybox";
  for (const std::string name : {".wh...", ".wh..", ".wh.", "bin/.wh..."}) {
    auto dir = scratch_ / ("hostile-" + std::to_string(name.size()) + name.substr(0, 3));
    std::string digest = make_whiteout_image(dir, name);
    ASSERT_TRUE(s.import_layout(dir).ok()) << name;
    auto v = s.verify(digest);
    ASSERT_TRUE(v.ok()) << v.status().to_string();
    auto root = s.rootfs(*v);
    ASSERT_FALSE(root.ok()) << name << " was unpacked";
    EXPECT_TRUE(root.status().is_bad_input()) << root.status().to_string();
    EXPECT_THAT(root.status().message(), HasSubstr("whiteout " + name + " names no entry")) << name;
    EXPECT_TRUE(std::filesystem::exists(kept)) << name << " removed another image's tree";
  }
}

// A manifest of 8 MB of '[' parsed, and then copying it overflowed the stack (SIGSEGV): nesting is refused first.
TEST_F(ImageStoreTest, DeeplyNestedJsonIsRefusedNotACrash) {
  auto dir = scratch_ / "deep";
  std::filesystem::create_directories(dir);
  auto layout = normalize::OciLayoutWriter::open(dir);
  ASSERT_TRUE(layout.ok());
  const size_t depth = 4'000'000;
  auto manifest = layout->add_blob(normalize::kMediaTypeManifest, std::string(depth, '[') + std::string(depth, ']'));
  ASSERT_TRUE(manifest.ok());
  ASSERT_TRUE(layout->write_index(*manifest, "deep").ok());
  auto r = quorate::testing::run(
      quorate::testing::quorate_command("image import " + quorate::testing::sh(dir.string()) + " --image-store " +
                                        quorate::testing::sh((scratch_ / "store").string())));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("JSON nested deeper than 64 levels"));
  r = quorate::testing::run(quorate::testing::quorate_command("normalize " + quorate::testing::sh(dir.string()) +
                                                              " -o " +
                                                              quorate::testing::sh((scratch_ / "n.tar").string())));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("JSON nested deeper than 64 levels"));
}

// An image whose layers are the uncompressed tars `tars`, in order; its manifest digest.
std::string make_tar_layers_image(const std::filesystem::path& dir, const std::vector<std::string>& tars) {
  std::filesystem::create_directories(dir);
  auto layout = normalize::OciLayoutWriter::open(dir);
  std::vector<normalize::Descriptor> layers;
  std::vector<std::string> diff_ids;
  for (const auto& tar : tars) {  // a tar, or a gzipped one (python_tar's "w:gz")
    const bool gzip = tar.starts_with("\x1f\x8b");
    auto blob = layout->add_blob(
        gzip ? "application/vnd.oci.image.layer.v1.tar+gzip" : "application/vnd.oci.image.layer.v1.tar", tar);
    EXPECT_TRUE(blob.ok());
    layers.push_back(*blob);
    diff_ids.push_back(
        normalize::decompressed_digest(dir / "blobs/sha256" / digest_hex(blob->digest), UINT64_MAX).value());
  }
  nlohmann::json config = {
      {"architecture", "amd64"}, {"os", "linux"}, {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  auto config_desc = layout->add_blob(normalize::kMediaTypeConfig, canonical_json(config, "config").value());
  auto manifest =
      layout->add_blob(normalize::kMediaTypeManifest, normalize::make_manifest(*config_desc, layers).value());
  EXPECT_TRUE(layout->write_index(*manifest, "made").ok());
  return manifest->digest;
}

// An image whose layers are the uncompressed tar `layer` listed `times` times; its manifest digest.
std::string make_tar_layer_image(const std::filesystem::path& dir, const std::string& layer, size_t times) {
  return make_tar_layers_image(dir, std::vector<std::string>(times, layer));
}

// The bytes of a tar that the Python lines `entries` write to the tarfile `t` (PAX format, opened with `mode`:
// "w:gz" compresses); `io`, `tarfile` and `E(name, type=tarfile.REGTYPE, data=b"", **attributes)`, which adds
// one member, are at hand.
std::string python_tar(const std::filesystem::path& out, const std::string& entries, const std::string& mode = "w") {
  auto made = quorate::testing::run(
      "python3 -c " +
      quorate::testing::sh("import io,sys,tarfile\n"
                           "t=tarfile.open(sys.argv[1],'" +
                           mode +
                           "',format=tarfile.PAX_FORMAT)\n"
                           "def E(name,type=tarfile.REGTYPE,data=b'',**kw):\n"
                           "  i=tarfile.TarInfo(name); i.type=type; i.size=len(data) if type==tarfile.REGTYPE else 0\n"
                           "  for k,v in kw.items(): setattr(i,k,v)\n"
                           "  t.addfile(i,io.BytesIO(data) if type==tarfile.REGTYPE else None)\n" +
                           entries + "\nt.close()\n") +
      " " + quorate::testing::sh(out.string()));
  EXPECT_EQ(made.exit_code, 0) << made.out;
  return slurp(out);
}

// Unpacking a builder image has `quorate normalize`'s limits: a layer whose entries declare more than 8 GiB (a
// sparse one at its full size) is refused (a 99 KB layer filled 3 GiB of the store), and an image listing more
// than 128 layers (one small layer listed a hundred thousand times multiplied every per-layer limit) is not
// imported.
TEST_F(ImageStoreTest, UnpackBombsAndLayerFloodsAreRefused) {
  auto tar = scratch_ / "sparse.tar";
  auto made =
      quorate::testing::run("python3 -c " +
                            quorate::testing::sh("import io,sys,tarfile\n"
                                                 "t=tarfile.open(sys.argv[1],'w',format=tarfile.PAX_FORMAT)\n"
                                                 "i=tarfile.TarInfo('big'); i.size=4\n"
                                                 "i.pax_headers={'GNU.sparse.map':'0,4','GNU.sparse.size':str(9<<30)}\n"
                                                 "t.addfile(i,io.BytesIO(b'ABCD')); t.close()\n") +
                            " " + quorate::testing::sh(tar.string()));
  ASSERT_EQ(made.exit_code, 0) << made.out;
  auto s = store();
  std::string bomb = make_tar_layer_image(scratch_ / "bomb", slurp(tar), 1);
  ASSERT_TRUE(s.import_layout(scratch_ / "bomb").ok());
  auto root = s.rootfs(s.verify(bomb).value());
  ASSERT_FALSE(root.ok()) << "a layer declaring 9 GiB was unpacked";
  EXPECT_TRUE(root.status().is_bad_input()) << root.status().to_string();
  EXPECT_THAT(root.status().message(), HasSubstr("expands to more than 10000000 entries or 8589934592 bytes"));

  make_tar_layer_image(scratch_ / "flood", slurp(tar), 129);
  auto flood = s.import_layout(scratch_ / "flood");
  ASSERT_FALSE(flood.ok());
  EXPECT_THAT(flood.status().message(), HasSubstr("lists 129 layers; an image may have at most 128"));
  auto r = quorate::testing::run(
      quorate::testing::quorate_command("normalize " + quorate::testing::sh((scratch_ / "flood").string()) + " -o " +
                                        quorate::testing::sh((scratch_ / "n.tar").string())));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("lists 129 layers; an image may have at most 128"));
}

// Descriptors are read by one rule (normalize::parse_descriptor) wherever an image comes in: a digest, size or
// mediaType of the wrong JSON type was "internal error: [json.exception.type_error.302]" from `image import`,
// and a size other than the blob's was not looked at. Each is now exit 2 naming the field, from import and
// normalize alike.
TEST_F(ImageStoreTest, DescriptorsOfTheWrongShapeOrSizeAreRefusedNamingTheField) {
  auto expect_refused = [&](const std::filesystem::path& dir, const std::string& why) {
    for (const std::string& command : {"image import " + quorate::testing::sh(dir.string()) + " --image-store " +
                                           quorate::testing::sh((scratch_ / "store").string()),
                                       "normalize " + quorate::testing::sh(dir.string()) + " -o " +
                                           quorate::testing::sh((scratch_ / "n.tar").string())}) {
      auto r = quorate::testing::run(quorate::testing::quorate_command(command));
      EXPECT_EQ(r.exit_code, 2) << command << ": " << r.out;
      EXPECT_THAT(r.out, HasSubstr(why)) << command;
      EXPECT_THAT(r.out, Not(HasSubstr("internal error"))) << command;
    }
  };
  std::string layer =
      quorate::testing::run("python3 -c " + quorate::testing::sh("import io,sys,tarfile\n"
                                                                 "b=io.BytesIO(); t=tarfile.open(fileobj=b,mode='w')\n"
                                                                 "i=tarfile.TarInfo('f'); i.size=1\n"
                                                                 "t.addfile(i,io.BytesIO(b'x')); t.close()\n"
                                                                 "sys.stdout.buffer.write(b.getvalue())\n"))
          .out;
  ASSERT_EQ(layer.size(), 10240u);
  make_tar_layer_image(scratch_ / "good", layer, 1);
  auto index = nlohmann::json::parse(slurp(scratch_ / "good/index.json"));
  const uint64_t manifest_size = index["manifests"][0]["size"];
  auto with_index = [&](const std::string& name, const std::string& field, const nlohmann::json& value) {
    auto dir = scratch_ / name;
    std::filesystem::copy(scratch_ / "good", dir, std::filesystem::copy_options::recursive);
    auto changed = index;
    changed["manifests"][0][field] = value;
    std::filesystem::remove(dir / "index.json");
    quorate::testing::spit(dir / "index.json", changed.dump());
    return dir;
  };
  expect_refused(with_index("digest-number", "digest", 12), "index.json: manifests[0]: a descriptor without a digest");
  expect_refused(with_index("type-array", "mediaType", nlohmann::json::array()),
                 "has a mediaType that is not a string");
  expect_refused(with_index("size-string", "size", std::to_string(manifest_size)),
                 "has no size, or one that is not a non-negative integer");
  expect_refused(
      with_index("size-wrong", "size", manifest_size + 1),
      "is " + std::to_string(manifest_size) + " bytes; its descriptor says " + std::to_string(manifest_size + 1));

  // A layer whose descriptor gives another size than the blob's.
  auto dir = scratch_ / "layer-size";
  std::filesystem::create_directories(dir);
  auto layout = normalize::OciLayoutWriter::open(dir);
  auto blob = layout->add_blob("application/vnd.oci.image.layer.v1.tar", layer);
  auto config = layout->add_blob(
      normalize::kMediaTypeConfig,
      nlohmann::json{
          {"architecture", "amd64"}, {"os", "linux"}, {"rootfs", {{"type", "layers"}, {"diff_ids", {blob->digest}}}}}
          .dump());
  auto lying = *blob;
  lying.size = 512;
  auto manifest = layout->add_blob(normalize::kMediaTypeManifest, normalize::make_manifest(*config, {lying}).value());
  ASSERT_TRUE(layout->write_index(*manifest, "lying").ok());
  expect_refused(dir, "is 10240 bytes; its descriptor says 512");
}

// An image config is read by one rule (normalize::check_image_config) wherever it comes in: "os" a number,
// "config.Labels" a string or "config.ExposedPorts" an array made `quorate build` FROM the image fail with
// "internal error: [json.exception.type_error…]" (or, for "config.Env" a string, drop the base's environment
// silently). verify and normalize now refuse the image naming the field; Docker's nulls still pass.
TEST_F(ImageStoreTest, ConfigFieldsOfTheWrongTypeAreRefusedNamingTheField) {
  auto image_with = [&](const std::string& name, const nlohmann::json& config) {
    auto dir = scratch_ / name;
    std::filesystem::create_directories(dir);
    auto layout = normalize::OciLayoutWriter::open(dir);
    auto config_desc = layout->add_blob(normalize::kMediaTypeConfig, config.dump());
    auto manifest = layout->add_blob(normalize::kMediaTypeManifest, normalize::make_manifest(*config_desc, {}).value());
    EXPECT_TRUE(layout->write_index(*manifest, name).ok());
    EXPECT_TRUE(store().import_layout(dir).ok());
    return manifest->digest;
  };
  nlohmann::json base = {{"architecture", "amd64"},
                         {"os", "linux"},
                         {"rootfs", {{"type", "layers"}, {"diff_ids", nlohmann::json::array()}}}};
  struct Case {
    std::string field;
    nlohmann::json value;
    std::string why;
  };
  int cases = 0;
  for (const auto& c :
       std::vector<Case>{{"/os", 5, "config field \"os\" is a number, not a string"},
                         {"/config/Labels", "x", "\"config.Labels\" is a string, not an object of strings or null"},
                         {"/config/ExposedPorts", {1}, "\"config.ExposedPorts\" is an array, not an object or null"},
                         {"/config/Env", "PATH=/bin", "\"config.Env\" is a string, not an array of strings or null"},
                         {"/history", "x", "\"history\" is a string, not an array"},
                         {"/rootfs/diff_ids", {1}, "\"rootfs.diff_ids\" is an array, not an array of strings"}}) {
    auto config = base;
    config[nlohmann::json::json_pointer(c.field)] = c.value;
    std::string name = "bad-" + std::to_string(cases++);
    auto digest = image_with(name, config);
    auto verified = store().verify(digest);
    ASSERT_FALSE(verified.ok()) << c.field;
    EXPECT_TRUE(verified.status().is_bad_input()) << verified.status().to_string();
    EXPECT_THAT(verified.status().message(), HasSubstr(c.why));
    auto r = quorate::testing::run(
        quorate::testing::quorate_command("normalize " + quorate::testing::sh((scratch_ / name).string()) + " -o " +
                                          quorate::testing::sh((scratch_ / (name + ".tar")).string())));
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_THAT(r.out, HasSubstr(c.why));
  }
  auto docker_nulls = base;
  docker_nulls["config"] = {{"Labels", nullptr}, {"Entrypoint", nullptr}, {"Volumes", nullptr}, {"OnBuild", nullptr}};
  EXPECT_TRUE(store().verify(image_with("nulls", docker_nulls)).ok());
}

// A builder image's layers are read by the rule normalize reads by (normalize/tar_reader.h): a UTF-8 link
// target or owner name that libarchive cannot convert to the C locale is kept as stored (the unpack refused it
// before: every warning was an error), and a pax header libarchive drops, which would leave the entry under its
// ustar name, is refused.
TEST_F(ImageStoreTest, UnpackKeepsUtf8NamesAndRefusesDroppedPaxHeaders) {
  auto layer = [&](const std::string& kind) {
    auto out = scratch_ / kind;
    auto r = quorate::testing::run(
        "python3 " +
        quorate::testing::sh((quorate::testing::source_dir() / "tests/hostile/normalize_hostile_inputs.py").string()) +
        " " + kind + " " + quorate::testing::sh(out.string()));
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return slurp(out);
  };
  auto s = store();
  std::string utf8 = make_tar_layer_image(scratch_ / "utf8", layer("pax-utf8-names"), 1);
  ASSERT_TRUE(s.import_layout(scratch_ / "utf8").ok());
  auto root = s.rootfs(s.verify(utf8).value());
  ASSERT_TRUE(root.ok()) << root.status().to_string();
  std::error_code ec;
  EXPECT_EQ(std::filesystem::read_symlink(root->path() / "l\xc3\xafnk", ec).string(), "t\xc3\xa4rget/\xe4\xb8\xad")
      << ec.message();

  for (const std::string kind : {"pax-malformed", "k-masks-malformed"}) {  // K: libarchive warns of nothing
    std::string dropped = make_tar_layer_image(scratch_ / (kind + "-image"), layer(kind), 1);
    ASSERT_TRUE(s.import_layout(scratch_ / (kind + "-image")).ok());
    auto refused = s.rootfs(s.verify(dropped).value());
    ASSERT_FALSE(refused.ok()) << kind << ": a layer whose pax header libarchive dropped was unpacked";
    EXPECT_TRUE(refused.status().is_bad_input()) << refused.status().to_string();
    EXPECT_THAT(refused.status().message(), ::testing::ContainsRegex("alformed pax"));
  }
}

// A directory's mode and time are set once every layer is written. libarchive's disk writer set them by path
// at the end: a directory `a/b` (0777) of one layer, `a` whited out and made a symlink to a host directory in
// the next, and the host's `b` was chmod-ed 0777 and given the layer's time (seen: 700 -> 777). Each
// directory is now opened again from the root, one name at a time, without following links.
TEST_F(ImageStoreTest, ADirectoryReplacedByASymlinkIsNotChmodedThrough) {
  const auto victim = scratch_ / "victim";
  std::filesystem::create_directories(victim / "b");
  ASSERT_EQ(::chmod((victim / "b").c_str(), 0700), 0);
  struct stat before {};
  ASSERT_EQ(::stat((victim / "b").c_str(), &before), 0);
  std::string lower = python_tar(scratch_ / "lower.tar",
                                 "E('a',tarfile.DIRTYPE,mode=0o755)\n"
                                 "E('a/b',tarfile.DIRTYPE,mode=0o777,mtime=12345)");
  std::string upper = python_tar(scratch_ / "upper.tar",
                                 "E('a/x')\n"  // the whiteout removes a non-empty directory
                                 "E('.wh.a')\n"
                                 "E('a',tarfile.SYMTYPE,linkname=" +
                                     quorate::testing::sh(victim.string()) + ")");
  auto s = store();
  std::string digest = make_tar_layers_image(scratch_ / "swap", {lower, upper});
  ASSERT_TRUE(s.import_layout(scratch_ / "swap").ok());
  auto root = s.rootfs(s.verify(digest).value());
  ASSERT_TRUE(root.ok()) << root.status().to_string();
  EXPECT_EQ(std::filesystem::read_symlink(root->path() / "a"), victim);
  struct stat after {};
  ASSERT_EQ(::stat((victim / "b").c_str(), &after), 0);
  EXPECT_EQ(after.st_mode & 07777, 0700u) << "a host directory was chmod-ed through the image's symlink";
  EXPECT_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec) << "a host directory's time was set through the symlink";
}

// An image's setuid and setgid bits are kept (the sandbox mounts the tree nosuid), so a hostile image's setuid
// file is a setuid file of the store's owner, root on most nodes: no other user of the host may reach it. The
// tree's top directory is the unpack's private temporary directory, 0700, whatever the image says of `.`.
TEST_F(ImageStoreTest, AnImagesSetuidFilesAreOutOfOtherUsersReach) {
  std::string layer = python_tar(scratch_ / "suid.tar",
                                 "E('.',tarfile.DIRTYPE,mode=0o777)\n"
                                 "E('bin',tarfile.DIRTYPE,mode=0o755)\n"
                                 "E('bin/su',mode=0o4755)");
  auto s = store();
  std::string digest = make_tar_layers_image(scratch_ / "suid", {layer});
  ASSERT_TRUE(s.import_layout(scratch_ / "suid").ok());
  auto root = s.rootfs(s.verify(digest).value());
  ASSERT_TRUE(root.ok()) << root.status().to_string();
  struct stat top {
  }, su{};
  ASSERT_EQ(::stat(root->path().c_str(), &top), 0);
  ASSERT_EQ(::stat((root->path() / "bin" / "su").c_str(), &su), 0);
  EXPECT_EQ(su.st_mode & 07777, 04755u);
  EXPECT_EQ(top.st_mode & 07777, 0700u) << "other users of the host reach the image's setuid files";
}

// A build takes an image's diff_ids from its config, one a layer: a Containerfile FROM a store image whose
// config listed none wrote `"diff_ids": [""]` into the image it built and attested (exit 0, seen). verify now
// refuses a config whose rootfs.diff_ids does not count the manifest's layers, before any build uses it.
TEST_F(ImageStoreTest, AConfigWhoseDiffIdsDoNotCountTheLayersIsRefused) {
  auto s = store();
  const std::string layer = python_tar(scratch_ / "one.tar", "E('f',data=b'x')");
  for (size_t listed : {size_t{0}, size_t{2}}) {
    auto dir = scratch_ / ("listed-" + std::to_string(listed));
    std::filesystem::create_directories(dir);
    auto layout = normalize::OciLayoutWriter::open(dir);
    auto blob = layout->add_blob("application/vnd.oci.image.layer.v1.tar", layer);
    ASSERT_TRUE(blob.ok());
    nlohmann::json config = {
        {"architecture", "amd64"},
        {"os", "linux"},
        {"rootfs", {{"type", "layers"}, {"diff_ids", std::vector<std::string>(listed, blob->digest)}}}};
    auto config_desc = layout->add_blob(normalize::kMediaTypeConfig, canonical_json(config, "config").value());
    auto manifest =
        layout->add_blob(normalize::kMediaTypeManifest, normalize::make_manifest(*config_desc, {*blob}).value());
    ASSERT_TRUE(layout->write_index(*manifest, "miscounted").ok());
    ASSERT_TRUE(s.import_layout(dir).ok());
    auto verified = s.verify(manifest->digest);
    ASSERT_FALSE(verified.ok()) << listed << " diff_ids for one layer passed";
    EXPECT_TRUE(verified.status().is_bad_input()) << verified.status().to_string();
    EXPECT_THAT(verified.status().message(),
                HasSubstr("config lists " + std::to_string(listed) + " diff_ids for 1 layers"));
  }
}

// A build copies a base image's layers with its config's diff_ids into the image it makes: a config that names a
// gzip layer by its compressed digest (or any other diff_id than the layer's) made every node attest an image
// whose config names layers it does not have. The diff_id is recorded with the layer, so an image that lists the
// same layer under another diff_id is refused through the record too.
TEST_F(ImageStoreTest, ALayerThatDoesNotDecompressToItsConfigsDiffIdIsRefused) {
  auto s = store();
  const std::string layer = python_tar(scratch_ / "one.tar.gz", "E('f',data=b'x')", "w:gz");
  const std::string right = make_tar_layers_image(scratch_ / "right", {layer});
  ASSERT_TRUE(s.import_layout(scratch_ / "right").ok());
  auto verified = s.verify(right);
  ASSERT_TRUE(verified.ok()) << verified.status().to_string();
  const std::string blob_digest = verified->layers.at(0).digest;
  const std::string diff_id = sha256_digest(
      quorate::testing::run("gzip -dc " + quorate::testing::sh(verified->layers.at(0).blob.string())).out);
  ASSERT_NE(diff_id, blob_digest);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));  // the blob is old enough to be recorded
  ASSERT_TRUE(s.verify(right).ok());
  const auto record = scratch_ / "store/verified" / digest_hex(blob_digest);
  EXPECT_THAT(slurp(record), HasSubstr("diff_id=" + diff_id + " expanded="));

  auto dir = scratch_ / "wrong";
  std::filesystem::create_directories(dir);
  auto layout = normalize::OciLayoutWriter::open(dir);
  auto blob = layout->add_blob("application/vnd.oci.image.layer.v1.tar+gzip", layer);
  ASSERT_TRUE(blob.ok());
  nlohmann::json config = {
      {"architecture", "amd64"}, {"os", "linux"}, {"rootfs", {{"type", "layers"}, {"diff_ids", {blob->digest}}}}};
  auto config_desc = layout->add_blob(normalize::kMediaTypeConfig, canonical_json(config, "config").value());
  auto manifest =
      layout->add_blob(normalize::kMediaTypeManifest, normalize::make_manifest(*config_desc, {*blob}).value());
  ASSERT_TRUE(layout->write_index(*manifest, "wrong").ok());
  ASSERT_TRUE(s.import_layout(dir).ok());
  const std::string recorded = slurp(record);
  for (bool through_the_record : {true, false}) {
    if (!through_the_record) std::filesystem::remove(record);
    auto refused = s.verify(manifest->digest);
    ASSERT_FALSE(refused.ok()) << "a config naming a layer by another diff_id passed";
    EXPECT_TRUE(refused.status().is_bad_input()) << refused.status().to_string();
    EXPECT_THAT(refused.status().message(), HasSubstr("layer 0 (" + blob_digest + ") decompresses to " + diff_id +
                                                      ", not the config's diff_id " + blob_digest));
    if (through_the_record) {
      EXPECT_EQ(slurp(record), recorded);
    }
  }
}

// An opaque whiteout hides the lower layers' content of its directory, not its own layer's (OCI image spec,
// "Whiteouts"; containerd keeps what the layer unpacked). In a canonical layer the marker sorts after names
// starting with a byte below '.' (`-`, `+`, `#`, a space): quorate's own builder writes `d/-new` before
// `d/.wh..wh..opq`, and the unpack removed `d/-new` with the lower `d/old`.
TEST_F(ImageStoreTest, AnOpaqueWhiteoutKeepsItsOwnLayersEntries) {
  std::string lower = python_tar(scratch_ / "lower.tar",
                                 "E('d',tarfile.DIRTYPE,mode=0o755)\n"
                                 "E('d/old',data=b'old')\n"
                                 "E('d/-dir',tarfile.DIRTYPE,mode=0o755)\n"
                                 "E('d/-dir/old',data=b'old')\n"
                                 "E('d/gone',tarfile.DIRTYPE,mode=0o755)\n"
                                 "E('d/gone/old',data=b'old')");
  std::string upper = python_tar(scratch_ / "upper.tar",
                                 "E('d',tarfile.DIRTYPE,mode=0o755)\n"
                                 "E('d/-dir/new',data=b'new')\n"
                                 "E('d/-new',data=b'new')\n"
                                 "E('d/.wh..wh..opq')\n"
                                 "E('d/x',data=b'x')");
  auto s = store();
  std::string digest = make_tar_layers_image(scratch_ / "opaque", {lower, upper});
  ASSERT_TRUE(s.import_layout(scratch_ / "opaque").ok());
  auto root = s.rootfs(s.verify(digest).value());
  ASSERT_TRUE(root.ok()) << root.status().to_string();
  EXPECT_EQ(quorate::testing::names_in(root->path() / "d"), (std::set<std::string>{"-dir", "-new", "x"}));
  EXPECT_EQ(quorate::testing::names_in(root->path() / "d/-dir"), std::set<std::string>{"new"});
}

// Every directory's path is held until the last layer is written (its mode and time are set then): 2.8 MB of
// gzip, 75,000 directories of 3.8 KB paths, held 316 MB (maxrss; 10,000,000 entries a layer would hold 40 GB),
// and was unpacked. Past 64 MiB of directory paths (670,000 of 100 bytes) the image is refused.
TEST_F(ImageStoreTest, DirectoryPathsPastABoundAreRefused) {
  std::string layer = python_tar(scratch_ / "dirs.tar.gz",
                                 "deep='/'.join(['d'*250]*15)\n"
                                 "for i in range(18000): E(deep+'/%08d'%i,tarfile.DIRTYPE,mode=0o755)",
                                 "w:gz");
  auto s = store();
  std::string digest = make_tar_layers_image(scratch_ / "dirs", {layer});
  ASSERT_TRUE(s.import_layout(scratch_ / "dirs").ok());
  auto verified = s.verify(digest);
  ASSERT_TRUE(verified.ok()) << verified.status().to_string();
  auto root = s.rootfs(*verified);
  ASSERT_FALSE(root.ok()) << "67 MB of directory paths were held";
  EXPECT_TRUE(root.status().is_bad_input()) << root.status().to_string();
  EXPECT_THAT(root.status().message(), HasSubstr("the image's directory paths pass 67108864 bytes together"));
  EXPECT_EQ(quorate::testing::names_in(scratch_ / "store/rootfs"), std::set<std::string>{digest_hex(digest) + ".lock"})
      << "the half-made tree stayed";
}

// Each layer may expand to 8 GiB, and an image may list 128 layers: 1 TiB of files in the store from an image
// of 34 MB (8 GiB of zeros is 270 KB of zstd: 1 GiB measured 33 KB; 128 such layers, each naming its file
// differently, fill the disk beside the store). The layers of one image now expand to at most 32 GiB
// together (declared sizes, a sparse file at its full size).
TEST_F(ImageStoreTest, AnImagesLayersExpandToABoundTogether) {
  std::vector<std::string> layers;
  for (int i = 0; i < 5; ++i) {  // 5 x 7 GiB declared, each a sparse file of 4 bytes
    layers.push_back(python_tar(scratch_ / ("sparse" + std::to_string(i) + ".tar"),
                                "i=tarfile.TarInfo('big" + std::to_string(i) +
                                    "'); i.size=4\n"
                                    "i.pax_headers={'GNU.sparse.map':'0,4','GNU.sparse.size':str(7<<30)}\n"
                                    "t.addfile(i,io.BytesIO(b'ABCD'))"));
  }
  auto s = store();
  std::string digest = make_tar_layers_image(scratch_ / "five", layers);
  ASSERT_TRUE(s.import_layout(scratch_ / "five").ok());
  auto root = s.rootfs(s.verify(digest).value());
  ASSERT_FALSE(root.ok()) << "35 GiB of declared files were unpacked";
  EXPECT_TRUE(root.status().is_bad_input()) << root.status().to_string();
  EXPECT_THAT(root.status().message(), HasSubstr("the image's layers expand to more than 34359738368 bytes together"));
}

// Every name is opened relative to its directory, so the store's own path does not count against PATH_MAX:
// an image with 1.4 KB paths in a store under a 2.8 KB path was "i/o error: ... Can't restore time" (a
// symlink's time set through the joined path), and is unpacked now; `image rm` removes it. A member's own path
// of PATH_MAX or more is refused wherever the store is.
TEST_F(ImageStoreTest, AStoreUnderALongPathUnpacksDeepTrees) {
  std::string deep;
  for (int i = 0; i < 7; ++i) deep += (i ? "/" : "") + std::string(200, 'd');
  std::string layer = python_tar(
      scratch_ / "deep.tar", "E('" + deep + "/f',data=b'deep')\n" + "E('" + deep + "/s',tarfile.SYMTYPE,linkname='f')");
  std::string digest = make_tar_layers_image(scratch_ / "deep", {layer});
  std::filesystem::path long_dir = scratch_.path();
  for (int i = 0; i < 11; ++i) long_dir /= std::string(250, 's');
  std::filesystem::create_directories(long_dir);
  auto s = ImageStore::open(long_dir / "store");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  ASSERT_TRUE(s->import_layout(scratch_ / "deep").ok());
  std::filesystem::path rootfs_dir;
  {
    auto root = s->rootfs(s->verify(digest).value());
    ASSERT_TRUE(root.ok()) << root.status().to_string();
    ASSERT_GT((root->path() / deep / "f").string().size(), size_t{PATH_MAX});
    int fd = open_any_length((root->path() / deep / "s").string(), O_RDONLY);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    char buf[8] = {};
    EXPECT_EQ(::read(fd, buf, sizeof buf), 4);
    ::close(fd);
    EXPECT_STREQ(buf, "deep");
    rootfs_dir = root->path().parent_path();
  }  // the lease released: a build no longer holds the tree
  ASSERT_TRUE(s->remove({digest}).ok());
  EXPECT_EQ(quorate::testing::names_in(rootfs_dir), std::set<std::string>{digest_hex(digest) + ".lock"});

  std::string too_long(PATH_MAX, 'x');
  for (size_t i = 200; i < too_long.size(); i += 200) too_long[i] = '/';
  std::string refused = make_tar_layers_image(
      scratch_ / "too-long", {python_tar(scratch_ / "too-long.tar", "E('" + too_long + "',data=b'x')")});
  ASSERT_TRUE(s->import_layout(scratch_ / "too-long").ok());
  auto r = s->rootfs(s->verify(refused).value());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is_bad_input()) << r.status().to_string();
  EXPECT_THAT(r.status().message(), HasSubstr("a path of 4096 bytes"));
}

// A failed import takes out the blobs it added. A layout whose second layer did not hash to its digest left
// the manifest, the config and the first layer (1 MiB) in the store, listed by no index entry, so `rm` never
// collects them: every failed import of fresh layers added to the store for good.
TEST_F(ImageStoreTest, AFailedImportLeavesNoBlobs) {
  auto s = store();
  ASSERT_TRUE(s.import_layout(scratch_ / "busybox").ok());
  const auto blobs = scratch_ / "store/blobs/sha256";
  const auto before = quorate::testing::names_in(blobs);
  std::string first(size_t{1} << 20, 'a');
  for (size_t i = 0; i < first.size(); ++i) first[i] = static_cast<char>(i * 7919 % 251);
  std::string digest = make_tar_layers_image(scratch_ / "bad", {first, "second layer"});
  const auto second = scratch_ / "bad/blobs/sha256" / digest_hex(sha256_digest("second layer"));
  std::filesystem::permissions(second, std::filesystem::perms::owner_write, std::filesystem::perm_options::add);
  quorate::testing::spit(second, "SECOND LAYER");  // same size, other bytes
  auto imported = s.import_layout(scratch_ / "bad");
  ASSERT_FALSE(imported.ok());
  EXPECT_TRUE(imported.status().is_bad_input()) << imported.status().to_string();
  EXPECT_THAT(imported.status().message(), HasSubstr("not its digest " + sha256_digest("second layer")));
  EXPECT_EQ(quorate::testing::names_in(blobs), before) << "a failed import left blobs behind";
  EXPECT_EQ(s.list().value().size(), 1u);
  // What the store had stays, and the same import from a good source then succeeds.
  ASSERT_TRUE(s.verify(digest_).ok());
  quorate::testing::spit(second, "second layer");
  ASSERT_TRUE(s.import_layout(scratch_ / "bad").ok());
  EXPECT_EQ(quorate::testing::names_in(blobs).size(), before.size() + 4);
}

// A manifest or config is JSON of at most 16 MiB, and its descriptor gives its size: one that says more is
// refused before a byte is copied. A layout whose index listed a 4 GiB sparse file as its manifest (size
// 4294967296) had the store write 4 GiB beside its blobs for 22 s before the digest check refused it.
TEST_F(ImageStoreTest, AManifestOrConfigLargerThanJsonMayBeIsRefusedBeforeItIsCopied) {
  auto s = store();
  const uint64_t size = uint64_t{64} << 20;
  for (const std::string kind : {"manifest", "config"}) {
    auto dir = scratch_ / ("large-" + kind);
    std::filesystem::create_directories(dir);
    auto layout = normalize::OciLayoutWriter::open(dir);
    const std::string fake = sha256_digest(kind);  // the sparse file's name; its bytes do not hash to it
    auto sparse = dir / "blobs/sha256" / digest_hex(fake);
    std::filesystem::create_directories(sparse.parent_path());
    { std::ofstream(sparse.string()).close(); }
    std::filesystem::resize_file(sparse, size);
    normalize::Descriptor large{
        kind == "manifest" ? normalize::kMediaTypeManifest : normalize::kMediaTypeConfig, fake, size, {}};
    if (kind == "manifest") {
      ASSERT_TRUE(layout->write_index(large, "large").ok());
    } else {
      auto manifest = layout->add_blob(normalize::kMediaTypeManifest, normalize::make_manifest(large, {}).value());
      ASSERT_TRUE(layout->write_index(*manifest, "large").ok());
    }
    auto imported = s.import_layout(dir);
    ASSERT_FALSE(imported.ok()) << kind;
    EXPECT_TRUE(imported.status().is_bad_input()) << imported.status().to_string();
    EXPECT_THAT(imported.status().message(),
                HasSubstr(kind + " " + fake + " is 67108864 bytes; JSON from outside is at most 16777216"));
  }
}

// Bytes this process has written (write(2) and the like), from /proc/self/io.
uint64_t bytes_written() {
  std::ifstream in("/proc/self/io");
  std::string key;
  uint64_t value = 0;
  while (in >> key >> value) {
    if (key == "wchar:") return value;
  }
  return 0;
}

// A sparse layer file in a layout, which its descriptor's size matches but its digest does not, is refused
// before it is copied: it was written into the store at its full size first (1 GiB of zeros from a file of no
// blocks, 4 KB from a tar of it), and only then found wrong. A sparse layer that matches is still imported.
TEST_F(ImageStoreTest, ASparseLayerIsHashedBeforeItIsCopied) {
  ASSERT_TRUE(std::ifstream("/proc/self/io").good()) << "no /proc/self/io";
  auto s = store();
  auto zeros_digest = [](uint64_t size) {
    Sha256 hash;
    const std::vector<uint8_t> zeros(1 << 20);
    for (uint64_t done = 0; done < size; done += zeros.size()) hash.update(zeros);
    return hash.finish_digest();
  };
  for (const bool honest : {false, true}) {
    const uint64_t size = honest ? uint64_t{64} << 20 : uint64_t{1} << 30;
    auto dir = scratch_ / (honest ? "honest" : "hostile");
    std::filesystem::create_directories(dir);
    auto layout = normalize::OciLayoutWriter::open(dir);
    const std::string digest = honest ? zeros_digest(size) : sha256_digest("not a gibibyte of zeros");
    auto sparse = dir / "blobs/sha256" / digest_hex(digest);
    { std::ofstream(sparse.string()).close(); }
    std::filesystem::resize_file(sparse, size);
    normalize::Descriptor layer{"application/vnd.oci.image.layer.v1.tar", digest, size, {}};
    nlohmann::json config = {
        {"architecture", "amd64"}, {"os", "linux"}, {"rootfs", {{"type", "layers"}, {"diff_ids", {digest}}}}};
    auto config_desc = layout->add_blob(normalize::kMediaTypeConfig, canonical_json(config, "config").value());
    auto manifest =
        layout->add_blob(normalize::kMediaTypeManifest, normalize::make_manifest(*config_desc, {layer}).value());
    ASSERT_TRUE(layout->write_index(*manifest, "sparse").ok());
    const uint64_t before = bytes_written();
    auto imported = s.import_layout(dir);
    const uint64_t written = bytes_written() - before;
    if (honest) {
      ASSERT_TRUE(imported.ok()) << imported.status().to_string();
      EXPECT_EQ(std::filesystem::file_size(s.dir() / "blobs/sha256" / digest_hex(digest)), size);
      continue;
    }
    ASSERT_FALSE(imported.ok());
    EXPECT_TRUE(imported.status().is_bad_input()) << imported.status().to_string();
    EXPECT_THAT(imported.status().message(), HasSubstr("not its digest " + digest));
    EXPECT_LT(written, uint64_t{16} << 20) << "bytes written by an import refused for its digest";
  }
}

// An import hashes each blob once, however often its manifests list it. A blob already in the store was
// hashed again at each listing: one 32 MiB layer listed 128 times (what a manifest may list) took 2.3 s against
// 0.04 s listed once (it now reads the layer once, counted in bytes), and an 8 GiB layer listed so by each of 1000
// manifests is a petabyte of hashing.
TEST_F(ImageStoreTest, ALayerListedManyTimesIsHashedOnce) {
  const std::string layer(size_t{16} << 20, '\0');
  auto read_by_import = [&](const std::string& name, size_t times) {
    make_tar_layer_image(scratch_ / name, layer, times);
    auto s = ImageStore::open(scratch_ / (name + "-store")).value();
    const uint64_t before = quorate::testing::bytes_read_by_this_process();
    EXPECT_TRUE(s.import_layout(scratch_ / name).ok());
    return quorate::testing::bytes_read_by_this_process() - before;
  };
  const uint64_t once = read_by_import("once", 1);
  const uint64_t many = read_by_import("many", 128);
  EXPECT_GE(once, layer.size());
  EXPECT_LT(many, once + (uint64_t{4} << 20)) << "listed once: " << once << " bytes read; 128 times: " << many;
}

// `quorate image import` killed while it copies a blob leaves no half-copied blob in the store (1.2 GB of
// `.HEX.tmp.*` stayed, and nothing removes them later).
TEST_F(ImageStoreTest, AnInterruptedImportLeavesNoTemporaries) {
  make_tar_layer_image(scratch_ / "large", std::string(size_t{512} << 20, '\0'), 1);
  for (int sig : {SIGINT, SIGTERM}) {
    auto store_dir = scratch_ / ("store-" + std::to_string(sig));
    std::filesystem::create_directories(store_dir / "blobs/sha256");
    auto copying = [&] { return temporaries_in(blob_names(store_dir)) > 0; };
    int status = import_signalled_when(scratch_ / "large", store_dir, copying, sig);
    ASSERT_NE(status, -1) << "no blob was being copied";
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == sig) << "status " << status;
    EXPECT_EQ(temporaries_in(blob_names(store_dir)), 0u) << "a half-copied blob was left in the store";
  }
}

// `quorate image import` interrupted once it has stored some of an image's blobs takes them out again, as a
// failed import does: its manifest, config and first 128 MiB layer stayed for good (no index entry lists
// them, so `rm` never collects them). The blobs of an image already in the store stay.
TEST_F(ImageStoreTest, AnInterruptedImportLeavesNoBlobItAdded) {
  make_tar_layers_image(scratch_ / "large",
                        {std::string(size_t{128} << 20, '\0'), std::string(size_t{512} << 20, 'x')});
  auto small = make_tar_layer_image(scratch_ / "small", "small layer", 1);
  for (int sig : {SIGINT, SIGTERM}) {
    auto store_dir = scratch_ / ("store-" + std::to_string(sig));
    auto store = ImageStore::open(store_dir);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(store->import_layout(scratch_ / "small").ok());
    const std::set<std::string> listed = blob_names(store_dir);  // the small image's manifest, config and layer
    ASSERT_EQ(listed.size(), 3u);
    // Stopped while the last layer is copied: the manifest, config and first layer are stored by then.
    auto copying_the_last = [&] {
      auto now = blob_names(store_dir);
      const size_t temporaries = temporaries_in(now);
      return now.size() - temporaries == listed.size() + 3 && temporaries > 0;
    };
    int status = import_signalled_when(scratch_ / "large", store_dir, copying_the_last, sig);
    ASSERT_NE(status, -1) << "the last layer was not being copied";
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == sig) << "status " << status;
    EXPECT_EQ(blob_names(store_dir), listed) << "blobs no index entry lists were left in the store";
    auto images = store->list();
    ASSERT_TRUE(images.ok());
    ASSERT_EQ(images->size(), 1u);
    EXPECT_EQ(images->at(0).digest, small);
    EXPECT_TRUE(store->verify(small).ok());
  }
}

// SIGKILL cannot be handled: the manifest, config, first layer and half-copied second layer of a killed
// import stay, until the next import (another process, under the store lock) removes what no index entry
// lists and is older than itself. The blobs of the images in the store stay.
TEST_F(ImageStoreTest, TheNextImportRemovesWhatAKilledOneLeft) {
  make_tar_layers_image(scratch_ / "large",
                        {std::string(size_t{128} << 20, '\0'), std::string(size_t{512} << 20, 'x')});
  auto small = make_tar_layer_image(scratch_ / "small", "small layer", 1);
  auto other = make_tar_layer_image(scratch_ / "other", "other layer", 1);
  auto store_dir = scratch_ / "store";
  auto store = ImageStore::open(store_dir);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE(store->import_layout(scratch_ / "small").ok());
  auto names = [&] { return blob_names(store_dir); };
  const std::set<std::string> listed = names();
  ASSERT_EQ(listed.size(), 3u);
  auto copying_the_last = [&] {
    auto now = names();
    const size_t temporaries = temporaries_in(now);
    return now.size() - temporaries == listed.size() + 3 && temporaries > 0;
  };
  int status = import_signalled_when(scratch_ / "large", store_dir, copying_the_last, SIGKILL);
  ASSERT_NE(status, -1) << "the last layer was not being copied";
  ASSERT_EQ(names().size(), listed.size() + 4) << "what SIGKILL leaves: 3 blobs and a temporary";

  auto r = quorate::testing::run(
      quorate::testing::quorate_command("image import " + quorate::testing::sh((scratch_ / "other").string()) +
                                        " --image-store " + quorate::testing::sh(store_dir.string())));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::set<std::string> expected = listed;
  for (const auto& e : std::filesystem::directory_iterator(scratch_ / "other/blobs/sha256")) {
    expected.insert(e.path().filename().string());
  }
  EXPECT_EQ(names(), expected);
  EXPECT_TRUE(store->verify(small).ok());
  EXPECT_TRUE(store->verify(other).ok());
}

TEST_F(ImageStoreTest, ConcurrentColdUnpacksShareOneTree) {
  auto s = store();
  ASSERT_TRUE(s.import_layout(scratch_ / "busybox").ok());
  auto v = s.verify(digest_);
  ASSERT_TRUE(v.ok());
  std::optional<Result<RootfsLease>> a, b;
  std::thread t1([&] { a.emplace(s.rootfs(*v)); });
  std::thread t2([&] { b.emplace(ImageStore::open(scratch_ / "store").value().rootfs(*v)); });
  t1.join();
  t2.join();
  ASSERT_TRUE(a->ok()) << a->status().to_string();
  ASSERT_TRUE(b->ok()) << b->status().to_string();
  EXPECT_EQ((*a)->path(), (*b)->path());
  for (const auto& e : std::filesystem::directory_iterator(scratch_ / "store/rootfs")) {
    EXPECT_EQ(e.path().filename().string().rfind(".tmp-", 0), std::string::npos) << "left behind: " << e.path();
  }
}

TEST_F(ImageStoreTest, CliImportsListsAndRefusesAMissingLayout) {
  auto bin = quorate::testing::quorate_bin();
  auto store_dir = quorate::testing::sh((scratch_ / "cli-store").string());
  auto imported = quorate::testing::run(bin + " image import " + quorate::testing::sh((scratch_ / "busybox").string()) +
                                        " --image-store " + store_dir);
  EXPECT_EQ(imported.exit_code, 0) << imported.out;
  EXPECT_THAT(imported.out, HasSubstr(digest_));
  auto listed = quorate::testing::run(bin + " image ls --json --image-store " + store_dir);
  EXPECT_EQ(listed.exit_code, 0) << listed.out;
  EXPECT_THAT(listed.out, HasSubstr("\"digest\":\"" + digest_));
  auto missing = quorate::testing::run(bin + " image import " + quorate::testing::sh((scratch_ / "nope").string()) +
                                       " --image-store " + store_dir);
  EXPECT_EQ(missing.exit_code, 2) << missing.out;
}

class BuilderImageBuild : public ImageStoreTest {
 protected:
  std::string commit(const std::string& image_line, const std::string& script) {
    auto src = scratch_ / ("src-" + std::to_string(++n_));
    builder::testing::write_text(src / "quorate.toml", "[image]\nname = \"example.org/in-busybox\"\n\n[build]\n" +
                                                           image_line + "\n\n[[steps]]\nrun = \"" + script +
                                                           "\"\nto = \"/out\"\n");
    repo_ = scratch_ / ("repo-" + std::to_string(n_));
    return builder::testing::make_repo(src, repo_);
  }
  builder::BuildOptions options(const std::string& c) {
    builder::BuildOptions o;
    o.repo = repo_.string();
    o.commit = c;
    o.output = scratch_ / ("out-" + std::to_string(++n_));
    o.work_dir = scratch_ / "work";
    o.image_store = scratch_ / "store";
    o.threads = 1;
    return o;
  }
  // `quorate build -q` of repo_ at `c`, run in scratch_ with relative paths: -o `out`, --image-store store,
  // --work-dir w, then `extra`.
  quorate::testing::CommandResult cli_build(const std::string& c, const std::string& out,
                                            const std::string& extra = "") {
    return quorate::testing::run("cd " + quorate::testing::sh(scratch_.path().string()) + " && " +
                                 quorate::testing::sh(quorate::testing::quorate_bin()) + " build -q --repo " +
                                 repo_.filename().string() + " --commit " + c + " -o " + out +
                                 " --image-store store --work-dir w " + extra);
  }
  std::filesystem::path repo_;
  int n_ = 0;
};

// Relative --image-store, --work-dir, -o and --repo are taken from the caller's directory, although the sandbox
// runs steps with `/` as theirs (bwrap found no "store/rootfs/<hex>" or "w/build-…/step-1/tmp" there).
TEST_F(BuilderImageBuild, CliTakesRelativePathsFromItsWorkingDirectory) {
  ASSERT_TRUE(store().import_layout(scratch_ / "busybox").ok());
  auto in_image = commit("image = \"example.org/busybox@" + digest_ + "\"", "ls / > $OUT/root");
  auto r = cli_build(in_image, "out-image");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("wrote out-image (oci,"));
  EXPECT_TRUE(std::filesystem::is_regular_file(scratch_ / "out-image/index.json"));
  // Without a builder image the host's sandbox binds the steps' /src, /out and /tmp from the work directory.
  auto on_host = commit("", "echo built > $OUT/b");
  auto host = cli_build(on_host, "out-host");
  ASSERT_EQ(host.exit_code, 0) << host.out;
  EXPECT_TRUE(std::filesystem::is_regular_file(scratch_ / "out-host/index.json"));
}

TEST_F(BuilderImageBuild, RunStepsSeeTheImageAndNoHostPath) {
  ASSERT_TRUE(store().import_layout(scratch_ / "busybox").ok());
  auto c = commit("image = \"example.org/busybox@" + digest_ + "\"",
                  "ls / > $OUT/root; test -e /usr/bin/gcc && echo host-gcc > $OUT/gcc; "
                  "test -e /etc/shadow && echo shadow > $OUT/shadow; echo $PATH > $OUT/path; true");
  auto o = options(c);
  o.keep_work_dir = false;
  auto r = builder::build(o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_TRUE(r->builder_image.has_value());
  EXPECT_EQ(r->builder_image->second, digest_);
  EXPECT_THAT(builder::build_result_json(*r).value(), HasSubstr("\"builder_image\":{\"digest\":\"" + digest_));
  EXPECT_THAT(builder::build_result_json(*r).value(), HasSubstr("\"run_environment\":\"image\""));
  auto layer = r->output / "blobs/sha256" / digest_hex(r->layers.back().digest);
  auto listing = quorate::testing::run("tar -tzf " + quorate::testing::sh(layer.string())).out;
  EXPECT_THAT(listing, HasSubstr("out/root"));
  EXPECT_THAT(listing, ::testing::Not(HasSubstr("out/gcc"))) << "the host's /usr/bin/gcc is visible";
  EXPECT_THAT(listing, ::testing::Not(HasSubstr("out/shadow"))) << "the host's /etc is visible";
  auto again = builder::build(options(c));
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(again->manifest_digest, r->manifest_digest);
}

// Issue 13 acceptance: a rogue host gcc (bind-mounted over /usr/bin/gcc in a private mount namespace) cannot
// reach a build inside a pinned builder image: same digest with and without it.
TEST_F(BuilderImageBuild, RogueHostGccDoesNotChangeTheDigest) {
  if (!std::filesystem::exists("/usr/bin/gcc")) GTEST_SKIP() << "no host gcc to replace";
  ASSERT_TRUE(store().import_layout(scratch_ / "busybox").ok());
  auto c = commit("image = \"example.org/busybox@" + digest_ + "\"",
                  "if test -e /usr/bin/gcc; then /usr/bin/gcc > $OUT/gcc; fi; echo built > $OUT/b");
  auto rogue = scratch_ / "rogue-gcc";
  quorate::testing::spit(rogue, "#!/bin/sh\necho PAYLOAD\n");
  std::filesystem::permissions(rogue, std::filesystem::perms(0755));
  auto bin = quorate::testing::quorate_bin();
  auto build_cmd = [&](const std::string& out) {
    return bin + " build -q --repo " + quorate::testing::sh(repo_.string()) + " --commit " + c + " -o " +
           quorate::testing::sh((scratch_ / out).string()) + " --image-store " +
           quorate::testing::sh((scratch_ / "store").string()) + " --work-dir " +
           quorate::testing::sh((scratch_ / "w").string());
  };
  auto honest = quorate::testing::run(build_cmd("honest"));
  ASSERT_EQ(honest.exit_code, 0) << honest.out;
  auto inner = "mount --bind " + rogue.string() + " /usr/bin/gcc && " + build_cmd("rogue");
  auto with_rogue = quorate::testing::run("timeout 120 unshare -m sh -c " + quorate::testing::sh(inner));
  ASSERT_EQ(with_rogue.exit_code, 0) << "needs root for unshare -m: " << with_rogue.out;
  EXPECT_EQ(honest.out.substr(0, honest.out.find('\n')), with_rogue.out.substr(0, with_rogue.out.find('\n')));
  EXPECT_THAT(honest.out, HasSubstr("image   sha256:"));
}

TEST_F(BuilderImageBuild, BaseImageComesFromTheStoreByDigest) {
  auto src = scratch_ / "base-src";
  builder::testing::write_text(src / "quorate.toml",
                               "[image]\nname = \"example.org/on-busybox\"\n\n[base]\nimage = "
                               "\"example.org/busybox@" +
                                   digest_ + "\"\n\n[[steps]]\ncopy = \"quorate.toml\"\nto = \"/etc/app\"\n");
  repo_ = scratch_ / "base-repo";
  auto c = builder::testing::make_repo(src, repo_);
  auto missing = builder::build(options(c));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("quorate image import"));
  ASSERT_TRUE(store().import_layout(scratch_ / "busybox").ok());
  auto r = builder::build(options(c));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->base_images.size(), 1u);
  EXPECT_EQ(r->base_images[0].second, digest_);
  ASSERT_EQ(r->layers.size(), 2u);
  EXPECT_TRUE(r->layers[0].from_base);
}

TEST_F(BuilderImageBuild, TagOnlyReferenceIsRefused) {
  auto c = commit("image = \"example.org/busybox:latest\"", "true");
  auto r = builder::build(options(c));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is_bad_input());
  EXPECT_THAT(r.status().message(), HasSubstr("'build.image' must pin the builder image by digest"));
}

TEST_F(BuilderImageBuild, MissingImageIsRefusedSayingHowToImportIt) {
  auto c = commit("image = \"example.org/busybox@" + digest_ + "\"", "true");
  auto o = options(c);
  auto r = builder::build(o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is_not_found());
  EXPECT_THAT(r.status().message(), HasSubstr("quorate image import"));
  EXPECT_FALSE(std::filesystem::exists(o.output));
}

TEST_F(BuilderImageBuild, NoSandboxWithABuilderImageIsAUsageError) {
  ASSERT_TRUE(store().import_layout(scratch_ / "busybox").ok());
  auto c = commit("image = \"example.org/busybox@" + digest_ + "\"", "true");
  auto o = options(c);
  o.sandbox = builder::Sandbox::kNone;
  auto r = builder::build(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUsage);
  EXPECT_THAT(r.status().message(), HasSubstr("--no-sandbox"));
}

TEST_F(BuilderImageBuild, TamperedStoreBlobFailsBeforeAnyStep) {
  auto s = store();
  ASSERT_TRUE(s.import_layout(scratch_ / "busybox").ok());
  auto v = s.verify(digest_);
  ASSERT_TRUE(v.ok());
  std::filesystem::permissions(v->layers[0].blob, std::filesystem::perms(0644));
  { std::ofstream(v->layers[0].blob, std::ios::app) << "x"; }
  auto c = commit("image = \"example.org/busybox@" + digest_ + "\"", "echo ran > /out/ran");
  auto o = options(c);
  auto r = builder::build(o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is_bad_input());
  EXPECT_THAT(r.status().message(), HasSubstr(v->layers[0].blob.string()));
  EXPECT_FALSE(std::filesystem::exists(o.output));
}

// Issue 13 acceptance: two builds at once on one node with a cold cache both succeed and unpack once. The
// test holds the tree's lock until both builds have started verifying the image, so both reach the unpack
// while it is taken; each runs under script(1), as progress ("unpacking image …") is shown on a terminal only.
TEST_F(BuilderImageBuild, TwoColdBuildsAtOnceUnpackOnce) {
  ASSERT_TRUE(store().import_layout(scratch_ / "busybox").ok());
  auto c = commit("image = \"example.org/busybox@" + digest_ + "\"", "ls /bin > $OUT/bin");
  int lock =
      ::open((scratch_ / "store/rootfs" / (digest_hex(digest_) + ".lock")).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(lock, 0);
  ASSERT_EQ(::flock(lock, LOCK_EX), 0);
  std::vector<quorate::testing::CommandResult> results(2);
  std::vector<std::thread> builds;
  for (int i = 0; i < 2; ++i) {
    auto build = quorate::testing::sh(quorate::testing::quorate_bin()) + " build --repo " +
                 quorate::testing::sh(repo_.string()) + " --commit " + c + " -o " +
                 quorate::testing::sh((scratch_ / ("out-" + std::to_string(i))).string()) + " --image-store " +
                 quorate::testing::sh((scratch_ / "store").string()) + " --work-dir " +
                 quorate::testing::sh((scratch_ / ("w-" + std::to_string(i))).string());
    auto log = scratch_ / ("log-" + std::to_string(i));
    builds.emplace_back([&results, i, build, log] {
      results[i] = quorate::testing::run("timeout 120 script -qefc " + quorate::testing::sh(build) + " " +
                                         quorate::testing::sh(log.string()) + " < /dev/null > /dev/null");
    });
  }
  auto started = [&](int i) {
    return slurp(scratch_ / ("log-" + std::to_string(i))).find("verifying builder image") != std::string::npos;
  };
  for (int waited = 0; waited < 600 && !(started(0) && started(1)); ++waited) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(started(0) && started(1)) << "the builds did not reach the builder image within 60 s";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // verifying busybox's layer takes milliseconds
  ::close(lock);
  for (auto& t : builds) t.join();
  std::string both;
  std::vector<std::string> images;
  for (int i = 0; i < 2; ++i) {
    auto log = slurp(scratch_ / ("log-" + std::to_string(i)));
    EXPECT_EQ(results[i].exit_code, 0) << results[i].out << log;
    auto at = log.find("image   sha256:");
    ASSERT_NE(at, std::string::npos) << log;
    images.push_back(log.substr(at, log.find_first_of("\r\n", at) - at));
    both += log;
  }
  EXPECT_EQ(images[0], images[1]);
  size_t unpacks = 0;
  for (size_t at = both.find("unpacking image sha256:"); at != std::string::npos;
       at = both.find("unpacking image sha256:", at + 1)) {
    ++unpacks;
  }
  EXPECT_EQ(unpacks, 1u) << both;
  for (const auto& name : quorate::testing::names_in(scratch_ / "store/rootfs")) {
    EXPECT_EQ(name.rfind(".tmp-", 0), std::string::npos) << "left behind: " << name;
  }
}

// A file the build's last layer holds under out/ (what the run step wrote to $OUT), or "" when it holds none.
std::string step_output(const builder::BuildResult& r, const std::string& name) {
  auto layer = r.output / "blobs/sha256" / digest_hex(r.layers.back().digest);
  return quorate::testing::run("(tar -xzOf " + quorate::testing::sh(layer.string()) + " out/" + name + " 2>/dev/null)")
      .out;
}

// A run step's environment: the image's Env under the recipe's, PATH from the image unless the recipe sets
// it, then the fixed variables over both.
TEST_F(BuilderImageBuild, RunStepsGetTheImagesEnvUnderTheRecipes) {
  auto digest = quorate::testing::make_sibling_image(scratch_ / "busybox", scratch_ / "env-image",
                                                     {"PATH=/bin:/image/bin", "FOO=image", "BAR=image", "HOME=/image"});
  ASSERT_TRUE(store().import_layout(scratch_ / "env-image").ok());
  const std::string image = "image = \"example.org/busybox@" + digest + "\"\n";
  const std::string echo = "echo PATH=$PATH FOO=$FOO BAR=$BAR TZ=$TZ HOME=$HOME OUT=$OUT > $OUT/env";
  auto r = builder::build(options(commit(image + "env = { FOO = \"recipe\", TZ = \"Mars\" }", echo)));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(step_output(*r, "env"), "PATH=/bin:/image/bin FOO=recipe BAR=image TZ=UTC HOME=/tmp OUT=/out\n");
  auto with_path = builder::build(options(commit(image + "path = \"/bin:/recipe/bin\"", echo)));
  ASSERT_TRUE(with_path.ok()) << with_path.status().to_string();
  EXPECT_EQ(step_output(*with_path, "env"), "PATH=/bin:/recipe/bin FOO=image BAR=image TZ=UTC HOME=/tmp OUT=/out\n");
}

// The image is the steps' read-only root: neither / nor its directories take a write.
TEST_F(BuilderImageBuild, TheImageIsAReadOnlyRoot) {
  ASSERT_TRUE(store().import_layout(scratch_ / "busybox").ok());
  auto r =
      builder::build(options(commit("image = \"example.org/busybox@" + digest_ + "\"",
                                    "mkdir /probe && echo yes > $OUT/root-writable; "
                                    "echo x > /bin/probe && echo yes > $OUT/bin-writable; echo done > $OUT/done")));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(step_output(*r, "done"), "done\n");
  EXPECT_EQ(step_output(*r, "root-writable"), "");
  EXPECT_EQ(step_output(*r, "bin-writable"), "");
  EXPECT_FALSE(std::filesystem::exists(scratch_ / "store/rootfs" / digest_hex(digest_) / "bin/probe"));
}

// [build].tools are read by running them in the image: busybox's head refuses --version (recorded as ""),
// where the host's head would say "head (GNU coreutils) …"; the host's gcc is not seen either.
TEST_F(BuilderImageBuild, ToolsAreReadInsideTheImage) {
  auto host_head = quorate::testing::run("head --version");
  if (host_head.exit_code != 0 || host_head.out.empty()) GTEST_SKIP() << "the host's head has no --version";
  ASSERT_TRUE(store().import_layout(scratch_ / "busybox").ok());
  auto r = builder::build(
      options(commit("image = \"example.org/busybox@" + digest_ + "\"\ntools = [\"head\", \"gcc\"]", "true")));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->tools.size(), 2u);
  EXPECT_EQ(r->tools.at("head"), "") << "read on the host";
  EXPECT_EQ(r->tools.at("gcc"), "") << "read on the host";
}

// A crash mid-unpack leaves nothing trusted: what a killed unpack left (its `.tmp-<hex>-*` directory, half a
// tree, and the tree's lock file) is not used by the next build, which unpacks afresh and removes it.
TEST_F(BuilderImageBuild, AHalfFinishedUnpackIsNotUsedAndIsRemoved) {
  ASSERT_TRUE(store().import_layout(scratch_ / "busybox").ok());
  auto rootfs = scratch_ / "store/rootfs";
  auto left = rootfs / (".tmp-" + digest_hex(digest_) + "-Xk3pQz");
  std::filesystem::create_directories(left / "bin");
  quorate::testing::spit(left / "bin/busybox", "half a binary");
  quorate::testing::spit(left / "planted", "from the crashed unpack");
  quorate::testing::spit(rootfs / (digest_hex(digest_) + ".lock"), "");
  auto c = commit("image = \"example.org/busybox@" + digest_ + "\"", "test ! -e /planted && ls /bin > $OUT/bin");
  auto r = cli_build(c, "cli-out");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_FALSE(std::filesystem::exists(left)) << "the leftover stays";
  EXPECT_EQ(quorate::testing::names_in(rootfs),
            (std::set<std::string>{digest_hex(digest_), digest_hex(digest_) + ".lock"}));
  EXPECT_FALSE(std::filesystem::exists(rootfs / digest_hex(digest_) / "planted"));
  EXPECT_EQ(std::filesystem::file_size(rootfs / digest_hex(digest_) / "bin/busybox"),
            std::filesystem::file_size("/bin/busybox"));
}

// Issue 13 acceptance, through the CLI: a tampered store blob, an unpinned reference, a missing image and
// --no-sandbox with an image each exit 2 with a message naming the cause, and leave no output.
TEST_F(BuilderImageBuild, CliRefusesATagOnlyReference) {
  auto c = commit("image = \"example.org/busybox:latest\"", "echo ran > $OUT/ran");
  auto r = cli_build(c, "cli-out");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("'build.image' must pin the builder image by digest"));
  EXPECT_FALSE(std::filesystem::exists(scratch_ / "cli-out"));
}

TEST_F(BuilderImageBuild, CliRefusesAMissingImageSayingHowToGetIt) {
  auto c = commit("image = \"example.org/busybox@" + digest_ + "\"", "echo ran > $OUT/ran");
  auto r = cli_build(c, "cli-out");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("is not in the image store"));
  EXPECT_THAT(r.out, HasSubstr("`quorate image pull NAME@" + digest_));
  EXPECT_THAT(r.out, HasSubstr("`quorate image import "));
  EXPECT_FALSE(std::filesystem::exists(scratch_ / "cli-out"));
}

TEST_F(BuilderImageBuild, CliRefusesNoSandboxWithABuilderImage) {
  ASSERT_TRUE(store().import_layout(scratch_ / "busybox").ok());
  auto c = commit("image = \"example.org/busybox@" + digest_ + "\"", "echo ran > $OUT/ran");
  auto r = cli_build(c, "cli-out", "--no-sandbox");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("--no-sandbox cannot run a recipe with a builder image"));
  EXPECT_FALSE(std::filesystem::exists(scratch_ / "cli-out"));
}

// The manifest, the config and the layer each: a byte added (a newline keeps the JSON ones parseable, so the
// hash, not the parser, must catch it) is named with its blob path.
TEST_F(BuilderImageBuild, CliRefusesATamperedBlobNamingIt) {
  auto c = commit("image = \"example.org/busybox@" + digest_ + "\"", "echo ran > $OUT/ran");
  for (const char* which : {"manifest", "config", "layer"}) {
    SCOPED_TRACE(which);
    std::filesystem::remove_all(scratch_ / "store");
    auto s = store();
    ASSERT_TRUE(s.import_layout(scratch_ / "busybox").ok());
    auto v = s.verify(digest_);
    ASSERT_TRUE(v.ok()) << v.status().to_string();
    auto manifest = nlohmann::json::parse(slurp(scratch_ / "store/blobs/sha256" / digest_hex(digest_)));
    std::string blob_digest = std::string(which) == "manifest" ? digest_
                              : std::string(which) == "config" ? manifest["config"]["digest"].get<std::string>()
                                                               : manifest["layers"][0]["digest"].get<std::string>();
    auto blob = scratch_ / "store/blobs/sha256" / digest_hex(blob_digest);
    std::filesystem::permissions(blob, std::filesystem::perms(0644));
    { std::ofstream(blob, std::ios::app) << (std::string(which) == "layer" ? "x" : "\n"); }
    auto r = cli_build(c, "cli-out");
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_THAT(r.out, HasSubstr(blob.string()));
    EXPECT_THAT(r.out, HasSubstr("not the pinned " + blob_digest));
    EXPECT_FALSE(std::filesystem::exists(scratch_ / "cli-out"));
  }
}

}  // namespace
}  // namespace quorate::imagestore

namespace quorate::imagestore {
namespace {

// Sets the modification time of `p` to `seconds_ago` before the file system's present (a file made now).
void is_age(const std::filesystem::path& p, int64_t seconds_ago) {
  struct stat now {};
  std::ofstream(p.parent_path() / ".now") << "";
  ASSERT_EQ(::stat((p.parent_path() / ".now").c_str(), &now), 0);
  std::filesystem::remove(p.parent_path() / ".now");
  struct timespec times[2] = {{now.st_mtim.tv_sec - seconds_ago, 0}, {now.st_mtim.tv_sec - seconds_ago, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
}

// What a crashed import or pull left in tmp/ (nothing written for over an hour) is removed when the store is
// opened; a temporary still being written to (a recent file deep inside) and a recent one stay.
TEST(ImageStoreTemporaries, StaleOnesAreRemovedAtOpen) {
  ScratchDir dir;
  auto store_dir = dir / "store";
  ASSERT_TRUE(ImageStore::open(store_dir).ok());
  auto tmp = store_dir / "tmp";
  std::filesystem::create_directories(tmp / "crashed.abc" / "layout");
  std::ofstream(tmp / "crashed.abc" / "layout" / "blob") << "x";
  is_age(tmp / "crashed.abc" / "layout" / "blob", 7200);
  is_age(tmp / "crashed.abc" / "layout", 7200);
  is_age(tmp / "crashed.abc", 7200);
  std::ofstream(tmp / "crashed-file") << "x";
  is_age(tmp / "crashed-file", 3700);
  std::filesystem::create_directories(tmp / "live.abc" / "layout");
  std::ofstream(tmp / "live.abc" / "layout" / "blob") << "x";  // written just now
  is_age(tmp / "live.abc", 7200);
  std::filesystem::create_directories(tmp / "recent.abc");
  is_age(tmp / "recent.abc", 1800);

  ASSERT_TRUE(ImageStore::open(store_dir).ok());
  EXPECT_FALSE(std::filesystem::exists(tmp / "crashed.abc"));
  EXPECT_FALSE(std::filesystem::exists(tmp / "crashed-file"));
  EXPECT_TRUE(std::filesystem::exists(tmp / "live.abc" / "layout" / "blob"));
  EXPECT_TRUE(std::filesystem::exists(tmp / "recent.abc"));
  size_t left = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(tmp)) ++left;
  EXPECT_EQ(left, 2u);  // the probe is gone too
}

}  // namespace
}  // namespace quorate::imagestore
