// DSSE: PAE bytes, strict parsing, canonical serialization, signature checks.
#include "quorate/attest/dsse.h"

#include "quorate/core/encoding.h"
#include "quorate/core/json.h"
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

TEST(Dsse, DuplicateMembersAreFoundInLargeObjectsAndThroughEscapes) {
  // A member of the signature object repeated after 40 others (past the parser's linear scan, into its set).
  std::string sig = R"({"sig":"YWJj")";
  for (int i = 0; i < 40; ++i) sig += ",\"m" + std::to_string(i) + "\":0";
  auto r = parse_envelope(R"({"payload":"","payloadType":"t","signatures":[)" + sig + R"(,"m7":1}]})");
  EXPECT_NE(r.status().message().find("duplicate JSON member \"m7\""), std::string::npos) << r.status().message();
  // One name spelled twice: plain and with a \u escape.
  auto escaped = parse_envelope(R"({"payload":"","payloadType":"t","p\u0061yload":"","signatures":[{"sig":"YWJj"}]})");
  EXPECT_NE(escaped.status().message().find("duplicate JSON member \"payload\""), std::string::npos)
      << escaped.status().message();
}

TEST(Dsse, EscapedStringsAreDecoded) {
  auto r = parse_envelope(
      R"({"payload":"YWJj","payloadType":"application\/vnd.in-toto+json","signatures":[{"keyid":"k\u00e9\ud83d\ude00","sig":"YWJj"}]})");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->payload, "abc");
  EXPECT_EQ(r->payload_type, kInTotoPayloadType);
  EXPECT_EQ(r->signatures[0].keyid, "k\xc3\xa9\xf0\x9f\x98\x80");
}

TEST(Dsse, BrokenStringsAreRejectedWithTheirOffset) {
  auto lone = parse_envelope(R"({"payload":"","payloadType":"\ud800","signatures":[{"sig":"YWJj"}]})");
  EXPECT_NE(lone.status().message().find("invalid JSON: lone high surrogate at byte"), std::string::npos)
      << lone.status().message();
  auto overlong =
      parse_envelope("{\"payload\":\"\xc0\xaf\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"YWJj\"}]}");
  EXPECT_NE(overlong.status().message().find("invalid UTF-8 at byte 12"), std::string::npos)
      << overlong.status().message();
  auto control = parse_envelope("{\"payload\":\"a\nb\",\"payloadType\":\"t\",\"signatures\":[{\"sig\":\"YWJj\"}]}");
  EXPECT_NE(control.status().message().find("control character in a string at byte 13"), std::string::npos)
      << control.status().message();
}

// The envelope as a JSON value, written by canonical_json: what serialize() must equal byte for byte.
Result<std::string> canonical_envelope(const Envelope& e) {
  nlohmann::json sigs = nlohmann::json::array();
  for (const auto& s : e.signatures) sigs.push_back({{"keyid", s.keyid}, {"sig", base64_encode(s.sig)}});
  return canonical_json({{"payload", base64_encode(e.payload)}, {"payloadType", e.payload_type}, {"signatures", sigs}},
                        "envelope");
}

TEST(Dsse, SerializeIsTheCanonicalJsonOfTheEnvelope) {
  auto signer = fixed_signer(KeyType::kEcdsaP256);
  auto env = sign_envelope(kInTotoPayloadType, "{\"a\":\"\xc3\xa9\"}", *signer).value();
  env.signatures.push_back({"", "x"});
  env.signatures.push_back({"k\"\\\x01\xe2\x82\xac\n", std::string("\0\xff", 2)});
  for (std::string type :
       {std::string(kInTotoPayloadType), std::string(), std::string("a/b\"c\\\x1f\xf0\x9f\x98\x80")}) {
    env.payload_type = type;
    for (size_t n : {0u, 1u, 2u, 3u, 4u}) {
      env.payload = std::string("\xfb\xff\x00\x10z", n);
      EXPECT_EQ(env.serialize().value(), canonical_envelope(env).value());
    }
  }
  env.payload_type = "\xff";  // not UTF-8: refused as canonical_json refuses it
  auto bad = env.serialize();
  ASSERT_TRUE(bad.status().is_bad_input());
  EXPECT_EQ(bad.status().message(), canonical_envelope(env).status().message());
}

}  // namespace
}  // namespace quorate::attest
