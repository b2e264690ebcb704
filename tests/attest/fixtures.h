// Shared fixtures of the attest tests: fixed keys (for pinned bytes), the sample build result, envelope surgery.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "quorate/attest/attest.h"
#include "quorate/attest/dsse.h"
#include "quorate/attest/keys.h"
#include "quorate/attest/statement.h"
#include "quorate/core/encoding.h"
#include "support/test_util.h"

namespace quorate::attest::testing {

// Test-only keys, fixed so that signatures and envelopes can be pinned byte for byte.
inline constexpr const char* kEd25519Pem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIOWxqQN0J+9oCPVuYfL0SYlkZRymOO4AuG/hUZVDTJ8A\n"
    "-----END PRIVATE KEY-----\n";
inline constexpr const char* kP256Pem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg1YvZ9IqlA4FrGVtR\n"
    "1FYopzeDqiHDk0vPaZs4Mc4gHLGhRANCAASi9O62z6YYoSrcucBnLzP7A8e0zyej\n"
    "l7dahR0Js1EwP2nb1Lbt3AlQHlPevAxxunQQQUqNtvvJ5h39z/wEg5oy\n"
    "-----END PRIVATE KEY-----\n";

inline std::unique_ptr<Signer> fixed_signer(KeyType type) {
  auto s = signer_from_pem(type == KeyType::kEd25519 ? kEd25519Pem : kP256Pem);
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return std::move(s).value();
}

inline std::unique_ptr<Signer> fresh_signer(KeyType type) {
  auto pair = generate_key(type).value();
  return signer_from_pem(pair.private_pem).value();
}

inline std::filesystem::path build_result_path() {
  return quorate::testing::source_dir() / "tests/attest/testdata/build-result.json";
}
inline std::string build_result() { return quorate::testing::slurp(build_result_path()); }

// The sample build result with one field changed (a JSON pointer such as "/image/manifest_digest").
inline std::string build_result_with(const std::string& pointer, const nlohmann::json& value) {
  auto j = nlohmann::json::parse(build_result());
  j[nlohmann::json::json_pointer(pointer)] = value;
  return j.dump();
}

// An envelope of `payload` signed by `signer`, serialized.
inline std::string signed_envelope(const std::string& payload, const Signer& signer,
                                   std::string_view payload_type = kInTotoPayloadType) {
  return sign_envelope(payload_type, payload, signer).value().serialize().value();
}

inline std::string statement_of(const std::string& node_id = "node-a") {
  return statement_from_build_result(build_result(), node_id).value();
}

// The envelope as JSON, to tamper with.
inline nlohmann::json envelope_json(const std::string& bytes) { return nlohmann::json::parse(bytes); }

}  // namespace quorate::attest::testing
