// A node whose signing key is on a PKCS#11 token (SoftHSM2): its real Rebuilder (builder + token signer) attests
// builds, keeps signing after the token's sessions are closed under it or the module is finalized (as when it is
// reloaded), and refuses to start on a PIN the token refuses.
#include <gtest/gtest.h>

#include <atomic>

#include "quorate/attest/pkcs11.h"
#include "quorate/attest/roster.h"
#include "quorate/node/builder_rebuilder.h"
#include "quorate/node/config.h"
#include "quorate/wire/request.h"
#include "support/test_util.h"
#include "tests/attest/softhsm.h"

namespace quorate::node {
namespace {

using quorate::testing::run;
using quorate::testing::sh;
using quorate::testing::SoftHsm;
using quorate::testing::spit;

struct TokenNode {
  SoftHsm hsm{"node-token"};
  std::filesystem::path repo = hsm.dir() / "repo";
  std::string commit;

  TokenNode() {
    std::filesystem::create_directories(repo);
    std::string git = "cd " + sh(repo.string()) +
                      " && export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.org GIT_COMMITTER_NAME=t "
                      "GIT_COMMITTER_EMAIL=t@example.org GIT_AUTHOR_DATE=2026-01-01T00:00:00Z "
                      "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z && ";
    spit(repo / "greeting.txt", "hello from a token\n");
    spit(repo / "quorate.toml",
         "[image]\nname = \"example.org/greeting\"\n\n[[steps]]\ncopy = [\"greeting.txt\"]\nto = \"/app\"\n");
    auto r = run(git + "git init -q -b main && git add . && git commit -q -m first && git rev-parse HEAD");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    commit = r.out.substr(0, 40);
  }

  Result<NodeConfig> config(const std::string& uri) {
    auto path = hsm.dir() / "node.toml";
    spit(path,
         "node_id = \"node-a\"\ndata_dir = \"data\"\nsigning_key = \"" + uri + "\"\n[build]\nsandbox = \"none\"\n");
    return load_node_config(path);
  }

  wire::RebuildRequest request(const std::string& id) {
    wire::RebuildRequest r;
    r.request_id = id;
    r.repo = repo.string();
    r.commit = commit;
    return wire::normalize_request(r).value();
  }
};

TEST(Pkcs11Node, AttestsAndSurvivesClosedSessionsAndAReloadedModule) {
  TokenNode t;
  ASSERT_EQ(t.hsm.init().exit_code, 0) << t.hsm.init().out;
  auto uri = t.hsm.uri("node-a");
  auto gen = run(sh(quorate::testing::quorate_bin()) + " key generate --pkcs11 " + sh(uri) + " --type p256");
  ASSERT_EQ(gen.exit_code, 0) << gen.out;
  auto pub = attest::pkcs11_public_key(uri).value();
  auto config = t.config(uri);
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  EXPECT_EQ(config->signing_key.string(), uri) << "a URI is not resolved as a path";
  auto rb = make_builder_rebuilder(
      *config, [] { return int64_t{1767225600000}; }, [](const std::string&) { return std::string(); });
  ASSERT_TRUE(rb.ok()) << rb.status().to_string();
  std::atomic<bool> cancel{false};

  auto check = [&](const std::string& id) {
    auto out = (*rb)->rebuild(t.request(id), cancel);
    ASSERT_TRUE(out.ok()) << id << ": " << out.status().to_string();
    auto v = attest::verify_with_key(out->envelope, pub);
    EXPECT_TRUE(v.ok()) << id << ": " << v.status.to_string();
    EXPECT_EQ(v.attestation->keyid, pub.keyid());
    EXPECT_EQ(v.attestation->statement.builder_id, "node-a");
  };
  check("job-1");
  auto* f = quorate::testing::softhsm_functions();
  ASSERT_NE(f, nullptr);
  long slot = quorate::testing::softhsm_slot(f, t.hsm.label());
  ASSERT_GE(slot, 0);
  ASSERT_EQ(f->C_CloseAllSessions(static_cast<CK_SLOT_ID>(slot)), CKR_OK);
  check("job-2");
  ASSERT_EQ(f->C_Finalize(nullptr), CKR_OK);
  check("job-3");
}

TEST(Pkcs11Node, ARefusedPinStopsTheNodeFromStarting) {
  TokenNode t;
  ASSERT_EQ(t.hsm.init().exit_code, 0) << t.hsm.init().out;
  auto uri = t.hsm.uri("node-a");
  ASSERT_EQ(
      run(sh(quorate::testing::quorate_bin()) + " key generate --pkcs11 " + sh(uri) + " --type ed25519").exit_code, 0);
  auto config =
      t.config("pkcs11:token=node-token;object=node-a?module-path=" + std::string(quorate::testing::kSoftHsmModule) +
               "&pin-value=0000");
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  auto rb = make_builder_rebuilder(
      *config, [] { return int64_t{0}; }, [](const std::string&) { return std::string(); });
  ASSERT_FALSE(rb.ok());
  EXPECT_EQ(rb.status().code(), Code::kBadInput);
  EXPECT_NE(rb.status().message().find("PIN refused"), std::string::npos) << rb.status().message();
  EXPECT_EQ(rb.status().message().find("0000"), std::string::npos) << "the PIN is never printed";
}

// `quorate build --attest URI`: the same signing path from the command line; the URI needs --node-id.
TEST(Pkcs11Node, BuildAttestsThroughTheToken) {
  TokenNode t;
  ASSERT_EQ(t.hsm.init().exit_code, 0) << t.hsm.init().out;
  auto uri = t.hsm.uri("node-a");
  std::string q = sh(quorate::testing::quorate_bin());
  ASSERT_EQ(run(q + " key generate --pkcs11 " + sh(uri) + " --type ed25519").exit_code, 0);
  auto pub = attest::pkcs11_public_key(uri).value();
  std::string build = q + " build -q --no-sandbox --repo " + sh(t.repo.string()) + " --commit " + t.commit +
                      " --image-store " + sh((t.hsm.dir() / "images").string()) + " --attest " + sh(uri);
  auto no_id = run(build + " -o " + sh((t.hsm.dir() / "out0").string()));
  EXPECT_EQ(no_id.exit_code, 2) << no_id.out;
  EXPECT_NE(no_id.out.find("--node-id is required with a pkcs11: key"), std::string::npos) << no_id.out;
  auto r = run(build + " --node-id node-a -o " + sh((t.hsm.dir() / "out").string()));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto v = attest::verify_with_key(quorate::testing::slurp(t.hsm.dir() / "out.att.json"), pub);
  EXPECT_TRUE(v.ok()) << v.status.to_string();
  EXPECT_EQ(v.attestation->statement.builder_id, "node-a");
}

}  // namespace
}  // namespace quorate::node
