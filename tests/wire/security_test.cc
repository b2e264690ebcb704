// CURVE key files and the rules for plain TCP endpoints.
#include "quorate/wire/security.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "quorate/core/file.h"

namespace quorate::wire {
namespace {

std::filesystem::path temp_dir() {
  auto dir = std::filesystem::temp_directory_path() /
             ("quorate-wire-" + std::to_string(::getpid()) + "-" +
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

TEST(Security, MalformedEndpointsAreUsageErrors) {
  EXPECT_EQ(check_endpoint("udp://127.0.0.1:1", Transport::kCurve, false).code(), Code::kUsage);
  EXPECT_EQ(check_endpoint("tcp://127.0.0.1", Transport::kCurve, false).code(), Code::kUsage);
}

}  // namespace
}  // namespace quorate::wire
