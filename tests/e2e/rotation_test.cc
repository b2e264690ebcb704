// Key rotation and revocation as docs/keys.md describes them, with node keys on a PKCS#11 token (SoftHSM2):
// the validity matrix of two keys over the periods of a rotation (offline, `quorate attest verify --roster`), and
// the drill on the network: `quorate node` signs with key 1, rotates to key 2 at T (roster updated, verifier
// restarted), key 1 is revoked at T2; votes of each period count or not, and no decision flips without a new vote.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <ctime>
#include <fstream>
#include <thread>

#include "process.h"
#include "quorate/core/time.h"
#include "support/test_util.h"
#include "tests/attest/softhsm.h"

namespace quorate::e2e {
namespace {

using quorate::testing::SoftHsm;

Ran q(const std::vector<std::string>& args, const std::filesystem::path& dir) {
  std::vector<std::string> argv = {quorate_bin()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, dir, std::chrono::seconds(150));
}

std::string roster_entry(const std::string& id, const std::string& pub, const std::string& extra = "") {
  return "\n[[nodes]]\nid = \"" + id + "\"\npublic_key = \"" + pub + "\"\n" + extra;
}

// Two keys of node-a on the token, their public keys written next to the roster.
struct TwoKeys {
  SoftHsm hsm{"rotation"};
  std::string uri1 = hsm.uri("node-a-1"), uri2 = hsm.uri("node-a-2");
  TwoKeys() {
    EXPECT_EQ(hsm.init().exit_code, 0) << hsm.init().out;
    for (auto [uri, type, pub] :
         {std::tuple{uri1, "ed25519", "key1.pub.pem"}, std::tuple{uri2, "p256", "key2.pub.pem"}}) {
      auto g = q({"key", "generate", "--pkcs11", uri, "--type", type}, hsm.dir());
      EXPECT_EQ(g.code, 0) << g.out << g.err;
      auto p = q({"key", "public", "--key", uri, "--out", (hsm.dir() / pub).string()}, hsm.dir());
      EXPECT_EQ(p.code, 0) << p.out << p.err;
    }
  }
};

// Each key signs a build result claimed at four times; the roster of a finished rotation (key 2 from June 1,
// key 1 until July 1, key 1 revoked June 15) judges each exactly as docs/keys.md says.
TEST(Rotation, ValidityOfEachPeriodThroughTheToken) {
  TwoKeys k;
  auto dir = k.hsm.dir();
  testing::spit(dir / "roster.toml",
                roster_entry("node-a", "key1.pub.pem",
                             "not_after = \"2026-07-01T00:00:00Z\"\nrevoked_at = \"2026-06-15T00:00:00Z\"\n") +
                    roster_entry("node-a", "key2.pub.pem", "not_before = \"2026-06-01T00:00:00Z\"\n"));
  auto result = nlohmann::json::parse(
      quorate::testing::slurp(quorate::testing::source_dir() / "tests/attest/testdata/build-result.json"));
  struct Case {
    const char* when;
    int key;
    const char* outcome;  // "" verified, else the failure printed
  } cases[] = {
      {"2026-05-01T00:00:00Z", 1, ""},               // before the rotation: the old key
      {"2026-05-01T00:00:00Z", 2, "not yet valid"},  // the new key before its not_before
      {"2026-06-05T00:00:00Z", 1, ""},               // the overlap: both
      {"2026-06-05T00:00:00Z", 2, ""},
      {"2026-06-15T00:00:00Z", 1, "revoked"},  // at revoked_at: void
      {"2026-06-20T00:00:00Z", 2, ""},
      {"2026-08-01T00:00:00Z", 1, "revoked"},  // revocation wins over expiry
      {"2026-08-01T00:00:00Z", 2, ""},
  };
  int n = 0;
  for (const auto& c : cases) {
    result["started_on"] = c.when;
    result["finished_on"] = c.when;
    auto rpath = dir / ("result-" + std::to_string(n) + ".json");
    auto att = dir / ("att-" + std::to_string(n++) + ".json");
    testing::spit(rpath, result.dump());
    auto s =
        q({"attest", "--key", c.key == 1 ? k.uri1 : k.uri2, "--node-id", "node-a", rpath.string(), "-o", att.string()},
          dir);
    ASSERT_EQ(s.code, 0) << s.out << s.err;
    auto v = q({"attest", "verify", att.string(), "--roster", (dir / "roster.toml").string()}, dir);
    std::string what = std::string(c.when) + " key " + std::to_string(c.key) + ": " + v.out + v.err;
    if (*c.outcome == 0) {
      EXPECT_EQ(v.code, 0) << what;
    } else {
      EXPECT_EQ(v.code, 1) << what;
      EXPECT_NE((v.out + v.err).find(c.outcome), std::string::npos) << what;
    }
  }
}

class Drill {
 public:
  TwoKeys keys;
  std::filesystem::path dir = keys.hsm.dir();
  std::filesystem::path repo = dir / "repo";
  int node_pub = free_port(), node_control = free_port(), v_pub = free_port(), v_query = free_port();
  std::unique_ptr<Process> node, verifier;
  int starts = 0;

  Drill() {
    std::filesystem::create_directories(repo);
    git({"init", "-q", "-b", "main"});
    testing::spit(dir / "quorum.toml",
                  "policy = \"policy.toml\"\ndata_dir = \"v-data\"\n[network]\ninsecure = true\npublish = \"" +
                      loopback(v_pub) + "\"\nquery = \"" + loopback(v_query) +
                      "\"\nhistory_timeout_ms = 500\n[[nodes]]\nid = \"node-a\"\npublish = \"" + loopback(node_pub) +
                      "\"\ncontrol = \"" + loopback(node_control) + "\"\n");
  }

  Ran git(std::vector<std::string> args) {
    std::vector<std::string> argv = testing::git_argv(repo, args);
    return run(argv, dir, std::chrono::seconds(60));
  }
  std::string commit(const std::string& text) {
    testing::spit(repo / "greeting.txt", text + "\n");
    testing::spit(repo / "quorate.toml",
                  "[image]\nname = \"example.org/greeting\"\n\n[[steps]]\ncopy = [\"greeting.txt\"]\nto = \"/app\"\n");
    EXPECT_EQ(git({"add", "."}).code, 0);
    EXPECT_EQ(git({"commit", "-q", "-m", text}).code, 0);
    return git({"rev-parse", "HEAD"}).out.substr(0, 40);
  }

  void policy(const std::string& key1_extra, bool with_key2, const std::string& key2_extra) {
    testing::spit(dir / "policy.toml", "threshold = 1\non_conflict = \"reject\"\n" +
                                           roster_entry("node-a", "key1.pub.pem", key1_extra) +
                                           (with_key2 ? roster_entry("node-a", "key2.pub.pem", key2_extra) : ""));
  }

  void start_node(const std::string& uri) {
    stop(node);
    testing::spit(dir / "node.toml", "node_id = \"node-a\"\ndata_dir = \"a-data\"\nsigning_key = \"" + uri +
                                         "\"\n[network]\ninsecure = true\npublish = \"" + loopback(node_pub) +
                                         "\"\ncontrol = \"" + loopback(node_control) +
                                         "\"\nheartbeat_interval_ms = 200\n[build]\nsandbox = \"none\"\n");
    node = std::make_unique<Process>(
        std::vector<std::string>{quorate_bin(), "node", "--config", (dir / "node.toml").string()}, dir / "node.out",
        dir / ("node." + std::to_string(starts++) + ".err"));
    ASSERT_TRUE(wait_until([&] { return node->err().find("node_started") != std::string::npos || !node->running(); },
                           std::chrono::seconds(30)));
    ASSERT_TRUE(node->running()) << node->err();
  }
  void start_verifier() {
    stop(verifier);
    verifier = std::make_unique<Process>(
        std::vector<std::string>{quorate_bin(), "quorum", "--config", (dir / "quorum.toml").string()}, dir / "v.out",
        dir / ("v." + std::to_string(starts++) + ".err"));
    ASSERT_TRUE(wait_until(
        [&] { return verifier->err().find("verifier_started") != std::string::npos || !verifier->running(); },
        std::chrono::seconds(30)));
    ASSERT_TRUE(verifier->running()) << verifier->err();
  }
  void stop(std::unique_ptr<Process>& p) {
    if (!p) return;
    p->signal(SIGTERM);
    EXPECT_EQ(p->wait(std::chrono::seconds(20)), 0);
    p.reset();
  }

  Ran submit(const std::string& c, bool wait) {
    std::vector<std::string> a = {
        "submit", "--repo", repo.string(),         "--commit", c, "--insecure", "--json", "--timeout",
        "120",    "--node", loopback(node_control)};
    if (wait) a.insert(a.end(), {"--wait", "--quorum", loopback(v_query)});
    return q(a, dir);
  }

  // The decision for commit `c` from the verifier's store under the current policy (verifier stopped).
  Ran verify(const std::string& c) {
    return q({"verify", "--policy", (dir / "policy.toml").string(), "--store", (dir / "v-data" / "store.db").string(),
              "--commit", c, "--json"},
             dir);
  }
  nlohmann::json decided(const std::string& c) {
    auto r = verify(c);
    auto line = r.out.substr(0, r.out.find('\n'));
    auto j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
    return j;
  }
};

void wait_past(int64_t t) {
  while (static_cast<int64_t>(std::time(nullptr)) <= t) std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

std::string keyid_of(const std::filesystem::path& pub, const std::filesystem::path& dir) {
  auto r = q({"key", "id", pub.string()}, dir);
  return r.out.substr(0, 64);
}

TEST(Rotation, DrillOnTheNetwork) {
  Drill d;
  std::string key1 = keyid_of(d.dir / "key1.pub.pem", d.dir), key2 = keyid_of(d.dir / "key2.pub.pem", d.dir);
  std::string c1 = d.commit("one"), c2 = d.commit("two"), c3 = d.commit("three");

  // Period 1: key 1 alone.
  d.policy("", false, "");
  d.start_verifier();
  d.start_node(d.keys.uri1);
  auto r1 = d.submit(c1, true);
  ASSERT_EQ(r1.code, 0) << r1.out << r1.err;
  auto j1 = nlohmann::json::parse(r1.out);
  ASSERT_TRUE(j1["decision"]["accepted"].get<bool>()) << r1.out;
  std::string digest1 = j1["decision"]["digest"];

  // Rotation at T: key 2 from T, key 1 until T + 1 day (the overlap); verifier and node restarted.
  int64_t t = static_cast<int64_t>(std::time(nullptr)) + 1;
  wait_past(t - 1);
  d.stop(d.verifier);
  EXPECT_EQ(d.decided(c1)["agreeing"][0]["keyid"], key1);
  d.policy("not_after = \"" + format_rfc3339(t + 86400) + "\"\n", true, "not_before = \"" + format_rfc3339(t) + "\"\n");
  auto before = d.decided(c1);
  EXPECT_TRUE(before["accepted"].get<bool>()) << before.dump();
  EXPECT_EQ(before["digest"], digest1) << "the old key's vote still counts after the rotation";
  d.start_verifier();
  d.start_node(d.keys.uri2);
  auto r2 = d.submit(c2, true);
  ASSERT_EQ(r2.code, 0) << r2.out << r2.err;
  auto j2 = nlohmann::json::parse(r2.out);
  ASSERT_TRUE(j2["decision"]["accepted"].get<bool>()) << r2.out;

  // Revocation of key 1 at T2 (after every vote above): its earlier vote still counts, nothing flips.
  int64_t t2 = static_cast<int64_t>(std::time(nullptr)) + 1;
  wait_past(t2 - 1);
  d.stop(d.verifier);
  EXPECT_EQ(d.decided(c2)["agreeing"][0]["keyid"], key2);
  d.policy("not_after = \"" + format_rfc3339(t + 86400) + "\"\nrevoked_at = \"" + format_rfc3339(t2) + "\"\n", true,
           "not_before = \"" + format_rfc3339(t) + "\"\n");
  auto c1_after = d.decided(c1), c2_after = d.decided(c2);
  EXPECT_TRUE(c1_after["accepted"].get<bool>()) << c1_after.dump();
  EXPECT_EQ(c1_after["digest"], digest1);
  EXPECT_TRUE(c2_after["accepted"].get<bool>()) << c2_after.dump();
  d.start_verifier();

  // Key 1 used after T2 (as a thief would): the verifier refuses the attestation; c3 is not accepted.
  wait_past(t2);
  d.start_node(d.keys.uri1);
  auto r3 = d.submit(c3, false);
  ASSERT_EQ(r3.code, 0) << r3.out << r3.err;
  ASSERT_TRUE(wait_until([&] { return d.verifier->err().find("attestation_rejected") != std::string::npos; },
                         std::chrono::seconds(90)))
      << d.verifier->err();
  EXPECT_NE(d.verifier->err().find("revoked"), std::string::npos) << d.verifier->err();
  d.stop(d.node);
  d.stop(d.verifier);
  auto c3_after = d.verify(c3);
  EXPECT_EQ(c3_after.code, 1) << c3_after.out << c3_after.err;
  EXPECT_EQ(c3_after.out.find("\"accepted\":true"), std::string::npos) << c3_after.out;
  // And the earlier decisions stand.
  EXPECT_TRUE(d.decided(c1)["accepted"].get<bool>());
  EXPECT_TRUE(d.decided(c2)["accepted"].get<bool>());
}

// `quorate node` whose token refuses the PIN: exit 2 with the reason, at once (no retry loop), PIN not printed.
TEST(Rotation, NodeWithARefusedPinExits2) {
  Drill d;
  std::string uri =
      "pkcs11:token=rotation;object=node-a-1?module-path=" + std::string(quorate::testing::kSoftHsmModule) +
      "&pin-value=0000";
  testing::spit(d.dir / "node.toml", "node_id = \"node-a\"\ndata_dir = \"a-data\"\nsigning_key = \"" + uri +
                                         "\"\n[network]\ninsecure = true\npublish = \"" + loopback(d.node_pub) +
                                         "\"\ncontrol = \"" + loopback(d.node_control) +
                                         "\"\n[build]\nsandbox = \"none\"\n");
  auto r = run({quorate_bin(), "node", "--config", (d.dir / "node.toml").string()}, d.dir, std::chrono::seconds(30));
  EXPECT_EQ(r.code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("PIN refused by token 'rotation'"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("pin-value=0000"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace quorate::e2e
