// Issue 11, item 15 (builder part): an image name with a newline or a NUL, or outside the OCI reference
// grammar, is refused wherever it comes in — a recipe, `quorate build --image-name`, a node's BuildRequest —
// before anything is built or attested, with a message naming the field.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>
#include <thread>

#include "hostile/builder_fixture.h"
#include "quorate/builder/reference.h"
#include "quorate/node/daemon.h"
#include "quorate/wire/socket.h"

namespace quorate::builder {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kNewlineAndNul = std::string("example.org/evil\nname\0x", 23);

TEST(ImageNameGrammar, AcceptsOciNames) {
  for (const char* name : {"hello", "example.org/quorate/hello", "localhost:5000/a/b", "a.b-c__d", "x/e_f.g",
                           "registry-1.docker.io/library/debian", "x/y--z"}) {
    EXPECT_TRUE(check_image_name(name, "name").ok()) << name << ": " << check_image_name(name, "name").to_string();
  }
  for (const char* tag : {"latest", "v1.2.3", "_x", "A-b.C"}) EXPECT_TRUE(check_image_tag(tag, "tag").ok()) << tag;
}

TEST(ImageNameGrammar, RefusesControlBytesAndOtherShapes) {
  for (const std::string& name : {kNewlineAndNul, std::string("a\tb"), std::string(""), std::string("Upper"),
                                  std::string("a//b"), std::string("/a"), std::string("a/"), std::string("a..b"),
                                  std::string("a b"), std::string("a:b"), std::string("-a"), std::string(300, 'a')}) {
    Status s = check_image_name(name, "image_name");
    EXPECT_FALSE(s.ok()) << quote_for_message(name);
    EXPECT_THAT(s.message(), HasSubstr("image_name"));
    EXPECT_EQ(s.message().find('\n'), std::string::npos) << "the message carries a raw newline";
    EXPECT_EQ(s.message().find('\0'), std::string::npos) << "the message carries a NUL";
  }
  for (const char* tag : {"", ".x", "-x", "a/b", "a:b", "a\nb"}) EXPECT_FALSE(check_image_tag(tag, "tag").ok()) << tag;
  EXPECT_FALSE(check_image_tag(std::string(129, 'a'), "tag").ok());
}

class ImageNameBuild : public hostile::HostileBuild {};

TEST_F(ImageNameBuild, OverrideWithNewlineAndNulIsRefusedBeforeBuilding) {
  auto commit = commit_recipe(hostile::run_recipe("echo x > \"$OUT/x\""));
  auto o = options(commit, Sandbox::kNone);
  o.image_name = kNewlineAndNul;
  auto r = build(o);
  ASSERT_FALSE(r.ok()) << "built and would attest an image named with a newline and a NUL";
  EXPECT_TRUE(r.status().is_bad_input()) << r.status().to_string();
  EXPECT_THAT(r.status().message(), HasSubstr("image name override (--image-name, BuildRequest.image_name)"));
  EXPECT_FALSE(std::filesystem::exists(o.output));
}

TEST_F(ImageNameBuild, RecipeNameAndTagAreChecked) {
  auto commit = commit_recipe("[image]\nname = \"Example.org/UPPER case\"\n\n[[steps]]\nrun = \"true\"\n");
  auto r = build(options(commit, Sandbox::kNone));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("quorate.toml:2: 'image.name' is invalid"));
  commit = commit_recipe("[image]\nname = \"example.org/x\"\ntag = \"v1\\nv2\"\n\n[[steps]]\nrun = \"true\"\n");
  r = build(options(commit, Sandbox::kNone));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("'image.tag' is invalid"));
  EXPECT_THAT(r.status().message(), HasSubstr("\\n"));
}

TEST_F(ImageNameBuild, CliExitsTwoNamingTheFlag) {
  auto commit = commit_recipe(hostile::run_recipe("echo x > \"$OUT/x\""));
  auto out = scratch_ / "cli-out";
  auto r = quorate::testing::run(
      quorate::testing::quorate_bin() + " build -q --no-sandbox --repo " + quorate::testing::sh(repo_.string()) +
      " --commit " + commit + " -o " + quorate::testing::sh(out.string()) + " --work-dir " +
      quorate::testing::sh((scratch_ / "w").string()) + " --image-name \"$(printf 'a\\nb')\"");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("--image-name"));
  EXPECT_FALSE(std::filesystem::exists(out));
}

// A node given such a request rejects it instead of building and attesting it.
class AttestAnything : public node::Rebuilder {
 public:
  Result<node::RebuildOutput> rebuild(const wire::RebuildRequest& r, const std::atomic<bool>&) override {
    return node::RebuildOutput{"envelope-for-" + r.request_id, "sha256:" + std::string(64, 'a')};
  }
};

TEST(ImageNameNode, BuildRequestWithNewlineAndNulIsRejectedNamingTheField) {
  quorate::testing::ScratchDir dir;
  node::NodeConfig config;
  config.node_id = "node-hostile";
  config.data_dir = dir / "node";
  config.transport.insecure = true;
  config.heartbeat_interval_ms = 100;
  std::ostringstream log_text;
  wire::EventLog log{log_text, [] { return int64_t{0}; }, "node"};
  auto daemon = node::NodeDaemon::open(config, std::make_unique<AttestAnything>(), log, {});
  ASSERT_TRUE(daemon.ok()) << daemon.status().to_string();
  std::atomic<bool> stop{false};
  std::thread thread([&] { EXPECT_TRUE((*daemon)->run(stop).ok()); });

  auto ctx = wire::Context::create().value();
  wire::ClientSecurity security;
  security.transport = wire::Transport::kInsecure;
  auto dealer = wire::Socket::client(*ctx, wire::SocketType::kDealer, security).value();
  ASSERT_TRUE(dealer.connect((*daemon)->control_endpoint()).ok());
  wire::pb::BuildRequest request;
  request.set_request_id("evil-name");
  request.set_repo("file:///repo");
  request.set_commit("c1");
  request.set_image_name(kNewlineAndNul);
  ASSERT_TRUE(dealer.send({wire::encode_frame(wire::MessageType::kBuildRequest, request)}).ok());
  auto got = dealer.recv(5000);
  wire::pb::JobStatus reply;
  bool answered = got.ok() && got->has_value() &&
                  wire::decode_message((**got)[0], wire::MessageType::kJobStatus, wire::Limits{}, reply).ok();
  stop = true;
  thread.join();
  ASSERT_TRUE(answered) << "no reply from the node";
  EXPECT_EQ(reply.state(), wire::pb::JobStatus::REJECTED) << wire::pb::JobStatus::State_Name(reply.state());
  EXPECT_THAT(reply.message(), HasSubstr("image_name"));
}

}  // namespace
}  // namespace quorate::builder
