// `quorate roster check` and attest::check_roster: each node's keys and windows, and the three warnings (no valid
// key now, a key ending within --within, one key under two node ids), from a roster or a policy naming one.
#include "quorate/attest/roster.h"

#include "tests/attest/fixtures.h"

namespace quorate::attest {
namespace {

using quorate::testing::quorate_bin;
using quorate::testing::run;
using quorate::testing::ScratchDir;
using quorate::testing::sh;
using quorate::testing::spit;

std::string entry(const std::string& id, const std::string& pub, const std::string& extra = "") {
  return "[[nodes]]\nid = \"" + id + "\"\npublic_key = \"" + pub + "\"\n" + extra + "\n";
}

struct Keys {
  ScratchDir dir;
  Keys() {
    for (const char* k : {"k1", "k2", "k3", "k4"}) {
      EXPECT_TRUE(write_key_pair(dir / k, generate_key(KeyType::kEd25519).value()).ok());
    }
  }
  std::string pub(const std::string& k) { return k + ".pub.pem"; }
  std::string keyid(const std::string& k) { return PublicKey::load(dir / pub(k)).value().keyid(); }
};

// A new key under a look-alike node id reads as a rotation of node-a's key in a review of the roster, and is a
// second voter: roster check warns of an id holding a byte outside printable ASCII, and of ids that differ only
// in case. It said "ok" (exit 0).
TEST(RosterCheck, WarnsOfNodeIdsThatReadAlike) {
  Keys k;
  spit(k.dir / "roster.toml", entry("node-a", k.pub("k1")) +
                                  entry("n\xd0\xbe"
                                        "de-a",
                                        k.pub("k2")) +
                                  entry("Node-B", k.pub("k3")) + entry("node-b", k.pub("k4")));
  auto r =
      run(sh(quorate_bin()) + " roster check " + sh(k.dir / "roster.toml") + " --now 2026-06-01T00:00:00Z --within 1d");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("warning: node id 'n\xd0\xbe"
                       "de-a' holds a byte outside printable ASCII (0xd0 at offset 1)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("warning: node ids 'Node-B', 'node-b' differ only in case"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("'node-a' holds"), std::string::npos) << r.out;
}

TEST(RosterCheck, WarnsOfNoValidKeyExpiringKeysAndSharedKeys) {
  Keys k;
  // At 2026-06-01: node-a rotates (k1 until June 20, k2 from June 10), node-b's only key expired in May,
  // k4 is listed under node-c and node-d.
  spit(k.dir / "roster.toml", entry("node-a", k.pub("k1"), "not_after = \"2026-06-20T00:00:00Z\"") +
                                  entry("node-a", k.pub("k2"), "not_before = \"2026-06-10T00:00:00Z\"") +
                                  entry("node-b", k.pub("k3"), "not_after = \"2026-05-01T00:00:00Z\"") +
                                  entry("node-c", k.pub("k4")) + entry("node-d", k.pub("k4")));
  auto r = run(sh(quorate_bin()) + " roster check " + sh(k.dir / "roster.toml") +
               " --now 2026-06-01T00:00:00Z --within 30d");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("node-a  " + k.keyid("k1") + "  ed25519  valid not_after=2026-06-20T00:00:00Z"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("node-a  " + k.keyid("k2") + "  ed25519  not yet valid not_before=2026-06-10T00:00:00Z"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("node-b  " + k.keyid("k3") + "  ed25519  expired"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("warning: node 'node-a': key " + k.keyid("k1") + " stops being valid at 2026-06-20T00:00:00Z"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("warning: node 'node-b' has no key valid at 2026-06-01T00:00:00Z"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("warning: key " + k.keyid("k4") + " is listed under node ids 'node-c', 'node-d'"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("node 'node-a' has no key"), std::string::npos) << r.out;

  // A shorter horizon: node-a's key no longer warns; the other two warnings remain.
  auto shorter =
      run(sh(quorate_bin()) + " roster check " + sh(k.dir / "roster.toml") + " --now 2026-06-01T00:00:00Z --within 7d");
  EXPECT_EQ(shorter.out.find("stops being valid"), std::string::npos) << shorter.out;
  EXPECT_EQ(shorter.exit_code, 1);
}

TEST(RosterCheck, RevokedKeyUnderAnyIdAndAPolicyNamingItsRoster) {
  Keys k;
  spit(k.dir / "roster.toml",
       entry("node-a", k.pub("k1"), "revoked_at = \"2026-05-01T00:00:00Z\"") + entry("node-b", k.pub("k2")));
  spit(k.dir / "policy.toml", "threshold = 1\nroster = \"roster.toml\"\n" + entry("node-c", k.pub("k3")));
  auto r = run(sh(quorate_bin()) + " roster check " + sh(k.dir / "policy.toml") + " --now 2026-06-01T00:00:00Z");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("node-a  " + k.keyid("k1") + "  ed25519  revoked revoked_at=2026-05-01T00:00:00Z"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("node 'node-a' has no key valid"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("node-c  " + k.keyid("k3") + "  ed25519  valid"), std::string::npos) << r.out;
  // All good: exit 0.
  spit(k.dir / "good.toml",
       entry("node-a", k.pub("k1")) + entry("node-b", k.pub("k2"), "not_after = \"2027-01-01T00:00:00Z\""));
  auto ok = run(sh(quorate_bin()) + " roster check " + sh(k.dir / "good.toml") + " --now 2026-06-01T00:00:00Z");
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_EQ(run(sh(quorate_bin()) + " roster check " + sh(k.dir / "missing.toml")).exit_code, 2);
}

TEST(RosterCheck, LibraryAgreesWithKeyValidity) {
  Keys k;
  auto key = PublicKey::load(k.dir / k.pub("k1")).value();
  // The same key revoked under one id is revoked under the other too (the one rule).
  std::vector<RosterEntry> entries = {{"node-a", key, {}, {}, int64_t{100}}, {"node-b", key, {}, {}, {}}};
  auto c = check_roster(entries, 200, 0);
  ASSERT_EQ(c.lines.size(), 2u);
  EXPECT_NE(c.lines[1].find("node-b  " + key.keyid() + "  ed25519  revoked"), std::string::npos) << c.lines[1];
  EXPECT_EQ(c.warnings.size(), 3u);  // node-a and node-b without a valid key, the shared key
}

}  // namespace
}  // namespace quorate::attest
