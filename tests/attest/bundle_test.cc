// Sigstore bundle v0.3: the shape external verifiers accept, and import back to the envelope.
#include "quorate/attest/bundle.h"

#include "tests/attest/fixtures.h"

namespace quorate::attest {
namespace {

using testing::fixed_signer;

TEST(Bundle, HasTheV03PublicKeyShape) {
  auto signer = fixed_signer(KeyType::kEcdsaP256);
  auto env = sign_envelope(kInTotoPayloadType, testing::statement_of(), *signer).value();
  auto j = nlohmann::json::parse(to_bundle(env, signer->keyid()).value());
  EXPECT_EQ(j["mediaType"], "application/vnd.dev.sigstore.bundle.v0.3+json");
  EXPECT_EQ(j["verificationMaterial"]["publicKey"]["hint"], signer->keyid());
  EXPECT_EQ(j["verificationMaterial"]["tlogEntries"], nlohmann::json::array());
  EXPECT_EQ(j["dsseEnvelope"]["signatures"].size(), 1u);
  EXPECT_EQ(j["dsseEnvelope"]["payloadType"], kInTotoPayloadType);
}

TEST(Bundle, ImportGivesTheSameEnvelope) {
  auto signer = fixed_signer(KeyType::kEd25519);
  auto env = sign_envelope(kInTotoPayloadType, testing::statement_of(), *signer).value();
  std::string bundle = to_bundle(env, signer->keyid()).value();
  EXPECT_EQ(envelope_from_bundle(bundle).value().serialize().value(), env.serialize().value());
  EXPECT_EQ(parse_envelope_or_bundle(bundle).value().serialize().value(), env.serialize().value());
  EXPECT_EQ(parse_envelope_or_bundle(env.serialize().value()).value().serialize().value(), env.serialize().value());
}

TEST(Bundle, OtherMediaTypesAreRejected) {
  auto signer = fixed_signer(KeyType::kEd25519);
  auto env = sign_envelope(kInTotoPayloadType, "{}", *signer).value();
  auto j = nlohmann::json::parse(to_bundle(env, signer->keyid()).value());
  j["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.1";
  auto r = envelope_from_bundle(j.dump());
  ASSERT_TRUE(r.status().is_bad_input());
  EXPECT_NE(r.status().message().find("media type"), std::string::npos);
  j = nlohmann::json::parse(to_bundle(env, signer->keyid()).value());
  j.erase("dsseEnvelope");
  EXPECT_TRUE(envelope_from_bundle(j.dump()).status().is_bad_input());
}

}  // namespace
}  // namespace quorate::attest
