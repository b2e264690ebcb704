// `quorate image pull` from a loopback registry (Debian's docker-registry, started here on 127.0.0.1 with a
// temporary config and storage, killed by PID): pinned pulls land byte for byte; a digest the registry does
// not have, or a pin the registry answers with another manifest, leaves nothing in the store.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <thread>

#include "e2e/process.h"
#include "imagestore/store_test_util.h"
#include "quorate/core/sha256.h"
#include "quorate/imagestore/image_store.h"
#include "quorate/imagestore/resolve.h"

namespace quorate::imagestore {
namespace {

using quorate::testing::names_in;
using quorate::testing::run;
using quorate::testing::ScratchDir;
using quorate::testing::sh;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

using quorate::testing::port_answers;

class Pull : public ::testing::Test {
 protected:
  void SetUp() override {
    digest_ = quorate::testing::make_busybox_image(scratch_ / "busybox");
    store_ = sh((scratch_ / "store").string());
  }
  // Starts the registry; false (and a skip) when docker-registry or skopeo is not installed.
  bool start_registry() {
    if (!fs::exists("/usr/bin/docker-registry") || !fs::exists("/usr/bin/skopeo")) return false;
    port_ = quorate::e2e::free_port();
    auto config = scratch_ / "registry.yml";
    quorate::testing::spit(config, "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: " +
                                       (scratch_ / "registry").string() +
                                       "\nhttp:\n  addr: 127.0.0.1:" + std::to_string(port_) + "\n");
    registry_.emplace(std::vector<std::string>{"/usr/bin/docker-registry", "serve", config.string()},
                      scratch_ / "registry.out", scratch_ / "registry.err");
    bool up = quorate::e2e::wait_until([&] { return port_answers(port_); }, std::chrono::seconds(30));
    EXPECT_TRUE(up) << "docker-registry did not listen: " << registry_->err();
    return up;
  }
  std::string repo(const std::string& name) { return "127.0.0.1:" + std::to_string(port_) + "/" + name; }
  // skopeo copy of an OCI layout (all of an index) into the registry, by tag.
  void push(const fs::path& layout, const std::string& tag, const std::string& dest) {
    auto r = run("timeout 120 skopeo copy --quiet --all --preserve-digests --dest-tls-verify=false oci:" +
                 sh(layout.string() + ":" + tag) + " docker://" + dest);
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  quorate::testing::CommandResult pull(const std::string& ref, const std::string& flags = "--insecure-registry") {
    return run("timeout 300 " + quorate::testing::quorate_bin() + " image pull " + sh(ref) + " " + flags +
               " --image-store " + store_);
  }
  // The lines of a stand-in skopeo that answer `skopeo inspect --raw` with the pinned manifest.
  std::string answers_inspect() {
    return "if [ \"$1\" = inspect ]; then cat " +
           sh((scratch_ / "busybox/blobs/sha256" / digest_hex(digest_)).string()) + "; exit 0; fi\n";
  }
  void expect_nothing_stored() {
    auto listed = run(quorate::testing::quorate_bin() + " image ls --image-store " + store_);
    EXPECT_EQ(listed.out, "");
    EXPECT_EQ(names_in(scratch_ / "store/blobs/sha256").size(), 0u);
    EXPECT_EQ(names_in(scratch_ / "store/tmp").size(), 0u);
  }
  ScratchDir scratch_;
  std::string digest_, store_;
  int port_ = 0;
  std::optional<quorate::e2e::Process> registry_;
};

TEST_F(Pull, ByDigestLandsByteForByte) {
  if (!start_registry()) GTEST_SKIP() << "docker-registry or skopeo not installed (scripts/bootstrap.sh)";
  push(scratch_ / "busybox", "busybox", repo("x") + ":v1");
  auto r = pull(repo("x") + ":v1@" + digest_);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr(digest_ + "  " + repo("x") + ":v1"));
  auto s = ImageStore::open(scratch_ / "store").value();
  auto v = s.verify(digest_);
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  auto layer = v->layers.at(0).blob;
  EXPECT_EQ(quorate::testing::slurp(layer),
            quorate::testing::slurp(scratch_ / "busybox/blobs/sha256" / layer.filename()));
  EXPECT_EQ(names_in(scratch_ / "store/tmp").size(), 0u);
}

TEST_F(Pull, ADockerSchema2ManifestKeepsTheRegistrysDigest) {
  if (!start_registry()) GTEST_SKIP() << "docker-registry or skopeo not installed (scripts/bootstrap.sh)";
  auto digest_file = scratch_ / "v2s2.digest";
  auto pushed = run("timeout 120 skopeo copy --quiet --format v2s2 --dest-tls-verify=false --digestfile " +
                    sh(digest_file.string()) + " oci:" + sh((scratch_ / "busybox").string() + ":busybox") +
                    " docker://" + repo("d") + ":v2s2");
  ASSERT_EQ(pushed.exit_code, 0) << pushed.out;
  std::string v2s2 = quorate::testing::slurp(digest_file);
  ASSERT_NE(v2s2, digest_);
  auto r = pull(repo("d") + "@" + v2s2);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto s = ImageStore::open(scratch_ / "store").value();
  auto listed = s.list();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].digest, v2s2);
  EXPECT_EQ((*listed)[0].media_type, "application/vnd.docker.distribution.manifest.v2+json");
  auto v = s.verify(v2s2);
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  auto root = s.rootfs(*v);
  ASSERT_TRUE(root.ok()) << root.status().to_string();
  EXPECT_TRUE(fs::is_regular_file(root->path() / "bin/busybox"));
}

TEST_F(Pull, WithoutTheInsecureFlagAPlainHttpRegistryIsRefused) {
  if (!start_registry()) GTEST_SKIP() << "docker-registry or skopeo not installed (scripts/bootstrap.sh)";
  push(scratch_ / "busybox", "busybox", repo("x") + ":v1");
  auto r = pull(repo("x") + "@" + digest_, "");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("skopeo exited with status"));
  expect_nothing_stored();
}

TEST_F(Pull, ADigestTheRegistryLacksStoresNothing) {
  if (!start_registry()) GTEST_SKIP() << "docker-registry or skopeo not installed (scripts/bootstrap.sh)";
  push(scratch_ / "busybox", "busybox", repo("x") + ":v1");
  std::string wrong = "sha256:" + std::string(64, 'b');
  auto r = pull(repo("x") + "@" + wrong);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("skopeo exited with status"));
  EXPECT_THAT(r.out, HasSubstr("manifest unknown")) << "skopeo's stderr is relayed";
  expect_nothing_stored();
}

// A pin of an index: the pull would copy one platform's manifest, whose digest is not the pin. It is refused
// before anything is copied, naming the manifests to pin instead.
TEST_F(Pull, APinnedIndexIsRefusedNamingItsManifests) {
  if (!start_registry()) GTEST_SKIP() << "docker-registry or skopeo not installed (scripts/bootstrap.sh)";
  auto layout = scratch_ / "multi";
  fs::copy(scratch_ / "busybox", layout, fs::copy_options::recursive);
  auto manifest = normalize::Descriptor{
      normalize::kMediaTypeManifest, digest_, fs::file_size(layout / "blobs/sha256" / digest_hex(digest_)), {}};
  nlohmann::json index = {
      {"schemaVersion", 2}, {"mediaType", normalize::kMediaTypeIndex}, {"manifests", {manifest.to_json()}}};
  index["manifests"][0]["platform"] = {{"architecture", "amd64"}, {"os", "linux"}};
  auto w = normalize::OciLayoutWriter::open(layout);
  auto index_desc = w->add_blob(normalize::kMediaTypeIndex, canonical_json(index, "index").value());
  ASSERT_TRUE(w->write_index(*index_desc, "multi").ok());
  push(layout, "multi", repo("y") + ":multi");
  auto r = pull(repo("y") + "@" + index_desc->digest);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("the pinned " + index_desc->digest + " is an index of 1 manifest(s): " + digest_ +
                               " (linux/amd64); pin one platform's manifest"));
  expect_nothing_stored();
}

// A registry that serves a blob longer than its descriptor says. skopeo 1.9 writes whatever it is sent, and
// checks the digest only at the end: a layer declared as 100 bytes filled the pull's temporary directory with
// 1.9 GB before this (until the stream ended). The copy is now bounded by what the pinned manifest declares.
class HostileRegistry : public Pull {
 protected:
  // Serves one image on 127.0.0.1 whose layer is declared as 100 bytes and sent as up to 1 GiB of zeros; the
  // bytes it sent are written to `sent` when the connection ends. False when python3 is missing.
  bool start_hostile() {
    if (!fs::exists("/usr/bin/python3") || !fs::exists("/usr/bin/skopeo")) return false;
    quorate::testing::spit(scratch_ / "registry.py", R"PY(
import hashlib, http.server, json, sys
port, out = int(sys.argv[1]), sys.argv[2]
cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}).encode()
cfg_digest = "sha256:" + hashlib.sha256(cfg).hexdigest()
layer_digest = "sha256:" + "1" * 64
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_digest, "size": len(cfg)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": 100}]}).encode()
open(out + "/digest.tmp", "w").write("sha256:" + hashlib.sha256(manifest).hexdigest())
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args): pass
    def reply(self, body, head, media_type="application/octet-stream"):
        self.send_response(200)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head: self.wfile.write(body)
    def do_HEAD(self): self.do_GET(True)
    def do_GET(self, head=False):
        if self.path == "/v2/": return self.reply(b"", head)
        if "/manifests/" in self.path: return self.reply(manifest, head, "application/vnd.oci.image.manifest.v1+json")
        if self.path.endswith(cfg_digest): return self.reply(cfg, head)
        if not self.path.endswith(layer_digest):
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
        self.send_response(200); self.send_header("Content-Length", str(1 << 30)); self.end_headers()
        if head: return
        sent, chunk = 0, b"\0" * (1 << 20)
        try:
            while sent < (1 << 30):
                self.wfile.write(chunk); sent += len(chunk)
        except Exception: pass
        open(out + "/sent", "w").write(str(sent))
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
import os; os.rename(out + "/digest.tmp", out + "/digest")
server.serve_forever()
)PY");
    port_ = quorate::e2e::free_port();
    registry_.emplace(std::vector<std::string>{"/usr/bin/python3", (scratch_ / "registry.py").string(),
                                               std::to_string(port_), scratch_.path().string()},
                      scratch_ / "registry.out", scratch_ / "registry.err");
    bool up = quorate::e2e::wait_until([&] { return port_answers(port_) && fs::exists(scratch_ / "digest"); },
                                       std::chrono::seconds(30));
    EXPECT_TRUE(up) << "the registry did not listen: " << registry_->err();
    return up;
  }
  std::string pinned() { return repo("x") + "@" + quorate::testing::slurp(scratch_ / "digest"); }
  // What the registry sent of the layer, once the connection has ended (at most 30 s from now).
  uint64_t layer_bytes_sent() {
    EXPECT_TRUE(quorate::e2e::wait_until([&] { return fs::exists(scratch_ / "sent"); }, std::chrono::seconds(30)));
    std::string sent = quorate::testing::slurp(scratch_ / "sent");
    return sent.empty() ? UINT64_MAX : std::stoull(sent);
  }
};

TEST_F(HostileRegistry, APullStopsSoonAfterABlobPassesWhatThePinDeclares) {
  if (!start_hostile()) GTEST_SKIP() << "python3 or skopeo not installed (scripts/bootstrap.sh)";
  auto r = pull(pinned());
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("the registry sent more than"));
  EXPECT_THAT(r.out, HasSubstr("nothing was stored"));
  EXPECT_LT(layer_bytes_sent(), uint64_t{256} << 20) << "of a layer declared as 100 bytes";
  expect_nothing_stored();
}

TEST_F(HostileRegistry, AVerifyOfARegistryImageStopsAlike) {
  if (!start_hostile()) GTEST_SKIP() << "python3 or skopeo not installed (scripts/bootstrap.sh)";
  ResolveOptions o;
  o.reference = "docker://" + pinned();
  o.skopeo = "/usr/bin/skopeo";
  o.insecure_registry = true;
  o.temp_dir = scratch_.path();
  auto r = resolve_image(o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is_bad_input()) << r.status().to_string();
  EXPECT_THAT(r.status().message(), HasSubstr("the registry sent more than"));
  EXPECT_LT(layer_bytes_sent(), uint64_t{256} << 20) << "of a layer declared as 100 bytes";
  for (const auto& name : names_in(scratch_.path())) EXPECT_FALSE(name.starts_with("quorate-resolve.")) << name;
}

// An index the pin names is the registry's text, shown in the refusal: a platform field that is not a plain
// word, or a digest that is not one, is not shown (a number there made nlohmann's value() throw).
TEST_F(Pull, AnIndexsOddFieldsAreNotShown) {
  const std::string good = "sha256:" + std::string(64, 'a');
  nlohmann::json index = {{"schemaVersion", 2},
                          {"manifests",
                           {{{"digest", good}, {"platform", {{"os", 5}, {"architecture", "amd64\x1b[2J"}}}},
                            {{"digest", "sha256:\x1b]0;owned\x07"}, {"platform", {{"os", "linux"}}}}}}};
  const std::string bytes = index.dump();
  quorate::testing::spit(scratch_ / "index.json", bytes);
  fs::path fake = scratch_ / "bin/skopeo";
  quorate::testing::spit(fake, "#!/bin/sh\ncat " + sh((scratch_ / "index.json").string()) + "\n");
  fs::permissions(fake, fs::perms::owner_all);
  auto s = ImageStore::open(scratch_ / "store").value();
  PullOptions o;
  o.reference = "127.0.0.1:1/x@" + sha256_digest(bytes);
  o.skopeo = fake;
  auto r = s.pull(o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is_bad_input()) << r.status().to_string();
  EXPECT_THAT(r.status().message(), HasSubstr("is an index of 2 manifest(s): " + good + " (?/?); pin one"));
  EXPECT_EQ(r.status().message().find('\x1b'), std::string::npos) << r.status().message();
  expect_nothing_stored();
}

TEST_F(Pull, ATagAloneIsRefused) {
  auto r = pull("127.0.0.1:1/x:v1");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("is not pinned by digest"));
  expect_nothing_stored();
}

TEST_F(Pull, MissingSkopeoSaysWhichPackageToInstall) {
  auto s = ImageStore::open(scratch_ / "store").value();
  PullOptions o;
  o.reference = "127.0.0.1:1/x@" + digest_;
  o.skopeo = scratch_ / "no-skopeo-here";
  auto r = s.pull(o);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is_not_found());
  EXPECT_THAT(r.status().message(), HasSubstr("apt-get install skopeo"));
}

// A skopeo that hangs (here with a child of its own) is killed, group and all, at the timeout.
TEST_F(Pull, AHangingSkopeoIsKilledAtTheTimeoutWithNothingStored) {
  auto s = ImageStore::open(scratch_ / "store").value();
  fs::path fake = scratch_ / "bin/skopeo";
  quorate::testing::spit(fake, "#!/bin/sh\n" + answers_inspect() +
                                   "echo 'reading from the registry' >&2\nsleep 60 &\necho $! > " +
                                   sh((scratch_ / "child.pid").string()) + "\nwait\n");
  fs::permissions(fake, fs::perms::owner_all);
  PullOptions o;
  o.reference = "127.0.0.1:1/x@" + digest_;
  o.skopeo = fake;
  o.timeout = std::chrono::seconds(1);
  auto started = std::chrono::steady_clock::now();
  auto r = s.pull(o);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
  EXPECT_THAT(r.status().message(), HasSubstr("skopeo still ran after 1 s and was killed: reading from the registry"));
  EXPECT_THAT(r.status().message(), HasSubstr("nothing was stored"));
  // Killed: gone, or a zombie until init reaps it. SIGKILL was sent before pull() returned, but a busy machine
  // may not have run the child's exit yet (it showed state R once in CI): wait for it, a bounded time.
  std::string pid = quorate::testing::slurp(scratch_ / "child.pid");
  pid.erase(pid.find_last_not_of("\n") + 1);
  fs::path stat = fs::path("/proc") / pid / "stat";
  std::string state;
  for (int i = 0; i < 500; ++i) {
    state = fs::exists(stat) ? quorate::testing::slurp(stat) : "";
    if (state.empty() || state.find(") Z ") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(state.empty() || state.find(") Z ") != std::string::npos) << "skopeo's child outlived it: " << state;
  expect_nothing_stored();
}

// Ctrl-C during a pull: skopeo leads a process group of its own, so the terminal's SIGINT reached only quorate;
// skopeo went on downloading into the store's tmp/pull.* directory, which stayed. Now the interrupt kills its
// group, then removes the directory, and quorate dies of the signal.
TEST_F(Pull, AnInterruptedPullStopsSkopeoAndLeavesNoTemporaries) {
  fs::path bin = scratch_ / "bin";
  const std::string pid_file = (scratch_ / "skopeo.pid").string();
  // Downloads into its working directory (the pull's temporary), as a slow registry would, for a minute at most
  // (should the test fail before it is stopped), and says nothing (writing to quorate's pipe once quorate is
  // gone would end it by SIGPIPE).
  quorate::testing::spit(bin / "skopeo",
                         "#!/bin/sh\n" + answers_inspect() + "exec >/dev/null 2>&1\necho $$ > " + sh(pid_file) +
                             "\ni=0\nwhile [ $i -lt 6000 ]; do i=$((i+1)); echo x > part.$i; sleep 0.01; done\n");
  fs::permissions(bin / "skopeo", fs::perms::owner_all);
  for (int sig : {SIGINT, SIGTERM}) {
    fs::remove(pid_file);
    quorate::e2e::Process pull(
        {"/usr/bin/env", "PATH=" + bin.string() + ":/usr/bin:/bin", quorate::testing::quorate_bin(), "image", "pull",
         "127.0.0.1:1/x@" + digest_, "--image-store", (scratch_ / "store").string()},
        scratch_ / "pull.out", scratch_ / "pull.err");
    ASSERT_TRUE(quorate::e2e::wait_until(
        [&] { return names_in(scratch_ / "store/tmp").size() == 1 && !quorate::testing::slurp(pid_file).empty(); },
        std::chrono::seconds(30)))
        << pull.err();
    std::string skopeo = quorate::testing::slurp(pid_file);
    skopeo.erase(skopeo.find_last_not_of('\n') + 1);
    pull.signal(sig);
    EXPECT_EQ(pull.wait(std::chrono::seconds(30)), 128 + sig) << pull.err();
    auto gone = [&] {
      std::string state = quorate::testing::slurp("/proc/" + skopeo + "/stat");
      return state.empty() || state.find(") Z ") != std::string::npos;
    };
    bool stopped = quorate::e2e::wait_until(gone, std::chrono::seconds(10));
    if (!stopped) ::kill(std::stoi(skopeo), SIGKILL);
    EXPECT_TRUE(stopped) << "skopeo outlived the interrupted pull";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(names_in(scratch_ / "store/tmp").size(), 0u) << "the pull's temporary directory was left";
  }
}

}  // namespace
}  // namespace quorate::imagestore
