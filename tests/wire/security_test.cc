// CURVE key files and the rules for plain TCP endpoints.
#include "quorate/wire/security.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "quorate/core/file.h"
#include "support/test_util.h"

namespace quorate::wire {
namespace {

std::filesystem::path temp_dir() {
  auto dir = std::filesystem::temp_directory_path() / ("quorate-wire-" + std::to_string(::getpid()) + "-" +
                                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(Security, GeneratedKeysAreZ85AndDistinct) {
  auto a = generate_curve_keypair();
  auto b = generate_curve_keypair();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(check_z85_key(a->public_z85).ok());
  EXPECT_TRUE(check_z85_key(a->secret_z85).ok());
  EXPECT_NE(a->public_z85, b->public_z85);
}

TEST(Security, BadZ85KeysAreRejected) {
  EXPECT_TRUE(check_z85_key("short").is_bad_input());
  EXPECT_TRUE(check_z85_key(std::string(40, '~')).is_bad_input());
}

TEST(Security, KeyFilesRoundTripAndSecretIsPrivate) {
  auto dir = temp_dir();
  auto keys = generate_curve_keypair();
  ASSERT_TRUE(keys.ok());
  ASSERT_TRUE(write_curve_keypair(*keys, dir / "node").ok());
  struct stat st {};
  ASSERT_EQ(::stat((dir / "node.curve.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto secret = read_curve_secret_key(dir / "node.curve.key");
  ASSERT_TRUE(secret.ok()) << secret.status().to_string();
  EXPECT_EQ(secret->public_z85, keys->public_z85) << "public key derived from the secret";
  auto pub = read_curve_public_key(dir / "node.curve.pub");
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(*pub, keys->public_z85);
  auto resolved = resolve_curve_public_key("node.curve.pub", dir);
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(*resolved, keys->public_z85);
  EXPECT_EQ(*resolve_curve_public_key(keys->public_z85, dir), keys->public_z85);
  std::filesystem::remove_all(dir);
}

TEST(Security, WorldReadableSecretKeyIsRefused) {
  auto dir = temp_dir();
  auto keys = generate_curve_keypair();
  ASSERT_TRUE(write_curve_keypair(*keys, dir / "k").ok());
  ::chmod((dir / "k.curve.key").c_str(), 0644);
  auto secret = read_curve_secret_key(dir / "k.curve.key");
  EXPECT_TRUE(secret.status().is_bad_input());
  EXPECT_NE(secret.status().message().find("chmod 600"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// A config names its CURVE public key files (`allowed_clients`, `curve_public_key`, `server_key`): a FIFO there
// held the daemon's start until someone wrote into it.
TEST(Security, APublicKeyPathThatIsNotARegularFileIsRefusedUnopened) {
  auto dir = temp_dir();
  ASSERT_EQ(::mkfifo((dir / "peer.curve.pub").c_str(), 0644), 0);
  auto key = quorate::testing::without_waiting_on_fifo(dir / "peer.curve.pub",
                                                       [&] { return resolve_curve_public_key("peer.curve.pub", dir); });
  EXPECT_TRUE(key.status().is_bad_input()) << (key.ok() ? "ok" : key.status().to_string());
  EXPECT_NE(key.status().message().find("peer.curve.pub is not a regular file (a FIFO)"), std::string::npos)
      << key.status().to_string();
  std::filesystem::remove_all(dir);
}

TEST(Security, InsecureIsLoopbackOnlyUnlessAllowed) {
  EXPECT_TRUE(check_endpoint("tcp://127.0.0.1:*", Transport::kInsecure, false).ok());
  EXPECT_TRUE(check_endpoint("tcp://localhost:5555", Transport::kInsecure, false).ok());
  EXPECT_TRUE(check_endpoint("tcp://[::1]:5555", Transport::kInsecure, false).ok());
  EXPECT_TRUE(check_endpoint("ipc:///tmp/x", Transport::kInsecure, false).ok());
  EXPECT_EQ(check_endpoint("tcp://0.0.0.0:5555", Transport::kInsecure, false).code(), Code::kUsage);
  EXPECT_EQ(check_endpoint("tcp://*:5555", Transport::kInsecure, false).code(), Code::kUsage);
  EXPECT_EQ(check_endpoint("tcp://10.1.2.3:5555", Transport::kInsecure, false).code(), Code::kUsage);
  EXPECT_TRUE(check_endpoint("tcp://0.0.0.0:5555", Transport::kInsecure, true).ok());
  EXPECT_TRUE(check_endpoint("tcp://0.0.0.0:5555", Transport::kCurve, false).ok());
}

// Issue 18: "loopback" was a string-prefix test, so tcp://127.attacker.example:PORT passed. Names are
// resolved and every address must be in 127.0.0.0/8 or ::1; the socket then uses the judged address.
TEST(Security, LoopbackIsJudgedByAddressNotSpelling) {
  // Names spelled like loopback addresses are DNS names: here they do not resolve (or, on a networked
  // machine, resolve off loopback); both are refused.
  for (const char* e : {"tcp://127.attacker.example:7602", "tcp://127.0.0.1.attacker.example:7602",
                        "tcp://localhost.attacker.example:7602", "tcp://[::1.attacker.example]:7602"}) {
    auto s = check_endpoint(e, Transport::kInsecure, false);
    EXPECT_EQ(s.code(), Code::kUsage) << e;
    EXPECT_NE(s.message().find("loopback only"), std::string::npos) << s.message();
    EXPECT_FALSE(is_loopback_endpoint(e)) << e;
  }
  // A resolver that answers as an attacker's DNS server would.
  Resolver attacker = [](const std::string& host) -> std::vector<std::string> {
    if (host == "127.attacker.example") return {"203.0.113.7"};
    if (host == "mixed.example") return {"127.0.0.1", "198.51.100.2"};
    if (host == "v6.example") return {"2001:db8::1"};
    if (host == "mapped.example") return {"::ffff:127.0.0.9"};
    if (host == "loop.example") return {"::1", "127.0.0.5"};
    return {};
  };
  auto r = checked_endpoint("tcp://127.attacker.example:7602", Transport::kInsecure, false, attacker);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("resolved to 203.0.113.7"), std::string::npos) << r.status().message();
  EXPECT_FALSE(checked_endpoint("tcp://mixed.example:1", Transport::kInsecure, false, attacker).ok());
  EXPECT_FALSE(checked_endpoint("tcp://v6.example:1", Transport::kInsecure, false, attacker).ok());
  EXPECT_FALSE(checked_endpoint("tcp://unknown.example:1", Transport::kInsecure, false, attacker).ok());
  // Names resolving only to loopback are accepted, and the endpoint to use carries the judged address.
  auto mapped = checked_endpoint("tcp://mapped.example:9", Transport::kInsecure, false, attacker);
  ASSERT_TRUE(mapped.ok()) << mapped.status().message();
  EXPECT_EQ(*mapped, "tcp://[::ffff:127.0.0.9]:9");
  auto loop = checked_endpoint("tcp://loop.example:9", Transport::kInsecure, false, attacker);
  ASSERT_TRUE(loop.ok());
  EXPECT_EQ(*loop, "tcp://127.0.0.5:9");  // IPv4 preferred
  // Real loopback spellings, and the real resolver's answer for localhost.
  auto local = checked_endpoint("tcp://localhost:5555", Transport::kInsecure, false);
  ASSERT_TRUE(local.ok()) << local.status().message();
  EXPECT_TRUE(local->starts_with("tcp://127.") || *local == "tcp://[::1]:5555") << *local;
  EXPECT_EQ(*checked_endpoint("tcp://127.8.9.10:1", Transport::kInsecure, false), "tcp://127.8.9.10:1");
  EXPECT_EQ(*checked_endpoint("tcp://[::1]:1", Transport::kInsecure, false), "tcp://[::1]:1");
  EXPECT_EQ(*checked_endpoint("tcp://127.0.0.1:*", Transport::kInsecure, false), "tcp://127.0.0.1:*");
  EXPECT_EQ(*checked_endpoint("tcp://eth0;127.0.0.1:4", Transport::kInsecure, false), "tcp://eth0;127.0.0.1:4");
  EXPECT_FALSE(checked_endpoint("tcp://127.0.0.1;10.0.0.1:4", Transport::kInsecure, false).ok());
  EXPECT_FALSE(checked_endpoint("tcp://[::2]:4", Transport::kInsecure, false).ok());
  EXPECT_FALSE(checked_endpoint("tcp://128.0.0.1:4", Transport::kInsecure, false).ok());
  // Under CURVE, or with insecure remote allowed, the endpoint is used as given (no lookup).
  EXPECT_EQ(*checked_endpoint("tcp://127.attacker.example:7602", Transport::kCurve, false, attacker),
            "tcp://127.attacker.example:7602");
  EXPECT_EQ(*checked_endpoint("tcp://127.attacker.example:7602", Transport::kInsecure, true, attacker),
            "tcp://127.attacker.example:7602");
}

TEST(Security, MalformedEndpointsAreUsageErrors) {
  EXPECT_EQ(check_endpoint("udp://127.0.0.1:1", Transport::kCurve, false).code(), Code::kUsage);
  EXPECT_EQ(check_endpoint("tcp://127.0.0.1", Transport::kCurve, false).code(), Code::kUsage);
}

}  // namespace
}  // namespace quorate::wire
