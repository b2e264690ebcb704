// `quorate normalize` as a process: images from docker-archives and OCI layouts accepted by skopeo and umoci,
// digests stable under noise and idempotent, bad input refused with exit 2 and nothing at the target.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <regex>

#include "tests/support/test_util.h"

namespace quorate {
namespace {
namespace fs = std::filesystem;
using quorate::testing::quorate_bin;
using quorate::testing::run;
using quorate::testing::ScratchDir;
using quorate::testing::sh;

constexpr char kEpoch[] = "1500000000";

class NormalizeCliTest : public ::testing::Test {
 protected:
  // A docker-archive from tests/cli/make_image.py with `args`.
  fs::path image(const std::string& args = "") {
    fs::path out = dir_ / ("image" + std::to_string(n_++) + ".tar");
    auto r = run("python3 " + sh((quorate::testing::source_dir() / "tests/cli/make_image.py").string()) + " " +
                 sh(out.string()) + " " + args);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return out;
  }
  quorate::testing::CommandResult normalize(const fs::path& in, const fs::path& out, const std::string& extra = "") {
    return run(sh(quorate_bin()) + " normalize --source-date-epoch " + kEpoch + " " + sh(in.string()) + " -o " +
               sh(out.string()) + " " + extra);
  }
  // The manifest digest printed by a successful normalize.
  std::string digest_of(const fs::path& in, const fs::path& out) {
    auto r = normalize(in, out);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    std::smatch m;
    std::regex re("manifest digest: (sha256:[0-9a-f]{64})");
    return std::regex_search(r.out, m, re) ? m[1].str() : "none: " + r.out;
  }
  fs::path out(const std::string& name) { return dir_ / name; }

  ScratchDir dir_;
  int n_ = 0;
};

TEST_F(NormalizeCliTest, DockerArchiveBecomesLayoutThatSkopeoAndUmociAccept) {
  auto result = normalize(image(), out("oci"));
  ASSERT_EQ(result.exit_code, 0) << result.out;
  EXPECT_NE(result.out.find("ref name:        v1"), std::string::npos) << result.out;
  auto inspect = run("skopeo inspect oci:" + sh(out("oci").string()));
  ASSERT_EQ(inspect.exit_code, 0) << inspect.out;
  EXPECT_NE(inspect.out.find("\"Architecture\": \"amd64\""), std::string::npos) << inspect.out;
  std::string rootless = ::geteuid() == 0 ? "" : " --rootless";
  auto unpack =
      run("umoci unpack" + rootless + " --image " + sh(out("oci").string() + ":v1") + " " + sh(out("bundle").string()));
  ASSERT_EQ(unpack.exit_code, 0) << unpack.out;
  EXPECT_EQ(quorate::testing::slurp(out("bundle") / "rootfs/srv/index.html"), "<h1>hi</h1>\n");
  EXPECT_TRUE(fs::exists(out("bundle") / "rootfs/usr/bin/hello"));
  EXPECT_FALSE(fs::exists(out("bundle") / "rootfs/etc/hello.conf"));  // the second layer's whiteout applied
}

TEST_F(NormalizeCliTest, NoiseDoesNotChangeTheManifestDigest) {
  std::string a = digest_of(image(), out("a"));
  std::string b = digest_of(image("--layout blobs --reverse --mtime 1700000000 --host-noise"), out("b"));
  EXPECT_EQ(a, b);
}

TEST_F(NormalizeCliTest, GoldenManifestDigest) {
  // A change of canonical bytes (layer, config or manifest rules) must bump the canonical-form version. The
  // layers are gzip-compressed: a zlib that deflates differently changes this digest too (not the diff_ids).
  EXPECT_EQ(digest_of(image(), out("oci")), "sha256:62621ad386248abac1d67faad62b64e5e0dc494fbea6dc27acc41796af178ad1");
}

TEST_F(NormalizeCliTest, CanonicalOutputIsAFixedPoint) {
  std::string first = digest_of(image("--host-noise"), out("once"));
  EXPECT_EQ(digest_of(out("once"), out("twice")), first);  // an OCI layout directory as input
  ASSERT_EQ(run("tar -C " + sh(out("once").string()) + " -cf " + sh(out("once.tar").string()) + " .").exit_code, 0);
  EXPECT_EQ(digest_of(out("once.tar"), out("thrice")), first);  // an OCI layout packed as a tar
  auto copy = run("skopeo copy oci:" + sh(out("once").string() + ":v1") +
                  " docker-archive:" + sh(out("skopeo.tar").string() + ":example/hello:v1"));
  ASSERT_EQ(copy.exit_code, 0) << copy.out;
  EXPECT_EQ(digest_of(out("skopeo.tar"), out("fourth")), first);  // skopeo's docker-archive
}

TEST_F(NormalizeCliTest, JsonSummaryNamesFormDigestsAndRepairs) {
  auto r = normalize(image("--host-noise"), out("oci"), "--json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["canonical_form"], 1);
  EXPECT_EQ(j["kind"], "image");
  EXPECT_EQ(j["input"]["format"], "docker-archive");
  EXPECT_EQ(j["diff_ids"].size(), 2u);
  EXPECT_GT(j["entries"].get<int>(), 0);
  EXPECT_GT(j["repairs"]["times_clamped"].get<int>(), 0);
  EXPECT_GT(j["repairs"]["owners_reset"].get<int>(), 0);  // GNU tar recorded the builder's user name
}

TEST_F(NormalizeCliTest, LayerInLayerOut) {
  fs::path root = out("root");
  fs::create_directories(root / "a/b");
  quorate::testing::spit(root / "a/b/c.txt", "content\n");
  ASSERT_EQ(run("tar -C " + sh(root.string()) + " -czf " + sh(out("layer.tgz").string()) + " a").exit_code, 0);
  auto r = normalize(out("layer.tgz"), out("layer.tar"), "--compression none");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("digest:  sha256:"), std::string::npos);
  EXPECT_NE(r.out.find("diff_id: sha256:"), std::string::npos);
  auto list = run("tar -tvf " + sh(out("layer.tar").string()));
  EXPECT_NE(list.out.find("0/0"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("a/b/c.txt"), std::string::npos) << list.out;
}

TEST_F(NormalizeCliTest, BadInputExitsTwoAndWritesNothing) {
  const char* damages[] = {"corrupt-layer", "missing-layer", "hostile-path",
                           "absolute-path", "broken-json",   "bad-config-digest"};
  for (const char* d : damages) {
    fs::path target = out(std::string("out-") + d);
    auto r = normalize(image(std::string("--damage ") + d), target);
    EXPECT_EQ(r.exit_code, 2) << d << ": " << r.out;
    EXPECT_FALSE(fs::exists(target)) << d;
    EXPECT_NE(r.out.find("quorate: bad input"), std::string::npos) << d << ": " << r.out;
  }
  EXPECT_FALSE(fs::exists(dir_.path().parent_path() / "escaped"));
  EXPECT_FALSE(fs::exists("/tmp/quorate-escaped"));
}

TEST_F(NormalizeCliTest, HostileLayerExitsTwoAndWritesNothing) {
  for (const char* name : {"../evil", "/abs/evil"}) {
    auto made = run("python3 -c " +
                    sh(std::string("import io,tarfile,sys; t=tarfile.open(sys.argv[1],'w'); i=tarfile.TarInfo('") +
                       name + "'); i.size=1; t.addfile(i, io.BytesIO(b'x')); t.close()") +
                    " " + sh(out("evil.tar").string()));
    ASSERT_EQ(made.exit_code, 0) << made.out;
    auto r = normalize(out("evil.tar"), out("evil.out"));
    EXPECT_EQ(r.exit_code, 2) << name << ": " << r.out;
    EXPECT_FALSE(fs::exists(out("evil.out"))) << name;
  }
}

// The verdict line names the member it refuses; the member's name is the archive's, so it is masked there: a
// name holding ESC cannot clear the reader's screen, nor a newline in it start a verdict line of its own.
// libarchive's "all" filters decode lrzip, lzop, grzip and lz4 by starting the program of that name found on
// PATH (with the input on its stdin): a layer chose which program quorate ran. A layer from outside is read
// in gzip, zstd, xz, bzip2 or no compression only, by libarchive's own decoders.
TEST_F(NormalizeCliTest, ALayerCompressedForAnExternalProgramRunsNoProgram) {
  const fs::path bin = dir_ / "bin";
  fs::create_directories(bin);
  for (const char* program : {"lrzip", "lzop", "grzip", "lz4"}) {
    quorate::testing::spit(bin / program, "#!/bin/sh\necho \"$0 $*\" >> " + sh((dir_ / "ran").string()) + "\ncat\n");
    fs::permissions(bin / program, fs::perms::owner_all);
  }
  const std::vector<std::pair<std::string, std::string>> magics = {
      {"lrzip", std::string("LRZI\x00\x06", 6)},
      {"lzop", std::string("\x89LZO\x00\r\n\x1a\n", 9)},
      {"grzip", std::string("GRZipII\x00\x02\x04:)", 12)},
      {"lz4", std::string("\x04\x22\x4d\x18\x64\x40\xa7", 7)}};
  for (const auto& [name, magic] : magics) {
    const fs::path layer = dir_ / ("layer." + name);
    quorate::testing::spit(layer, magic + std::string(512, 'x'));
    auto r = run("env PATH=" + sh(bin.string() + ":/usr/bin:/bin") + " " + sh(quorate_bin()) +
                 " normalize --source-date-epoch " + kEpoch + " " + sh(layer.string()) + " -o " +
                 sh(out(name + ".out").string()));
    EXPECT_EQ(r.exit_code, 2) << name << ": " << r.out;
    EXPECT_FALSE(fs::exists(out(name + ".out"))) << name;
  }
  EXPECT_FALSE(fs::exists(dir_ / "ran")) << "programs started on the layers: " << quorate::testing::slurp(dir_ / "ran");
}

TEST_F(NormalizeCliTest, AHostileMemberNameIsMaskedInTheVerdictLine) {
  const std::string name = "../\x1b[2Jevil\nquorate: ok";
  auto made = run("python3 -c " +
                  sh("import io,tarfile,sys; t=tarfile.open(sys.argv[1],'w',format=tarfile.PAX_FORMAT); "
                     "i=tarfile.TarInfo(sys.argv[2]); i.size=1; t.addfile(i, io.BytesIO(b'x')); t.close()") +
                  " " + sh(out("evil.tar").string()) + " " + sh(name));
  ASSERT_EQ(made.exit_code, 0) << made.out;
  auto r = normalize(out("evil.tar"), out("evil.out"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << r.out;
  // A line break in the name stays one (the build log's tail needs them), and what follows is indented: no line
  // of the message passes for a verdict of its own.
  EXPECT_NE(r.out.find("\"../?[2Jevil\n  quorate: ok\""), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\nquorate: ok"), std::string::npos) << r.out;
}

TEST_F(NormalizeCliTest, TamperedOciBlobIsRefusedNamingIt) {
  ASSERT_EQ(normalize(image(), out("oci")).exit_code, 0);
  // Flip the content of the largest blob (a layer) while keeping its name.
  fs::path victim;
  for (const auto& e : fs::directory_iterator(out("oci") / "blobs/sha256")) {
    if (victim.empty() || fs::file_size(e.path()) > fs::file_size(victim)) victim = e.path();
  }
  std::string bytes = quorate::testing::slurp(victim);
  bytes[bytes.size() / 2] ^= 1;
  quorate::testing::spit(victim, bytes);
  auto r = normalize(out("oci"), out("again"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find(victim.filename().string()), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(out("again")));
}

TEST_F(NormalizeCliTest, BadOptionsAreUsageErrors) {
  EXPECT_EQ(normalize(image(), out("x"), "--mtime sometimes").exit_code, 2);
  EXPECT_EQ(normalize(image(), out("x"), "--compression lz4").exit_code, 2);
  EXPECT_FALSE(fs::exists(out("x")));
}

}  // namespace
}  // namespace quorate
