// DSSE: PAE bytes, strict parsing, canonical serialization, signature checks.
#include "quorate/attest/dsse.h"

#include "quorate/core/sha256.h"
#include "tests/attest/fixtures.h"

namespace quorate::attest {
namespace {

using testing::fixed_signer;

TEST(Dsse, PaeIsTheSpecEncoding) {
  // The example of the DSSE protocol document.
  EXPECT_EQ(pae("http://example.com/HelloWorld", "hello world"),
            "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
  EXPECT_EQ(pae("", ""), "DSSEv1 0  0 ");
}

TEST(Dsse, SerializeIsCanonicalAndParsesBack) {
  auto signer = fixed_signer(KeyType::kEd25519);
  auto env = sign_envelope(kInTotoPayloadType, "{\"a\":1}", *signer).value();
  std::string bytes = env.serialize().value();
  EXPECT_EQ(bytes.find_first_of(" \n"), std::string::npos);
  EXPECT_EQ(bytes.rfind("{\"payload\":\"", 0), 0u) << bytes;  // members sorted
  auto back = parse_envelope(bytes).value();
  EXPECT_EQ(back.payload, "{\"a\":1}");
  EXPECT_EQ(back.payload_type, kInTotoPayloadType);
  ASSERT_EQ(back.signatures.size(), 1u);
  EXPECT_EQ(back.signatures[0].keyid, signer->keyid());
  EXPECT_EQ(back.serialize().value(), bytes);
  EXPECT_TRUE(verify_envelope_signature(back, signer->public_key()).ok());
}

TEST(Dsse, SignatureCoversThePayloadType) {
  auto signer = fixed_signer(KeyType::kEd25519);
  auto env = sign_envelope(kInTotoPayloadType, "x", *signer).value();
  env.payload_type = "text/plain";
  EXPECT_TRUE(verify_envelope_signature(env, signer->public_key()).is_verification());
}

TEST(Dsse, UnknownMembersAndMissingSignaturesAreRejected) {
  EXPECT_TRUE(parse_envelope(R"({"payload":"","payloadType":"t","signatures":[],"x":1})").status().is_bad_input());
  auto none = parse_envelope(R"({"payload":"","payloadType":"t","signatures":[]})");
  EXPECT_NE(none.status().message().find("no signatures"), std::string::npos);
  auto empty_sig = parse_envelope(R"({"payload":"","payloadType":"t","signatures":[{"sig":""}]})");
  EXPECT_NE(empty_sig.status().message().find("empty sig"), std::string::npos);
}

TEST(Dsse, WhitespaceInBase64IsRejected) {
  auto r = parse_envelope(R"({"payload":"YWJj ","payloadType":"t","signatures":[{"sig":"YWJj"}]})");
  EXPECT_NE(r.status().message().find("payload is not strict base64"), std::string::npos) << r.status().message();
}

TEST(Dsse, DeepNestingIsRejectedWithoutCrashing) {
  std::string deep(100000, '[');
  EXPECT_TRUE(parse_envelope(deep).status().is_bad_input());
  std::string nested = std::string(200, '[') + std::string(200, ']');
  auto r = parse_envelope(nested);
  EXPECT_NE(r.status().message().find("nested deeper"), std::string::npos) << r.status().message();
}

TEST(Dsse, InvalidUtf8IsRejected) {
  auto r = parse_envelope("{\"payload\":\"\xff\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"YWJj\"}]}");
  EXPECT_TRUE(r.status().is_bad_input());
}

}  // namespace
}  // namespace quorate::attest
