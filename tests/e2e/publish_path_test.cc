// Issue 18: the attested image survives the ways teams publish it. An image built and attested by two nodes is
// pushed to a loopback Debian docker-registry through each publish path (skopeo from the layout, the
// oci-archive and the docker-archive; skopeo converting to Docker media types; podman load + push where
// podman is installed), and `quorate verify --image docker://HOST/REPO@sha256:…` is asked about every copy:
// under match = "content" every honest re-encoding is accepted, under match = "image" only the byte-identical
// one is (with a hint), and a copy whose layer was changed is refused whatever its manifest claims. Pulling it
// back with `quorate image pull` shows progress on a terminal only.
//
// Where these tests skip (GTEST_SKIP, with the reason in the test's output; docs/policy.md says the same):
// every test here, without /usr/bin/docker-registry or /usr/bin/skopeo (scripts/bootstrap.sh installs both).
// PodmanLoadAndPush also skips without /usr/bin/podman; where `podman load` fails, as rootless podman does
// without subordinate ids for the user (/etc/subuid, /etc/subgid, newuidmap) or where user namespaces are not
// allowed (an unprivileged container); and where `podman push` to the loopback registry fails. It uses its own
// --root and the vfs storage driver, so it needs neither overlayfs, fuse-overlayfs nor a running container.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/socket.h>

#include <nlohmann/json.hpp>

#include "builder/git_repo.h"
#include "e2e/process.h"
#include "quorate/core/sha256.h"

namespace quorate::e2e {
namespace {

using quorate::testing::quorate_bin;
using quorate::testing::ScratchDir;
using quorate::testing::sh;
using quorate::testing::slurp;
using quorate::testing::spit;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

using quorate::testing::port_answers;

quorate::testing::CommandResult shell(const std::string& command) { return quorate::testing::run(command); }

class PublishPath : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists("/usr/bin/docker-registry") || !fs::exists("/usr/bin/skopeo")) {
      GTEST_SKIP() << "docker-registry or skopeo not installed (scripts/bootstrap.sh)";
    }
    commit_ = builder::testing::make_repo(builder::testing::example_dir("static-site"), dir_ / "site");
    // One build, written three ways: the OCI layout, an oci-archive, a docker-archive.
    const std::vector<std::pair<std::string, std::string>> outputs = {
        {"oci", "layout"}, {"oci-archive", "image-oci.tar"}, {"docker-archive", "image-docker.tar"}};
    for (const auto& [format, out] : outputs) {
      auto r = shell(quorate_bin() + " build -q --repo " + sh((dir_ / "site").string()) + " --commit " + commit_ +
                     " --format " + format + " -o " + sh((dir_ / out).string()) + " --work-dir " +
                     sh((dir_ / "work").string()) + " --result-out " + sh((dir_ / "result.json").string()));
      ASSERT_EQ(r.exit_code, 0) << r.out;
    }
    auto result = nlohmann::json::parse(slurp(dir_ / "result.json"));
    manifest_ = result["image"]["manifest_digest"];
    config_ = result["image"]["config_digest"];
    // Two nodes attest the result.
    std::string nodes;
    for (const std::string id : {"node-a", "node-b"}) {
      auto key = dir_ / "keys" / (id + ".key.pem");
      ASSERT_EQ(shell(quorate_bin() + " key generate --out " + sh(key.string())).exit_code, 0);
      auto a = shell(quorate_bin() + " attest --key " + sh(key.string()) + " " + sh((dir_ / "result.json").string()) +
                     " -o " + sh((dir_ / (id + ".att.json")).string()));
      ASSERT_EQ(a.exit_code, 0) << a.out;
      nodes += "\n[[nodes]]\nid = \"" + id + "\"\npublic_key = \"keys/" + id + ".key.pem.pub.pem\"\n";
    }
    spit(dir_ / "content.toml", "threshold = 2\nmatch = \"content\"\n" + nodes);
    spit(dir_ / "image.toml", "threshold = 2\nmatch = \"image\"\n" + nodes);
    // The registry, on loopback, killed by PID when the test ends.
    port_ = free_port();
    spit(dir_ / "registry.yml", "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: " +
                                    (dir_ / "registry").string() +
                                    "\nhttp:\n  addr: 127.0.0.1:" + std::to_string(port_) + "\n");
    registry_.emplace(std::vector<std::string>{"/usr/bin/docker-registry", "serve", (dir_ / "registry.yml").string()},
                      dir_ / "registry.out", dir_ / "registry.err");
    ASSERT_TRUE(wait_until([&] { return port_answers(port_); }, std::chrono::seconds(30))) << registry_->err();
  }

  std::string repo(const std::string& name) { return "127.0.0.1:" + std::to_string(port_) + "/" + name; }

  // The digest of the manifest the registry serves for TAG.
  std::string pushed_digest(const std::string& name, const std::string& tag) {
    auto r = shell("timeout 120 skopeo inspect --raw --tls-verify=false docker://" + repo(name) + ":" + tag +
                   " 2>/dev/null");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return sha256_digest(r.out);
  }

  quorate::testing::CommandResult verify(const std::string& policy, const std::string& ref) {
    return shell("cd " + sh(dir_.path().string()) + " && timeout 300 " + quorate_bin() + " verify --policy " + policy +
                 " --image " + sh(ref) + " --insecure-registry node-a.att.json node-b.att.json");
  }

  ScratchDir dir_;
  std::string commit_, manifest_, config_;
  int port_ = 0;
  std::optional<Process> registry_;
};

TEST_F(PublishPath, EveryHonestReencodingIsAcceptedByContent) {
  struct Path {
    std::string what, command;
    bool same_digest;
  };
  std::vector<Path> paths = {
      {"skopeo copy from the OCI layout",
       "skopeo copy --quiet --dest-tls-verify=false oci:" + sh((dir_ / "layout").string() + ":latest") + " docker://" +
           repo("x") + ":layout",
       true},
      {"skopeo copy from the oci-archive",
       "skopeo copy --quiet --dest-tls-verify=false oci-archive:" + sh((dir_ / "image-oci.tar").string()) +
           " docker://" + repo("x") + ":ociarchive",
       true},
      {"skopeo copy from the docker-archive",
       "skopeo copy --quiet --dest-tls-verify=false docker-archive:" + sh((dir_ / "image-docker.tar").string()) +
           " docker://" + repo("x") + ":dockerarchive",
       false},
      {"skopeo copy --format v2s2 from the layout",
       "skopeo copy --quiet --format v2s2 --dest-tls-verify=false oci:" + sh((dir_ / "layout").string() + ":latest") +
           " docker://" + repo("x") + ":v2s2",
       false},
  };
  for (const auto& p : paths) {
    SCOPED_TRACE(p.what);
    auto pushed = shell("timeout 300 " + p.command);
    ASSERT_EQ(pushed.exit_code, 0) << pushed.out;
    std::string tag = p.command.substr(p.command.rfind(':') + 1);
    std::string digest = pushed_digest("x", tag);
    EXPECT_EQ(digest == manifest_, p.same_digest) << digest;
    std::string ref = "docker://" + repo("x") + "@" + digest;
    auto by_content = verify("content.toml", ref);
    EXPECT_EQ(by_content.exit_code, 0) << by_content.out;
    EXPECT_THAT(by_content.out, HasSubstr("content " + config_));
    auto by_image = verify("image.toml", ref);
    if (p.same_digest) {
      EXPECT_EQ(by_image.exit_code, 0) << by_image.out;
    } else {
      EXPECT_EQ(by_image.exit_code, 1) << by_image.out;
      EXPECT_THAT(by_image.out, HasSubstr("needs match = \"content\""));
    }
  }
  // A tag alone names no fixed image.
  auto tag_only = verify("content.toml", "docker://" + repo("x") + ":layout");
  EXPECT_EQ(tag_only.exit_code, 2) << tag_only.out;
  EXPECT_THAT(tag_only.out, HasSubstr("pinned by digest"));
  // The archives themselves can be asked about too.
  auto archive = verify("content.toml", "docker-archive:" + (dir_ / "image-docker.tar").string());
  EXPECT_EQ(archive.exit_code, 0) << archive.out;
}

// podman load of the oci-archive, then podman push --format oci (the manifest re-serialized). Runs where podman
// is installed and can load images (it needs no running container for this).
TEST_F(PublishPath, PodmanLoadAndPush) {
  if (!fs::exists("/usr/bin/podman")) GTEST_SKIP() << "podman not installed";
  std::string root = "--root " + sh((dir_ / "podman-root").string()) + " --runroot " +
                     sh((dir_ / "podman-run").string()) + " --storage-driver vfs";
  auto loaded = shell("timeout 300 podman " + root + " load -i " + sh((dir_ / "image-oci.tar").string()));
  if (loaded.exit_code != 0) GTEST_SKIP() << "podman cannot load images here: " << loaded.out;
  // The archive names the image by its full reference (not localhost/latest:latest).
  EXPECT_THAT(loaded.out, HasSubstr("example.org/quorate/static-site:latest"));
  auto pushed = shell("timeout 300 podman " + root +
                      " push --format oci --tls-verify=false example.org/quorate/static-site:latest docker://" +
                      repo("x") + ":podman");
  if (pushed.exit_code != 0) GTEST_SKIP() << "podman cannot push here: " << pushed.out;
  std::string digest = pushed_digest("x", "podman");
  std::string ref = "docker://" + repo("x") + "@" + digest;
  auto by_content = verify("content.toml", ref);
  EXPECT_EQ(by_content.exit_code, 0) << by_content.out;
  // podman re-serializes the manifest: not the attested bytes, so match = "image" refuses it, with the hint.
  EXPECT_NE(digest, manifest_);
  auto by_image = verify("image.toml", ref);
  EXPECT_EQ(by_image.exit_code, 1) << by_image.out;
  EXPECT_THAT(by_image.out, HasSubstr("needs match = \"content\""));
}

// `quorate image pull` from the registry says what it is doing (skopeo's copy, then the check of every blob) on
// a terminal, and nothing in a pipe or with -q. The terminal is script(1)'s.
TEST_F(PublishPath, ImagePullShowsProgressOnATerminalOnly) {
  auto pushed = shell("timeout 300 skopeo copy --quiet --dest-tls-verify=false oci:" +
                      sh((dir_ / "layout").string() + ":latest") + " docker://" + repo("x") + ":pull");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.out;
  auto pull = [&](const std::string& flags, const std::string& store) {
    return quorate_bin() + " image pull --insecure-registry " + flags + " " + repo("x") + "@" + manifest_ +
           " --image-store " + sh((dir_ / store).string());
  };
  auto piped = shell(pull("", "piped"));
  ASSERT_EQ(piped.exit_code, 0) << piped.out;
  EXPECT_THAT(piped.out, HasSubstr(manifest_));
  EXPECT_THAT(piped.out, Not(HasSubstr("quorate image pull:")));
  if (shell("command -v script").exit_code != 0) GTEST_SKIP() << "script(1) (bsdutils) is not installed";
  auto on_terminal = [&](const std::string& command) {
    return shell("script -qec " + sh(command + " </dev/null") + " /dev/null");
  };
  auto tty = on_terminal(pull("", "tty"));
  ASSERT_EQ(tty.exit_code, 0) << tty.out;
  EXPECT_THAT(tty.out, HasSubstr("quorate image pull: copying " + repo("x") + "@" + manifest_ + " with skopeo"));
  EXPECT_THAT(tty.out, HasSubstr("quorate image pull: checking every blob"));
  auto quiet = on_terminal(pull("-q", "quiet"));
  ASSERT_EQ(quiet.exit_code, 0) << quiet.out;
  EXPECT_THAT(quiet.out, HasSubstr(manifest_));
  EXPECT_THAT(quiet.out, Not(HasSubstr("quorate image pull:")));
}

// A copy whose layer was changed: the manifest points at the attested config but at another layer blob. The
// registry stores it; the gate refuses it, because the layer does not decompress to the config's diff_id.
TEST_F(PublishPath, ChangedLayerIsRefused) {
  fs::path bad = dir_ / "tampered";
  fs::copy(dir_ / "layout", bad, fs::copy_options::recursive);
  auto index = nlohmann::json::parse(slurp(bad / "index.json"));
  auto manifest = nlohmann::json::parse(slurp(bad / "blobs/sha256" / digest_hex(manifest_)));
  // Another layer: a gzip of different bytes, in place of the last one.
  spit(dir_ / "evil.tar", "not the attested layer");
  ASSERT_EQ(
      shell("gzip -n -c " + sh((dir_ / "evil.tar").string()) + " > " + sh((dir_ / "evil.tar.gz").string())).exit_code,
      0);
  std::string evil = slurp(dir_ / "evil.tar.gz");
  std::string evil_digest = sha256_digest(evil);
  spit(bad / "blobs/sha256" / digest_hex(evil_digest), evil);
  auto& last = manifest["layers"][manifest["layers"].size() - 1];
  last["digest"] = evil_digest;
  last["size"] = evil.size();
  std::string manifest_bytes = manifest.dump();
  std::string bad_digest = sha256_digest(manifest_bytes);
  spit(bad / "blobs/sha256" / digest_hex(bad_digest), manifest_bytes);
  index["manifests"][0]["digest"] = bad_digest;
  index["manifests"][0]["size"] = manifest_bytes.size();
  spit(bad / "index.json", index.dump());
  auto pushed = shell("timeout 300 skopeo copy --quiet --dest-tls-verify=false oci:" + sh(bad.string() + ":latest") +
                      " docker://" + repo("x") + ":tampered");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.out;
  auto r = verify("content.toml", "docker://" + repo("x") + "@" + pushed_digest("x", "tampered"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("not the config's diff_id"));
}

}  // namespace
}  // namespace quorate::e2e
