// `quorate build` of Containerfiles, offline, on a busybox image made at test time: a two-stage build is one
// digest from two clones under different umask/TZ/clock; deletions are whiteouts; refusals exit 2 with the line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

#include "git_repo.h"
#include "imagestore/busybox_image.h"
#include "quorate/attest/dsse.h"
#include "quorate/attest/statement.h"
#include "quorate/imagestore/image_store.h"
#include "quorate/node/builder_rebuilder.h"
#include "quorate/normalize/layer.h"
#include "quorate/normalize/oci.h"
#include "quorate/wire/request.h"

namespace quorate::builder {
namespace {

using ::testing::HasSubstr;
using namespace quorate::builder::testing;
using quorate::testing::run;
using quorate::testing::ScratchDir;
using quorate::testing::sh;
using quorate::testing::slurp;

// A busybox image (/bin/busybox plus the applets the tests use, /tmp) as an OCI layout; its manifest digest.
std::string make_image(const std::filesystem::path& dir) {
  return quorate::testing::make_busybox_image(dir,
                                              {"sh", "cat", "echo", "ls", "mkdir", "rm", "test", "true", "touch", "cp",
                                               "ln", "chmod", "chown", "id", "tar", "stat", "truncate", "sleep"},
                                              /*with_tmp=*/true);
}

// Whether this machine can do what Containerfile RUN needs: a private mount namespace and an overlay mount.
std::string missing_capability() {
  if (!std::filesystem::exists("/bin/busybox")) return "/bin/busybox is missing (apt-get install busybox-static)";
  if (::access("/usr/bin/bwrap", X_OK) != 0) return "bubblewrap is not installed";
  auto r =
      run("unshare --mount sh -c 'd=$(mktemp -d) && mkdir $d/l $d/u $d/w $d/m && mount -t overlay overlay "
          "-o lowerdir=$d/l,upperdir=$d/u,workdir=$d/w $d/m && umount $d/m; rm -rf $d'");
  if (r.exit_code != 0) return "overlay mounts in a private mount namespace need root here: " + r.out;
  return "";
}

class ContainerfileBuildTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = missing_capability(); !why.empty()) GTEST_SKIP() << why;
    digest_ = make_image(scratch_ / "busybox-layout");
    auto store = imagestore::ImageStore::open(store_);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(store->import_layout(scratch_ / "busybox-layout").ok());
  }

  std::string base() const { return "example.org/busybox@" + digest_; }

  // A repository holding `containerfile` as Containerfile plus a few source files.
  std::string make_project(const std::filesystem::path& repo, const std::string& containerfile) {
    auto src = scratch_ / ("src-" + repo.filename().string());
    write_text(src / "Containerfile", containerfile);
    write_text(src / "src/hello.txt", "hello\n");
    write_text(src / "src/remove-me.txt", "gone\n");
    write_text(src / "src/tmp.txt", "temporary\n");
    write_text(src / "src/notes.log", "ignored\n");
    write_text(src / ".dockerignore", "src/*.log\n");
    return make_repo(src, repo);
  }

  quorate::testing::CommandResult build(const std::filesystem::path& repo, const std::filesystem::path& out,
                                        const std::string& extra = "", const std::string& env = "") {
    return run(env + quorate::testing::quorate_bin() + " build -q --repo " + sh(repo.string()) + " --commit main -o " +
               sh(out.string()) + " --image-store " + sh(store_.string()) + " --work-dir " +
               sh((scratch_ / "work").string()) + " --name example.org/test/app " + extra);
  }

  std::string two_stage() const {
    return "# syntax=docker/dockerfile:1\nFROM " + base() +
           " AS build\nWORKDIR /work\nCOPY src/ ./\n"
           "RUN echo built > out.txt && rm remove-me.txt && rm /bin/ls\n\n"
           "FROM " +
           base() +
           "\nARG FLAVOR=plain\nCOPY --from=build /work /app\nRUN rm /app/tmp.txt && "
           "echo $FLAVOR > /app/flavor\nENV GREETING=hello\nLABEL "
           "org.opencontainers.image.source=https://example.org/app.git\nENTRYPOINT [\"/bin/cat\", \"/app/out.txt\"]\n";
  }

  ScratchDir scratch_;
  std::filesystem::path store_ = scratch_ / "store";
  std::string digest_;
};

std::string digest_line(const std::string& out) {
  auto pos = out.find("image   sha256:");
  return pos == std::string::npos ? "" : out.substr(pos + 8, 71);
}

// The config section of the image a build wrote to `out` (an OCI layout of one manifest).
nlohmann::json image_config(const std::filesystem::path& out) {
  auto blob = [&](const nlohmann::json& desc) {
    std::string digest = desc["digest"];
    return nlohmann::json::parse(slurp(out / "blobs/sha256" / digest.substr(7)));
  };
  auto index = nlohmann::json::parse(slurp(out / "index.json"));
  return blob(blob(index["manifests"][0])["config"])["config"];
}

TEST_F(ContainerfileBuildTest, TwoStagesAreOneDigestFromTwoClonesUnderDifferentUmaskAndTz) {
  make_project(scratch_ / "a", two_stage());
  run("git clone -q " + sh((scratch_ / "a").string()) + " " + sh((scratch_ / "b").string()));
  auto first = build(scratch_ / "a", scratch_ / "out-a", "", "umask 022; TZ=UTC ");
  ASSERT_EQ(first.exit_code, 0) << first.out;
  auto second = build(scratch_ / "b", scratch_ / "out-b", "", "umask 077; TZ=Pacific/Kiritimati LC_ALL=C ");
  ASSERT_EQ(second.exit_code, 0) << second.out;
  EXPECT_FALSE(digest_line(first.out).empty()) << first.out;
  EXPECT_EQ(digest_line(first.out), digest_line(second.out));
}

// A RUN that packs files COPY brought in (a tar records their times) makes the same bytes in builds a second
// apart: copied files carry SOURCE_DATE_EPOCH inside the stage, not the time of the copy.
TEST_F(ContainerfileBuildTest, RunPackingCopiedFilesIsReproducible) {
  make_project(scratch_ / "a", "FROM " + base() +
                                   "\nCOPY src/ /s/\nRUN tar -cf /s.tar s && test $(stat -c %Y /s/hello.txt) = "
                                   "$SOURCE_DATE_EPOCH\n");
  auto first = build(scratch_ / "a", scratch_ / "out-1");
  ASSERT_EQ(first.exit_code, 0) << first.out;
  run("sleep 1.1");
  auto second = build(scratch_ / "a", scratch_ / "out-2");
  ASSERT_EQ(second.exit_code, 0) << second.out;
  EXPECT_EQ(digest_line(first.out), digest_line(second.out))
      << run(quorate::testing::quorate_bin() + " diff " + sh((scratch_ / "out-1").string()) + " " +
             sh((scratch_ / "out-2").string()))
             .out;
}

TEST_F(ContainerfileBuildTest, UnpackedTreeAndRuntimeConfig) {
  make_project(scratch_ / "a", two_stage());
  auto r = build(scratch_ / "a", scratch_ / "out",
                 "--build-arg FLAVOR=spicy --tag v1 --result-out " + sh((scratch_ / "result.json").string()));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto unpack = run("umoci unpack --rootless --image " + sh((scratch_ / "out").string()) + ":v1 " +
                    sh((scratch_ / "bundle").string()));
  ASSERT_EQ(unpack.exit_code, 0) << unpack.out;
  auto rootfs = scratch_ / "bundle/rootfs";
  EXPECT_EQ(slurp(rootfs / "app/out.txt"), "built\n");
  EXPECT_EQ(slurp(rootfs / "app/hello.txt"), "hello\n");
  EXPECT_EQ(slurp(rootfs / "app/flavor"), "spicy\n");
  EXPECT_FALSE(std::filesystem::exists(rootfs / "app/remove-me.txt"));  // deleted in the first stage
  EXPECT_FALSE(std::filesystem::exists(rootfs / "app/tmp.txt"));        // deleted in the final stage: a whiteout
  EXPECT_FALSE(std::filesystem::exists(rootfs / "app/notes.log"));      // .dockerignore
  EXPECT_FALSE(std::filesystem::exists(rootfs / "work"));               // the first stage's root is not the final's
  EXPECT_TRUE(std::filesystem::is_symlink(rootfs / "bin/ls"));          // removed only in the first stage
  auto config = nlohmann::json::parse(slurp(scratch_ / "bundle/config.json"));
  EXPECT_EQ(config["process"]["args"], nlohmann::json({"/bin/cat", "/app/out.txt"}));
  EXPECT_THAT(config["process"]["env"].dump(), HasSubstr("GREETING=hello"));
  auto result = nlohmann::json::parse(slurp(scratch_ / "result.json"));
  EXPECT_EQ(result["build_args"], nlohmann::json({{"FLAVOR", "spicy"}}));
  EXPECT_EQ(result["source"]["recipe_kind"], "containerfile");
  EXPECT_EQ(result["base_images"][0]["digest"], digest_);
  EXPECT_EQ(result["sandbox"], "bubblewrap");
  // RUN steps executed in the stages' roots, made of the pinned FROM image: no host toolchain.
  EXPECT_EQ(result["run_environment"], "image");
  EXPECT_EQ(result["base_images"].size(), 1u);  // both stages start from the same pinned image
}

TEST_F(ContainerfileBuildTest, BuildArgsAndRunEnvironmentReachTheAttestation) {
  make_project(scratch_ / "a", two_stage());
  auto key = scratch_ / "node-a";
  auto gen = run(quorate::testing::quorate_bin() + " key generate --out " + sh(key.string()));
  ASSERT_EQ(gen.exit_code, 0) << gen.out;
  auto att = scratch_ / "att.json";
  auto r = build(scratch_ / "a", scratch_ / "out",
                 "--build-arg FLAVOR=spicy --attest " + sh(key.string()) + " --attest-out " + sh(att.string()));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto verify = run(quorate::testing::quorate_bin() + " attest verify --json --pub " + sh(key.string() + ".pub.pem") +
                    " " + sh(att.string()));
  ASSERT_EQ(verify.exit_code, 0) << verify.out;
  auto v = nlohmann::json::parse(verify.out);
  EXPECT_EQ(v["source"]["recipe_path"], "Containerfile");
  EXPECT_EQ(v["source"]["build_args"], nlohmann::json({{"FLAVOR", "spicy"}}));
  EXPECT_EQ(v["run_environment"], "image");
  // Another value is another image, and another statement.
  auto mild = build(scratch_ / "a", scratch_ / "out-mild", "--build-arg FLAVOR=mild");
  ASSERT_EQ(mild.exit_code, 0) << mild.out;
  EXPECT_NE(digest_line(mild.out), v["subject"]["digest"].get<std::string>());
  // An argument no ARG declares is refused rather than ignored.
  auto undeclared = build(scratch_ / "a", scratch_ / "out-undeclared", "--build-arg NOPE=1");
  EXPECT_EQ(undeclared.exit_code, 2) << undeclared.out;
  EXPECT_THAT(undeclared.out, HasSubstr("NOPE"));
  EXPECT_FALSE(std::filesystem::exists(scratch_ / "out-undeclared"));
}

// The node's path: a wire request with build args reaches the builder, and the node's signed statement
// carries them.
TEST_F(ContainerfileBuildTest, NodeRebuilderPassesTheRequestsBuildArgs) {
  make_project(scratch_ / "a", two_stage());
  auto gen = run(quorate::testing::quorate_bin() + " key generate --out " + sh((scratch_ / "node-key").string()));
  ASSERT_EQ(gen.exit_code, 0) << gen.out;
  node::NodeConfig config;
  config.node_id = "node-a";
  config.data_dir = scratch_ / "node";
  config.work_dir = scratch_ / "node/work";
  config.signing_key = scratch_ / "node-key";
  config.image_store = store_;
  config.sandbox = "bubblewrap";
  auto rebuilder = node::make_builder_rebuilder(
      config, [] { return int64_t{1700000000000}; }, [](const std::string&) { return std::string(); });
  ASSERT_TRUE(rebuilder.ok()) << rebuilder.status().to_string();
  wire::RebuildRequest request;
  request.repo = (scratch_ / "a").string();
  request.commit = "main";
  request.recipe_path = "Containerfile";
  request.image_name = "example.org/test/app";
  request.build_args = {{"FLAVOR", "spicy"}};
  // Through the wire form, as a node receives it.
  auto received = wire::request_from_wire(wire::to_wire(wire::normalize_request(request).value()));
  ASSERT_TRUE(received.ok()) << received.status().to_string();
  std::atomic<bool> cancel{false};
  auto output = (*rebuilder)->rebuild(*received, cancel);
  ASSERT_TRUE(output.ok()) << output.status().to_string();
  auto envelope = attest::parse_envelope(output->envelope);
  ASSERT_TRUE(envelope.ok()) << envelope.status().to_string();
  auto statement = attest::parse_statement(envelope->payload);
  ASSERT_TRUE(statement.ok()) << statement.status().to_string();
  EXPECT_EQ(statement->build_args, (std::map<std::string, std::string>{{"FLAVOR", "spicy"}}));
  EXPECT_EQ(statement->run_environment, "image");
  EXPECT_EQ(statement->recipe_path, "Containerfile");
  // The same build through the CLI with the same argument is the same image.
  auto cli = build(scratch_ / "a", scratch_ / "out", "--build-arg FLAVOR=spicy");
  ASSERT_EQ(cli.exit_code, 0) << cli.out;
  EXPECT_EQ(digest_line(cli.out), statement->image_digest);
}

// Buildah builds the same files: Debian's buildah 1.28 (`--isolation chroot --storage-driver vfs`, its storage
// private to this test, the busybox image loaded from the same OCI layout so FROM's digest resolves, no pull)
// and `quorate build` make layers that `quorate diff --ignore mtime` finds equal, file by file. `--layers` makes
// buildah write one layer per RUN/COPY as quorate does (without it, a stage is one squashed layer). The image
// has the mount points a runtime needs (dev, proc, sys, run, etc/hosts, etc/hostname, etc/resolv.conf): without
// them buildah's chroot isolation leaves them, empty, in its RUN layers (measured), which quorate does not.
// Expected differences, all in the config: `created` and history times (buildah --timestamp 0 writes 1970,
// quorate the commit's SOURCE_DATE_EPOCH), history `created_by` texts (buildah's "/bin/sh -c #(nop) …"
// forms) and comments, the revision/source labels quorate adds, and buildah's `io.buildah.version` label.
TEST_F(ContainerfileBuildTest, SameFilesAsBuildah) {
  if (::access("/usr/bin/buildah", X_OK) != 0) GTEST_SKIP() << "buildah is not installed (scripts/bootstrap.sh)";
  auto digest =
      quorate::testing::make_busybox_image(scratch_ / "busybox-layout-mp", {"sh", "cat", "echo", "rm", "test", "ls"},
                                           /*with_tmp=*/true, /*with_mount_points=*/true);
  ASSERT_TRUE(imagestore::ImageStore::open(store_)->import_layout(scratch_ / "busybox-layout-mp").ok());
  std::string text = two_stage();
  for (size_t at; (at = text.find(digest_)) != std::string::npos;) text.replace(at, digest_.size(), digest);
  make_project(scratch_ / "a", text);
  const std::string bh = "TMPDIR=" + sh(scratch_.path().string()) + " buildah --root " +
                         sh((scratch_ / "bh-root").string()) + " --runroot " + sh((scratch_ / "bh-run").string()) +
                         " --storage-driver vfs ";
  // A relative path: buildah names the pulled image after it, and the scratch directory's name has capitals.
  auto pull = run("cd " + sh(scratch_.path().string()) + " && " + bh + "pull -q oci:busybox-layout-mp:busybox");
  ASSERT_EQ(pull.exit_code, 0) << pull.out;
  std::string image_id = pull.out.substr(0, pull.out.find('\n'));
  auto tag = run(bh + "tag " + image_id + " example.org/busybox:busybox");
  ASSERT_EQ(tag.exit_code, 0) << tag.out;
  auto built = run("cd " + sh((scratch_ / "a").string()) + " && " + bh +
                   "build -q --pull=never --layers --timestamp 0 --isolation chroot --build-arg FLAVOR=spicy "
                   "-f Containerfile -t example.org/test/app:latest .");
  ASSERT_EQ(built.exit_code, 0) << built.out;
  auto push =
      run(bh + "push -q example.org/test/app:latest oci:" + sh((scratch_ / "out-buildah").string()) + ":latest");
  ASSERT_EQ(push.exit_code, 0) << push.out;
  auto ours = build(scratch_ / "a", scratch_ / "out-quorate", "--build-arg FLAVOR=spicy");
  ASSERT_EQ(ours.exit_code, 0) << ours.out;

  auto diff = run(quorate::testing::quorate_bin() + " diff --json --ignore mtime " +
                  sh((scratch_ / "out-quorate").string()) + " " + sh((scratch_ / "out-buildah").string()));
  // The JSON line (stdout); stderr's "the images differ" follows it.
  std::string json_line = diff.out.substr(diff.out.find('{'));
  auto report = nlohmann::json::parse(json_line.substr(0, json_line.find('\n')));
  EXPECT_EQ(report["layers"], nlohmann::json::array()) << diff.out;
  const std::vector<std::string> expected_prefixes = {
      "/created", "/history/", "/config/Labels/org.opencontainers.image.revision", "/config/Labels/io.buildah.version"};
  for (const auto& field : report["config"]) {
    std::string name = field["field"];
    bool expected = std::any_of(expected_prefixes.begin(), expected_prefixes.end(),
                                [&](const std::string& p) { return name.rfind(p, 0) == 0; });
    EXPECT_TRUE(expected) << "unexpected config difference " << field.dump();
  }
}

// USER by name and by number, resolved through the stage's /etc/passwd and /etc/group as Docker does: RUN runs
// as that uid and gid with the user's supplementary groups (a 0640 root:staff file is readable by alice only
// through staff) and HOME from passwd; its files are the user's. COPY --chown by name uses the same files.
TEST_F(ContainerfileBuildTest, RunAsUserAndChownByName) {
  auto src = scratch_ / "src-users";
  write_text(src / "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n");
  write_text(src / "etc/group", "root:x:0:\nstaff:x:50:bob,alice\nalice:x:1000:\n");
  write_text(src / "secret", "for staff\n");
  write_text(src / "hello.txt", "hello\n");
  write_text(src / "Containerfile",
             "FROM " + base() +
                 "\nCOPY etc/ /etc/\nRUN mkdir -p /home/alice && chown 1000:1000 /home/alice\n"
                 "COPY --chown=root:staff --chmod=0640 secret /secret\n"
                 "COPY --chown=alice:staff hello.txt /home/alice/\n"
                 "COPY --chown=alice hello.txt /home/alice/same-gid.txt\n"
                 "USER alice\nWORKDIR /home/alice\n"
                 "RUN id -u > uid && id -g > gid && echo $HOME > home && cat /secret > secret-copy && touch mine\n"
                 "USER 2000:staff\nRUN touch /tmp/numeric && id -u > /tmp/numeric-uid\n"
                 "USER alice:alice\nRUN ! cat /secret 2>/dev/null && touch /tmp/no-staff\n");
  make_repo(src, scratch_ / "a");
  auto r = build(scratch_ / "a", scratch_ / "out");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto unpack =
      run("umoci unpack --image " + sh((scratch_ / "out").string()) + ":latest " + sh((scratch_ / "bundle").string()));
  ASSERT_EQ(unpack.exit_code, 0) << unpack.out;
  auto rootfs = scratch_ / "bundle/rootfs";
  EXPECT_EQ(slurp(rootfs / "home/alice/uid"), "1000\n");
  EXPECT_EQ(slurp(rootfs / "home/alice/gid"), "1000\n");
  EXPECT_EQ(slurp(rootfs / "home/alice/home"), "/home/alice\n");
  EXPECT_EQ(slurp(rootfs / "home/alice/secret-copy"), "for staff\n");
  EXPECT_EQ(slurp(rootfs / "tmp/numeric-uid"), "2000\n");
  EXPECT_TRUE(std::filesystem::exists(rootfs / "tmp/no-staff"));
  auto owner = [&](const std::string& rel) {
    struct stat st {};
    EXPECT_EQ(::lstat((rootfs / rel).c_str(), &st), 0) << rel;
    return std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid);
  };
  EXPECT_EQ(owner("home/alice/mine"), "1000:1000");
  EXPECT_EQ(owner("home/alice/hello.txt"), "1000:50");
  EXPECT_EQ(owner("home/alice/same-gid.txt"), "1000:1000");
  EXPECT_EQ(owner("secret"), "0:50");
  EXPECT_EQ(owner("tmp/numeric"), "2000:50");
  EXPECT_FALSE(std::filesystem::exists(rootfs / "dev/null"));  // no mount point leaked into a layer

  // Names the stage does not have: exit 2 with the line, nothing written.
  for (const auto& [text, where] : std::vector<std::pair<std::string, std::string>>{
           {"FROM " + base() + "\nUSER ghost\nRUN true\n", "Containerfile:3: user ghost"},
           {"FROM " + base() + "\nCOPY --chown=1:ghosts src/hello.txt /x\n", "Containerfile:2: --chown: ghosts"}}) {
    auto repo = scratch_ / ("bad-" + std::to_string(text.size()));
    make_project(repo, text);
    auto bad = build(repo, scratch_ / "out-bad");
    EXPECT_EQ(bad.exit_code, 2) << bad.out;
    EXPECT_THAT(bad.out, HasSubstr(where));
    EXPECT_FALSE(std::filesystem::exists(scratch_ / "out-bad"));
  }
}

// COPY --from with wildcards: each segment matched in the other stage; a matched file lands in the destination
// directory, a pattern matching nothing is an error.
TEST_F(ContainerfileBuildTest, CopyFromStageWithWildcards) {
  make_project(
      scratch_ / "a",
      "FROM " + base() +
          " AS build\n"
          "RUN mkdir -p /out/a /out/b && echo 1 > /out/a/x.txt && echo 2 > /out/b/y.txt && echo 3 > /out/b/z.log\n"
          "FROM " +
          base() + "\nCOPY --from=build /out/*/*.txt /out/[a]/ /dest/\n");
  auto r = build(scratch_ / "a", scratch_ / "out");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto unpack =
      run("umoci unpack --image " + sh((scratch_ / "out").string()) + ":latest " + sh((scratch_ / "bundle").string()));
  ASSERT_EQ(unpack.exit_code, 0) << unpack.out;
  auto rootfs = scratch_ / "bundle/rootfs";
  EXPECT_EQ(slurp(rootfs / "dest/x.txt"), "1\n");
  EXPECT_EQ(slurp(rootfs / "dest/y.txt"), "2\n");
  EXPECT_FALSE(std::filesystem::exists(rootfs / "dest/z.log"));
  EXPECT_FALSE(std::filesystem::exists(rootfs / "dest/a"));  // a matched directory copies its content
  make_project(scratch_ / "b", "FROM " + base() + " AS build\nFROM " + base() + "\nCOPY --from=build /nothing* /d/\n");
  auto none = build(scratch_ / "b", scratch_ / "out-none");
  EXPECT_EQ(none.exit_code, 2) << none.out;
  EXPECT_THAT(none.out, HasSubstr("Containerfile:3: source /nothing* matches nothing"));
}

TEST_F(ContainerfileBuildTest, FinalStageDeletionIsAWhiteoutInItsLayer) {
  make_project(scratch_ / "a", "FROM " + base() + "\nRUN rm /bin/ls && mkdir /d && touch /d/x\n");
  auto r = build(scratch_ / "a", scratch_ / "out");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto index = nlohmann::json::parse(slurp(scratch_ / "out/index.json"));
  std::string manifest_digest = index["manifests"][0]["digest"];
  auto manifest = nlohmann::json::parse(slurp(scratch_ / "out/blobs/sha256" / manifest_digest.substr(7)));
  ASSERT_EQ(manifest["layers"].size(), 2u);
  std::string layer = manifest["layers"][1]["digest"];
  auto listing = run("tar -tzvf " + sh((scratch_ / "out/blobs/sha256" / layer.substr(7)).string()));
  EXPECT_THAT(listing.out, HasSubstr("bin/.wh.ls"));
  EXPECT_THAT(listing.out, HasSubstr("d/x"));
  EXPECT_THAT(listing.out, ::testing::Not(HasSubstr(" dev/")));  // bwrap's mount points stay out
  // The base layer is kept byte for byte.
  EXPECT_TRUE(std::filesystem::exists(scratch_ / "busybox-layout/blobs/sha256" /
                                      manifest["layers"][0]["digest"].get<std::string>().substr(7)));
}

// A step's output is read relative to directory descriptors, not through paths of the work directory: under a
// long one, a file 4,000 bytes deep was "i/o error: stat …" and a directory's opaque mark was silently lost
// (the deleted directory's old content came back in the image), while the same build under a short one was
// right. Two honest nodes must not disagree because of where their hosts keep work.
TEST_F(ContainerfileBuildTest, TheImageDoesNotDependOnTheWorkDirectorysLength) {
  std::string deep;
  for (int i = 0; i < 16; ++i) deep += "/" + std::string(250, 'n');
  make_project(scratch_ / "a", "FROM " + base() + "\nRUN mkdir -p " + deep + "/d/old && echo hi > " + deep +
                                   "/d/file && ln -s payload " + deep + "/d/s\nRUN rm -rf " + deep + "/d && mkdir " +
                                   deep + "/d\n");
  std::string digests[2];
  const std::filesystem::path work[2] = {scratch_ / "w", scratch_ / std::string(200, 'W')};
  for (int i = 0; i < 2; ++i) {
    auto out = scratch_ / ("out" + std::to_string(i));
    auto r = run(quorate::testing::quorate_bin() + " build -q --repo " + sh((scratch_ / "a").string()) +
                 " --commit main -o " + sh(out.string()) + " --image-store " + sh(store_.string()) + " --work-dir " +
                 sh(work[i].string()) + " --name example.org/test/app");
    ASSERT_EQ(r.exit_code, 0) << work[i] << ": " << r.out;
    digests[i] = nlohmann::json::parse(slurp(out / "index.json"))["manifests"][0]["digest"];
    auto manifest = nlohmann::json::parse(slurp(out / "blobs/sha256" / digests[i].substr(7)));
    ASSERT_EQ(manifest["layers"].size(), 3u);
    std::string layer = manifest["layers"][2]["digest"];
    auto listing = run("tar -tzf " + sh((out / "blobs/sha256" / layer.substr(7)).string()));
    EXPECT_THAT(listing.out, HasSubstr("/d/.wh..wh..opq")) << work[i];
  }
  EXPECT_EQ(digests[0], digests[1]);
}

TEST_F(ContainerfileBuildTest, RefusedConstructsExitTwoWithTheLineAndWriteNothing) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"FROM busybox:latest\n", "Containerfile:1:"},
      {"FROM " + base() + "\nRUN true\nADD https://example.org/x.tgz /x\n", "Containerfile:3:"},
      {"FROM " + base() + "\nRUN --mount=type=secret,id=k cat /run/secrets/k\n", "Containerfile:2:"},
      {"FROM " + base() + "\nRUN --mount=type=ssh true\n", "Containerfile:2:"},
      {"FROM " + base() + "\nRUN --mount=type=cache,target=/c true\n", "Containerfile:2:"},
      {"FROM " + base() + "\n\nONBUILD RUN true\n", "Containerfile:3:"},
      {"FROM " + base() + "\nMAINTAINER someone\n", "Containerfile:2:"},
      {"FROM " + base() + "\nCOPY --link src /src\n", "Containerfile:2:"},
      // These crashed the build ("internal error: build failed: stod" / "stoll") or wrote a negative Interval.
      {"FROM scratch\nHEALTHCHECK --interval=.s CMD true\n", "Containerfile:2: HEALTHCHECK --interval=.s is not"},
      {"FROM scratch\nHEALTHCHECK --retries=99999999999999999999999 CMD true\n", "Containerfile:2: HEALTHCHECK"},
      {"FROM scratch\nHEALTHCHECK --interval=99999999999999999999999999999999h CMD true\n", "Containerfile:2:"},
  };
  int n = 0;
  for (const auto& [text, where] : cases) {
    auto repo = scratch_ / ("r" + std::to_string(n));
    auto out = scratch_ / ("o" + std::to_string(n++));
    make_project(repo, text);
    auto r = build(repo, out);
    EXPECT_EQ(r.exit_code, 2) << text << r.out;
    EXPECT_THAT(r.out, HasSubstr(where)) << text;
    EXPECT_FALSE(std::filesystem::exists(out)) << text;
  }
}

// Docker and BuildKit leave a zero HEALTHCHECK duration or retry count out of the config (Go's omitempty);
// writing it made the config, and so the image digest, differ from theirs for the same Containerfile.
TEST_F(ContainerfileBuildTest, HealthcheckZerosAreLeftOutAsDockerWritesThem) {
  auto repo = scratch_ / "repo";
  make_project(repo,
               "FROM scratch\nHEALTHCHECK --interval=0s --timeout=3s --start-period=0ms --start-interval=2s "
               "--retries=0 CMD true\n");
  auto r = build(repo, scratch_ / "out");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(image_config(scratch_ / "out")["Healthcheck"],
            nlohmann::json::parse(R"({"Test": ["CMD-SHELL", "true"], "Timeout": 3000000000,
                                      "StartInterval": 2000000000})"));
}

// COPY and ADD write no more than the output limit over the whole build, counted before the bytes are read: a
// sparse 2 GiB file an earlier stage made, and an archive of 30 KB that inflates to 1 GiB, are refused at their
// line. The builder streams what it copies (it held each file whole in memory, and wrote it all to disk first).
TEST_F(ContainerfileBuildTest, CopyAndAddPastTheOutputLimitAreRefusedAtTheirLine) {
  make_project(scratch_ / "a",
               "FROM " + base() + " AS big\nRUN truncate -s 2G /big\nFROM " + base() + "\nCOPY --from=big /big /big\n");
  auto r = build(scratch_ / "a", scratch_ / "out-a", "--max-output-bytes 1048576");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("Containerfile:4: COPY and ADD would write more than 1048576 bytes of files"));
  EXPECT_THAT(r.out, HasSubstr("node build.max_output_bytes"));
  EXPECT_FALSE(std::filesystem::exists(scratch_ / "out-a"));

  auto src = scratch_ / "src-b";  // make_project adds its files beside the archive
  std::filesystem::create_directories(src);
  auto packed = run("cd " + sh(src.string()) +
                    " && truncate -s 1G zeros && tar cf - zeros | zstd -1 -q > bomb.tar.zst && rm zeros");
  ASSERT_EQ(packed.exit_code, 0) << packed.out;
  ASSERT_LT(std::filesystem::file_size(src / "bomb.tar.zst"), 1u << 20);
  make_project(scratch_ / "b", "FROM " + base() + "\nADD bomb.tar.zst /x/\n");
  r = build(scratch_ / "b", scratch_ / "out-b", "--max-output-bytes 1048576");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("Containerfile:2: COPY and ADD would write more than 1048576 bytes of files"));
  EXPECT_FALSE(std::filesystem::exists(scratch_ / "out-b"));

  struct rusage usage {};
  ::getrusage(RUSAGE_CHILDREN, &usage);
  EXPECT_LT(usage.ru_maxrss, 512 * 1024) << "KiB: the largest process this test waited for";
}
// The busybox image at `dir` with a second layer: an uncompressed tar of one file of `size` zero bytes. Its
// manifest digest.
std::string add_zeros_layer(const std::filesystem::path& dir, const std::filesystem::path& zeros, uint64_t size) {
  std::ofstream(zeros).close();
  std::filesystem::resize_file(zeros, size);
  auto layout = normalize::OciLayoutWriter::open(dir);
  EXPECT_TRUE(layout.ok());
  normalize::LayerOptions options;
  options.source_date_epoch = 1700000000;
  options.compression = normalize::Compression::kNone;
  normalize::CanonicalLayerWriter writer(options);
  normalize::Entry file;
  file.path = "zeros";
  file.mode = 0644;
  EXPECT_TRUE(writer.add_file(file, zeros).ok());
  auto blob = layout->begin_blob();
  auto summary = writer.write(**blob);
  EXPECT_TRUE(summary.ok() && (*blob)->finish().ok());
  auto layer = (*blob)->commit(summary->media_type);
  auto blob_json = [&](const std::string& digest) {
    return nlohmann::json::parse(slurp(dir / "blobs/sha256" / digest.substr(7)));
  };
  auto index = nlohmann::json::parse(slurp(dir / "index.json"));
  auto manifest = blob_json(index["manifests"][0]["digest"]);
  auto config = blob_json(manifest["config"]["digest"]);
  config["rootfs"]["diff_ids"].push_back(summary->diff_id);
  auto config_desc = layout->add_blob(normalize::kMediaTypeConfig, canonical_json(config, "config").value());
  std::vector<normalize::Descriptor> layers;
  for (const auto& l : manifest["layers"]) {
    layers.push_back(normalize::parse_descriptor(l, "layer").value());
  }
  layers.push_back(*layer);
  auto m = layout->add_blob(normalize::kMediaTypeManifest, normalize::make_manifest(*config_desc, layers).value());
  EXPECT_TRUE(layout->write_index(*m, "big").ok());
  return m->digest;
}

// A FROM image's layers are copied into the output image through a bounded buffer, never read whole: a base
// whose layer is a 256 MiB blob (a hostile one may have 16 GiB) is built on by a process far smaller than it,
// and the layer keeps its digest.
TEST_F(ContainerfileBuildTest, ABaseImagesLargeLayerIsStreamedNotHeldInMemory) {
  constexpr uint64_t kSize = uint64_t{256} << 20;
  auto layout = scratch_ / "big-layout";
  make_image(layout);
  std::string big = add_zeros_layer(layout, scratch_ / "zeros", kSize);
  std::filesystem::remove(scratch_ / "zeros");
  {
    auto store = imagestore::ImageStore::open(store_);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(store->import_layout(layout).ok());
  }
  std::filesystem::remove_all(layout);
  make_project(scratch_ / "a", "FROM example.org/big@" + big + "\nCOPY src/hello.txt /hello.txt\n");
  struct rusage before {};
  ::getrusage(RUSAGE_CHILDREN, &before);
  ASSERT_LT(before.ru_maxrss, 64 * 1024) << "KiB: a process this test waited for before the build";
  auto r = build(scratch_ / "a", scratch_ / "out-a");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  struct rusage after {};
  ::getrusage(RUSAGE_CHILDREN, &after);
  EXPECT_LT(after.ru_maxrss, 64 * 1024) << "KiB: the build's peak resident size, for a " << (kSize >> 20)
                                        << " MiB base layer";
  auto index = nlohmann::json::parse(slurp(scratch_ / "out-a/index.json"));
  std::string manifest_digest = index["manifests"][0]["digest"];
  auto manifest = nlohmann::json::parse(slurp(scratch_ / "out-a/blobs/sha256" / manifest_digest.substr(7)));
  ASSERT_EQ(manifest["layers"].size(), 3u) << manifest.dump();
  EXPECT_GT(manifest["layers"][1]["size"].get<uint64_t>(), kSize);
  std::string layer = manifest["layers"][1]["digest"];
  EXPECT_EQ(run("sha256sum " + sh((scratch_ / "out-a/blobs/sha256" / layer.substr(7)).string())).out.substr(0, 64),
            layer.substr(7));
}

// A RUN, in the final stage or another, is stopped once its layer grows past twice the output limit while it
// runs (the limit itself is checked when it has ended): it no longer fills the disk until the build's timeout.
TEST_F(ContainerfileBuildTest, ARunThatKeepsWritingIsStoppedAtItsLine) {
  make_project(scratch_ / "a", "FROM " + base() +
                                   " AS scratchpad\nRUN truncate -s 0 /big && while true; do cat /bin/busybox >> "
                                   "/big; done\nFROM " +
                                   base() + "\nCOPY --from=scratchpad /bin/true /x\n");
  auto r = build(scratch_ / "a", scratch_ / "out-a", "--max-output-bytes 1048576 --timeout 30");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("Containerfile:2: "));
  EXPECT_THAT(r.out, HasSubstr("wrote more than 2097152 bytes to disk while it ran"));
  EXPECT_FALSE(std::filesystem::exists(scratch_ / "out-a"));
}

// ADD reads archives by normalize's rules: one that goes wrong part way (here: a damaged header after its first
// member) fails the build at its line, where it was extracted in part and the build succeeded; and one whose
// first member has a UTF-8 owner name libarchive cannot convert is extracted, where it was copied as one file.
TEST_F(ContainerfileBuildTest, AddExtractsArchivesWholeOrNotAtAll) {
  auto src = scratch_ / "src-a";
  std::filesystem::create_directories(src);
  auto made = run("python3 -c " +
                  sh("import io,sys,tarfile\n"
                     "def tar(owner):\n"
                     "  b=io.BytesIO(); t=tarfile.open(fileobj=b,mode='w',format=tarfile.PAX_FORMAT)\n"
                     "  for n in ('one','two'):\n"
                     "    i=tarfile.TarInfo(n); i.size=4096; i.uname=owner; t.addfile(i,io.BytesIO(b'x'*4096))\n"
                     "  t.close(); return b.getvalue()\n"
                     "open(sys.argv[1]+'/cut.tar','wb').write(tar('root')[:512*9]+b'garbage'.ljust(512,b'!'))\n"
                     "open(sys.argv[1]+'/owned.tar','wb').write(tar('j\\u00fcrgen'))\n") +
                  " " + sh(src.string()));
  ASSERT_EQ(made.exit_code, 0) << made.out;
  make_project(scratch_ / "a", "FROM " + base() + "\nADD cut.tar /x/\n");
  auto r = build(scratch_ / "a", scratch_ / "out-a");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("Containerfile:2:"));
  EXPECT_THAT(r.out, HasSubstr("ADD archive"));
  EXPECT_FALSE(std::filesystem::exists(scratch_ / "out-a"));

  auto src_b = scratch_ / "src-b";
  std::filesystem::create_directories(src_b);
  std::filesystem::copy_file(src / "owned.tar", src_b / "owned.tar");
  make_project(scratch_ / "b", "FROM " + base() + "\nADD owned.tar /x/\n");
  r = build(scratch_ / "b", scratch_ / "out-b", "--format oci");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto listed =
      run("for f in " + sh((scratch_ / "out-b/blobs/sha256").string()) + "/*; do tar -tzf \"$f\" 2>/dev/null; done");
  EXPECT_THAT(listed.out, HasSubstr("x/one\n"));
  EXPECT_THAT(listed.out, HasSubstr("x/two\n"));
}

// The build timeout covers the whole build, not only RUN: stages that copy a large tree again and again stop
// at it, naming the instruction they were at.
TEST_F(ContainerfileBuildTest, TheTimeoutCoversCopiesAsWellAsRuns) {
  auto src = scratch_ / "src-a";
  for (int i = 0; i < 300; ++i) write_text(src / "src/many" / (std::to_string(i) + ".txt"), std::to_string(i));
  std::string containerfile;
  for (int stage = 0; stage < 40; ++stage) {
    containerfile += "FROM " + base() + " AS s" + std::to_string(stage) + "\nCOPY src/ /a/\nCOPY src/ /b/\n";
  }
  make_project(scratch_ / "a", containerfile + "FROM " + base() + "\nCOPY --from=s0 /a /a\n");
  auto r = build(scratch_ / "a", scratch_ / "out", "--timeout 1");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("timed out (build timeout 1 s: quorate build --timeout, node build.timeout_seconds)"));
  EXPECT_THAT(r.out, HasSubstr("Containerfile:"));
  EXPECT_FALSE(std::filesystem::exists(scratch_ / "out"));

  make_project(scratch_ / "b", "FROM " + base() + "\nRUN sleep 30 & sleep 30\n");
  r = build(scratch_ / "b", scratch_ / "out-b", "--timeout 1");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("Containerfile:2: timed out (build timeout 1 s: quorate build --timeout, node "
                               "build.timeout_seconds) (all its processes were killed)"));
  EXPECT_FALSE(std::filesystem::exists(scratch_ / "out-b"));
}

TEST_F(ContainerfileBuildTest, FailingRunNamesTheLine) {
  make_project(scratch_ / "a", "FROM " + base() + "\nRUN true\nRUN echo oops && false\n");
  auto r = build(scratch_ / "a", scratch_ / "out");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("Containerfile:3"));
  EXPECT_THAT(r.out, HasSubstr("exited with status 1"));
  EXPECT_FALSE(std::filesystem::exists(scratch_ / "out"));
}

TEST_F(ContainerfileBuildTest, RunHasNoNetworkAndSeesEnvArgAndWorkdir) {
  make_project(scratch_ / "a",
               "FROM " + base() +
                   "\nARG A=from-arg\nENV B=from-env\nWORKDIR /w/x\n"
                   "RUN test \"$A $B $(pwd)\" = \"from-arg from-env /w/x\" && test ! -e /sys/class/net/eth0\n");
  auto r = build(scratch_ / "a", scratch_ / "out");
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

// ENV keeps Docker's order (a name set again is replaced in place) and `$X` sees ARGs under ENV, values from
// before the instruction. The lookups were rebuilt from the config's Env array for every instruction and the
// array scanned for every ENV pair: one ENV of 10,000 pairs then 10,000 USER lines took 27 s; now well inside
// the 10 s this build is given.
TEST_F(ContainerfileBuildTest, ManyEnvPairsAndInstructionsStayLinear) {
  make_project(scratch_ / "a",
               "FROM scratch AS a\nENV A=1 B=2\nARG B=arg\nARG E=arg\nENV C=$B F=$E\n"
               "FROM a\nENV A=3 D=$A\n");
  auto r = build(scratch_ / "a", scratch_ / "out");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(image_config(scratch_ / "out")["Env"], nlohmann::json({"A=3", "B=2", "C=2", "F=arg", "D=1"}));

  std::string text = "FROM scratch\nENV";
  for (int i = 0; i < 10'000; ++i) text += " v" + std::to_string(i) + "=1";
  text += "\n";
  for (int i = 0; i < 10'000; ++i) text += "USER a\n";
  text += "ENV v5000=2 last=$v9999\n";
  make_project(scratch_ / "b", text);
  auto many = build(scratch_ / "b", scratch_ / "out-many", "--timeout 10");
  ASSERT_EQ(many.exit_code, 0) << many.out;
  auto env = image_config(scratch_ / "out-many")["Env"];
  ASSERT_EQ(env.size(), 10'001u);
  EXPECT_EQ(env[5000], "v5000=2");
  EXPECT_EQ(env[10'000], "last=1");
}

// ENV and ARG inside a stage could double a value until the builder ran out of memory; one instruction's
// substitution stops at 1 MiB and a stage's variables together at 4 MiB, refused at the line (exit 2).
TEST_F(ContainerfileBuildTest, EnvAndArgDoublingIsRefusedAtItsLine) {
  std::string half = "FROM scratch\nENV A=" + std::string(16, 'a') + "\n";
  for (int i = 0; i < 15; ++i) half += "ENV A=$A$A\n";                                        // line 17 makes 512 KiB
  const std::string copies = "ARG B=$A\nARG C=$A\nENV D=$A\nARG E=$A\nENV F=$A\nARG G=$A\n";  // 3.5 MiB
  const std::vector<std::pair<std::string, std::string>> cases = {
      {half + "ENV A=$A$A\n", "Containerfile:18: substitution makes more than 1048576 bytes"},
      {half + "ARG B=$A$A\n", "Containerfile:18: substitution makes more than 1048576 bytes"},
      {half + "LABEL x=$A y=$A\n", "Containerfile:18: substitution makes more than 1048576 bytes"},
      {half + "COPY [\"$A\", \"$A\", \"/\"]\n", "Containerfile:18: substitution makes more than 1048576 bytes"},
      {half + copies + "ENV H=$A\n",
       "Containerfile:24: ENV H: the stage's ARG and ENV variables would hold 4194312 bytes, more than 4194304"},
  };
  int n = 0;
  for (const auto& [text, message] : cases) {
    auto repo = scratch_ / ("r" + std::to_string(n));
    auto out = scratch_ / ("o" + std::to_string(n++));
    make_project(repo, text);
    auto r = build(repo, out);
    EXPECT_EQ(r.exit_code, 2) << message << r.out.substr(0, 300);
    EXPECT_THAT(r.out.substr(0, 300), HasSubstr(message));
    EXPECT_FALSE(std::filesystem::exists(out)) << message;
  }
  make_project(scratch_ / "ok", half + copies + "LABEL x=$A\n");
  auto ok = build(scratch_ / "ok", scratch_ / "out-ok");
  ASSERT_EQ(ok.exit_code, 0) << ok.out.substr(0, 300);
  EXPECT_EQ(image_config(scratch_ / "out-ok")["Labels"]["x"].get<std::string>().size(), size_t{512} << 10);
}

// LABEL, VOLUME and ENV accumulate in the image config over lines, each line within 1 MiB and the variables
// within 4 MiB: 10,000 `LABEL kN=$A` lines made a 1 GB config. The config (its config section and history,
// canonical JSON) stops at 4 MiB, refused at the line that passes it (exit 2); a label set again is counted
// once.
TEST_F(ContainerfileBuildTest, AnImageConfigPastFourMiBIsRefusedAtItsLine) {
  std::string half = "FROM scratch\nENV A=" + std::string(16, 'a') + "\n";
  for (int i = 0; i < 15; ++i) half += "ENV A=$A$A\n";  // line 17 makes 512 KiB
  std::string labels, volumes;
  for (int i = 0; i < 10'000; ++i) labels += "LABEL k" + std::to_string(i) + "=$A\n";
  for (int i = 0; i < 10'000; ++i) volumes += "VOLUME /v" + std::to_string(i) + "$A\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {half + labels,
       "Containerfile:24: the image config would be 4196245 bytes of canonical JSON (its config and "
       "history), more than 4194304"},
      {half + volumes,
       "Containerfile:24: the image config would be 4196260 bytes of canonical JSON (its config and "
       "history), more than 4194304"},
  };
  int n = 0;
  for (const auto& [text, message] : cases) {
    auto repo = scratch_ / ("r" + std::to_string(n));
    auto out = scratch_ / ("o" + std::to_string(n++));
    make_project(repo, text);
    auto r = build(repo, out, "--timeout 60");
    EXPECT_EQ(r.exit_code, 2) << message << r.out.substr(0, 300);
    EXPECT_THAT(r.out.substr(0, 300), HasSubstr(message));
    EXPECT_FALSE(std::filesystem::exists(out)) << message;
  }
  std::string again = half;
  for (int i = 0; i < 100; ++i) again += "LABEL k=$A\n";
  make_project(scratch_ / "ok", again);
  auto ok = build(scratch_ / "ok", scratch_ / "out-ok");
  ASSERT_EQ(ok.exit_code, 0) << ok.out.substr(0, 300);
  EXPECT_EQ(image_config(scratch_ / "out-ok")["Labels"]["k"].get<std::string>().size(), size_t{512} << 10);
}

// Without --name, the final stage's LABEL org.opencontainers.image.ref.name=NAME[:TAG] names the image (ARG
// values reach it); --tag wins over its tag; with neither, exit 2 saying how to name it.
TEST_F(ContainerfileBuildTest, ImageNameAndTagFromALabel) {
  make_project(scratch_ / "a", "FROM " + base() +
                                   " AS build\nLABEL org.opencontainers.image.ref.name=example.org/not/this\n"
                                   "FROM " +
                                   base() +
                                   "\nARG V=v2\nLABEL org.opencontainers.image.ref.name=example.org/from/label:$V\n");
  auto bare = [&](const std::string& out, const std::string& extra) {
    return run(quorate::testing::quorate_bin() + " build --repo " + sh((scratch_ / "a").string()) +
               " --commit main -o " + sh((scratch_ / out).string()) + " --image-store " + sh(store_.string()) +
               " --work-dir " + sh((scratch_ / "work").string()) + " " + extra);
  };
  auto r = bare("out", "");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("example.org/from/label:v2"));
  auto index = nlohmann::json::parse(slurp(scratch_ / "out/index.json"));
  EXPECT_EQ(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "v2");
  auto tagged = bare("out-tagged", "--tag v3 --build-arg V=ignored");
  ASSERT_EQ(tagged.exit_code, 0) << tagged.out;
  EXPECT_THAT(tagged.out, HasSubstr("example.org/from/label:v3"));
  auto named = bare("out-named", "--name example.org/given");
  ASSERT_EQ(named.exit_code, 0) << named.out;
  EXPECT_THAT(named.out, HasSubstr("example.org/given:latest"));

  make_project(scratch_ / "b", "FROM " + base() + "\nLABEL other=1\n");
  auto unnamed = run(quorate::testing::quorate_bin() + " build --repo " + sh((scratch_ / "b").string()) +
                     " --commit main -o " + sh((scratch_ / "out-unnamed").string()) + " --image-store " +
                     sh(store_.string()) + " --work-dir " + sh((scratch_ / "work").string()));
  EXPECT_EQ(unnamed.exit_code, 2) << unnamed.out;
  EXPECT_THAT(unnamed.out, HasSubstr("pass --name NAME or set LABEL org.opencontainers.image.ref.name"));
  EXPECT_FALSE(std::filesystem::exists(scratch_ / "out-unnamed"));
}

TEST_F(ContainerfileBuildTest, WithoutRecipeFlagContainerfileIsFound) {
  make_project(scratch_ / "a", "FROM " + base() + "\nCOPY src/hello.txt /\n");
  auto r = build(scratch_ / "a", scratch_ / "out", "--json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("\"recipe_path\":\"Containerfile\""));
  // Nothing ran anywhere: copy-only builds count under run_environment = "pinned" as "none".
  EXPECT_THAT(r.out, HasSubstr("\"run_environment\":\"none\""));
  EXPECT_THAT(r.out, HasSubstr("\"sandbox\":\"none\""));
}

// examples/hello-containerfile: its builder stage assembles a root file system, the final FROM scratch stage
// copies it in; the builder image (BUILDER) is the busybox image made here, so the build stays offline.
TEST_F(ContainerfileBuildTest, HelloContainerfileExample) {
  auto repo = scratch_ / "hello";
  make_repo(example_dir("hello-containerfile"), repo);
  auto clone = scratch_ / "hello-clone";
  run("git clone -q " + sh(repo.string()) + " " + sh(clone.string()));
  const std::string builder = "--recipe Containerfile --build-arg BUILDER=" + base() + " ";
  auto first = build(repo, scratch_ / "out", builder + "--result-out " + sh((scratch_ / "result.json").string()),
                     "umask 022; TZ=UTC ");
  ASSERT_EQ(first.exit_code, 0) << first.out;
  auto second = build(clone, scratch_ / "out-clone", builder, "umask 077; TZ=Asia/Tokyo ");
  ASSERT_EQ(second.exit_code, 0) << second.out;
  EXPECT_EQ(digest_line(first.out), digest_line(second.out))
      << run(quorate::testing::quorate_bin() + " diff " + sh((scratch_ / "out").string()) + " " +
             sh((scratch_ / "out-clone").string()))
             .out;
  auto result = nlohmann::json::parse(slurp(scratch_ / "result.json"));
  EXPECT_EQ(result["build_args"], nlohmann::json({{"BUILDER", base()}}));
  EXPECT_EQ(result["run_environment"], "image");
  EXPECT_EQ(result["base_images"], nlohmann::json::array({{{"name", "example.org/busybox"}, {"digest", digest_}}}))
      << result["base_images"];

  auto unpack =
      run("umoci unpack --image " + sh((scratch_ / "out").string()) + ":latest " + sh((scratch_ / "bundle").string()));
  ASSERT_EQ(unpack.exit_code, 0) << unpack.out;
  auto rootfs = scratch_ / "bundle/rootfs";
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(rootfs)) {
    files.push_back(e.path().lexically_relative(rootfs).string());  // relative() would follow the symlinks
  }
  std::sort(files.begin(), files.end());
  // Only what the final stage copied: no /src, no builder applets beyond the two links made for it.
  EXPECT_EQ(files, (std::vector<std::string>{"bin", "bin/busybox", "bin/cat", "bin/sh", "etc", "etc/hello",
                                             "etc/hello/hello.conf", "usr", "usr/local", "usr/local/bin",
                                             "usr/local/bin/hello"}));
  EXPECT_EQ(std::filesystem::status(rootfs / "usr/local/bin/hello").permissions() & std::filesystem::perms::all,
            std::filesystem::perms(0755));
  auto config = nlohmann::json::parse(slurp(scratch_ / "bundle/config.json"));
  EXPECT_EQ(config["process"]["args"], nlohmann::json({"/usr/local/bin/hello", "/etc/hello/hello.conf"}));
  EXPECT_EQ(config["process"]["user"]["uid"], 65534);
  // The image works: its entrypoint prints the greeting (chroot into the unpacked root; no network).
  auto hello = run("chroot " + sh(rootfs.string()) + " /usr/local/bin/hello /etc/hello/hello.conf");
  EXPECT_EQ(hello.exit_code, 0) << hello.out;
  EXPECT_EQ(hello.out, slurp(example_dir("hello-containerfile") / "hello.conf"));

  // Without the builder image, FROM has nothing pinned: exit 2 naming the line, nothing written.
  auto unpinned = build(repo, scratch_ / "out-unpinned", "--recipe Containerfile");
  EXPECT_EQ(unpinned.exit_code, 2) << unpinned.out;
  EXPECT_THAT(unpinned.out, HasSubstr("Containerfile:7:"));
  EXPECT_FALSE(std::filesystem::exists(scratch_ / "out-unpinned"));
}

}  // namespace
}  // namespace quorate::builder
