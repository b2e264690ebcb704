// SHA-256 and digest strings.
#include "quorate/core/sha256.h"

#include <gtest/gtest.h>

namespace quorate {
namespace {

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_digest("abc"), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, IncrementalEqualsOneShot) {
  Sha256 h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.finish_digest(), sha256_digest("abc"));
  h.update("abc");  // reset after finish
  EXPECT_EQ(h.finish_digest(), sha256_digest("abc"));
}

TEST(Digest, ChecksShape) {
  EXPECT_TRUE(check_digest(sha256_digest("x")).ok());
  EXPECT_TRUE(check_digest("sha256:abc").is_bad_input());
  EXPECT_TRUE(check_digest("sha512:" + std::string(64, 'a')).is_bad_input());
  EXPECT_TRUE(check_digest("sha256:" + std::string(64, 'A')).is_bad_input());
}

}  // namespace
}  // namespace quorate
