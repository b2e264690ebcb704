// The node's real Rebuilder signs as node.toml says (issue 18): `builder_id` becomes runDetails.builder.id (the
// node id rides beside it, in builder.version); without it the default URI of the node id is used.
#include <gtest/gtest.h>

#include <atomic>

#include "quorate/attest/dsse.h"
#include "quorate/attest/keys.h"
#include "quorate/attest/statement.h"
#include "quorate/node/builder_rebuilder.h"
#include "quorate/node/config.h"
#include "quorate/wire/request.h"
#include "support/test_util.h"

namespace quorate::node {
namespace {

using quorate::testing::run;
using quorate::testing::ScratchDir;
using quorate::testing::sh;
using quorate::testing::spit;

constexpr const char* kCopyOnly =
    "[image]\nname = \"example.org/greeting\"\n\n[[steps]]\ncopy = [\"greeting.txt\"]\nto = \"/app\"\n";

// What a Rebuilder configured by `node_toml` returns for a build of a one-file repository with `recipe`.
Result<RebuildOutput> built_with(const std::string& node_toml, const std::string& recipe = kCopyOnly) {
  ScratchDir dir;
  spit(dir / "repo/greeting.txt", "hello\n");
  spit(dir / "repo/quorate.toml", recipe);
  auto git = run("cd " + sh((dir / "repo").string()) +
                 " && export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.org GIT_COMMITTER_NAME=t "
                 "GIT_COMMITTER_EMAIL=t@example.org GIT_AUTHOR_DATE=2026-01-01T00:00:00Z "
                 "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z && git init -q -b main && git add . && "
                 "git commit -q -m first");
  EXPECT_EQ(git.exit_code, 0) << git.out;
  EXPECT_TRUE(
      attest::write_key_pair(dir / "node-a.key.pem", attest::generate_key(attest::KeyType::kEd25519).value()).ok());
  spit(dir / "node.toml", node_toml +
                              "data_dir = \"data\"\nsigning_key = \"node-a.key.pem\"\n"
                              "[build]\nsandbox = \"none\"\n");
  auto config = QR_TRY(load_node_config(dir / "node.toml"));
  auto rebuilder = QR_TRY(make_builder_rebuilder(
      config, [] { return int64_t{1767225600000}; }, [](const std::string&) { return std::string(); }));
  wire::RebuildRequest r;
  r.request_id = "greeting-1";
  r.repo = (dir / "repo").string();
  r.commit = "main";
  auto request = QR_TRY(wire::normalize_request(r));
  std::atomic<bool> cancel{false};
  return rebuilder->rebuild(request, cancel);
}

// The statement it signs for the copy-only build.
Result<attest::Statement> statement_built_with(const std::string& node_toml) {
  auto out = QR_TRY(built_with(node_toml));
  auto envelope = QR_TRY(attest::parse_envelope(out.envelope));
  return attest::parse_statement(envelope.payload);
}

TEST(BuilderRebuilder, BuilderIdFromNodeTomlIsRunDetailsBuilderId) {
  auto s = statement_built_with("node_id = \"node-a\"\nbuilder_id = \"https://builders.example.org/a\"\n");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->builder_uri, "https://builders.example.org/a");
  EXPECT_EQ(s->builder_id, "node-a");
}

TEST(BuilderRebuilder, WithoutBuilderIdTheNodeIdsDefaultUriIsUsed) {
  auto s = statement_built_with("node_id = \"node-a\"\n");
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->builder_uri, attest::default_builder_uri("node-a"));
  EXPECT_EQ(s->builder_id, "node-a");
}

// A [build] tool without a version where the steps run is recorded empty and named in a warning the node logs
// (what `quorate build` prints on stderr): the build itself succeeds.
TEST(BuilderRebuilder, AToolWithoutAVersionComesBackAsAWarning) {
  auto missing =
      built_with("node_id = \"node-a\"\n",
                 "[image]\nname = \"example.org/greeting\"\n\n[build]\ntools = [\"no-such-tool-q7\", \"cp\"]\n\n"
                 "[[steps]]\nrun = \"cp greeting.txt \\\"$OUT/\\\"\"\nto = \"/app\"\n");
  ASSERT_TRUE(missing.ok()) << missing.status().to_string();
  ASSERT_EQ(missing->warnings.size(), 1u);
  EXPECT_EQ(missing->warnings[0],
            "[build] tools: `no-such-tool-q7 --version` failed or printed nothing where the steps run (the host): is "
            "no-such-tool-q7 there? It is recorded with an empty version");
  auto fine = built_with("node_id = \"node-a\"\n");
  ASSERT_TRUE(fine.ok()) << fine.status().to_string();
  EXPECT_TRUE(fine->warnings.empty());
}

}  // namespace
}  // namespace quorate::node
