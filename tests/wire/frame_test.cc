// Frames: round trips of every message, unknown fields tolerated, size limits checked before parsing,
// garbage dropped with the right reason.
#include "quorate/wire/frame.h"

#include <gtest/gtest.h>

namespace quorate::wire {
namespace {

pb::AttestationMessage sample_attestation() {
  pb::AttestationMessage m;
  m.set_node_id("node-a");
  m.set_sequence(42);
  m.set_envelope(R"({"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]})");
  m.set_request_id("req-1");
  return m;
}

TEST(Frame, AttestationRoundTrips) {
  auto frame = encode_frame(MessageType::kAttestation, sample_attestation());
  pb::AttestationMessage out;
  ASSERT_TRUE(decode_message(frame, MessageType::kAttestation, Limits{}, out).ok());
  EXPECT_EQ(out.node_id(), "node-a");
  EXPECT_EQ(out.sequence(), 42u);
  EXPECT_EQ(out.envelope(), sample_attestation().envelope());
  EXPECT_EQ(out.request_id(), "req-1");
}

TEST(Frame, EveryMessageTypeRoundTrips) {
  pb::BuildRequest br;
  br.set_request_id("r");
  br.set_repo("file:///src");
  br.set_commit("abc");
  br.set_recipe_path("quorate.toml");
  br.set_image_name("hello");
  pb::JobStatus js;
  js.set_state(pb::JobStatus::SUCCEEDED);
  js.set_sequence(7);
  pb::HistoryResponse hr;
  *hr.add_attestations() = sample_attestation();
  hr.set_more(true);
  pb::Decision d;
  d.set_accepted(true);
  d.add_agreeing("a");
  d.mutable_subject()->set_commit("abc");
  pb::Query q;
  q.set_image_digest("sha256:00");
  pb::Answer a;
  *a.add_decisions() = d;
  pb::Heartbeat hb;
  hb.set_last_sequence(9);
  (*hb.mutable_dropped())["garbage"] = 2;

  struct Case {
    MessageType type;
    const google::protobuf::Message* msg;
  } cases[] = {{MessageType::kBuildRequest, &br}, {MessageType::kJobStatus, &js}, {MessageType::kHistoryResponse, &hr},
               {MessageType::kDecision, &d},      {MessageType::kQuery, &q},      {MessageType::kAnswer, &a},
               {MessageType::kHeartbeat, &hb}};
  for (const auto& c : cases) {
    auto frame = encode_frame(c.type, *c.msg);
    std::unique_ptr<google::protobuf::Message> out(c.msg->New());
    ASSERT_TRUE(decode_message(frame, c.type, Limits{}, *out).ok()) << message_type_name(c.type);
    EXPECT_EQ(out->SerializeAsString(), c.msg->SerializeAsString()) << message_type_name(c.type);
  }
}

TEST(Frame, HeaderCarriesMagicVersionAndType) {
  auto frame = encode_frame(MessageType::kHeartbeat, pb::Heartbeat());
  ASSERT_EQ(frame.size(), kFrameHeaderSize);
  EXPECT_EQ(frame.substr(0, 2), "QW");
  EXPECT_EQ(static_cast<uint8_t>(frame[2]), kSchemaVersion);
  EXPECT_EQ(static_cast<uint8_t>(frame[3]), static_cast<uint8_t>(MessageType::kHeartbeat));
}

TEST(Frame, UnknownFieldsFromANewerWriterAreTolerated) {
  auto frame = encode_frame(MessageType::kAttestation, sample_attestation());
  // Field 99, length-delimited, "future": what a newer v1 writer might add.
  frame += std::string(
      "\x9a\x06\x06"
      "future",
      9);
  pb::AttestationMessage out;
  ASSERT_TRUE(decode_message(frame, MessageType::kAttestation, Limits{}, out).ok());
  EXPECT_EQ(out.sequence(), 42u);
}

TEST(Frame, OversizedIsRejectedBeforeParsing) {
  Limits limits;
  limits.max_attestation_bytes = 128;
  pb::AttestationMessage big = sample_attestation();
  big.set_envelope(std::string(200, 'x'));
  DropReason why{};
  pb::AttestationMessage out;
  Status s = decode_message(encode_frame(MessageType::kAttestation, big), MessageType::kAttestation, limits, out, &why);
  EXPECT_TRUE(s.is_bad_input());
  EXPECT_EQ(why, DropReason::kOversized);
  EXPECT_EQ(out.sequence(), 0u) << "nothing was parsed";
}

TEST(Frame, HugeGarbageCountsAsOversizedNotGarbage) {
  Limits limits;
  std::string huge(limits.largest() + 1, '\xff');
  DropReason why{};
  EXPECT_FALSE(decode_frame(huge, limits, &why).ok());
  EXPECT_EQ(why, DropReason::kOversized);
}

TEST(Frame, GarbageIsDroppedWithItsReason) {
  Limits limits;
  DropReason why{};
  EXPECT_FALSE(decode_frame("", limits, &why).ok());
  EXPECT_EQ(why, DropReason::kGarbage);
  EXPECT_FALSE(decode_frame("hello world", limits, &why).ok());
  EXPECT_EQ(why, DropReason::kGarbage);
  EXPECT_FALSE(decode_frame(std::string("QW\x02\x04", 4), limits, &why).ok());
  EXPECT_EQ(why, DropReason::kBadVersion);
  EXPECT_FALSE(decode_frame(std::string("QW\x01\x7f", 4), limits, &why).ok());
  EXPECT_EQ(why, DropReason::kUnknownType);

  pb::AttestationMessage out;
  std::string bad_body = std::string("QW\x01\x04", 4) + "\xff\xff\xff\xff\xff";
  EXPECT_FALSE(decode_message(bad_body, MessageType::kAttestation, limits, out, &why).ok());
  EXPECT_EQ(why, DropReason::kMalformed);

  auto hb = encode_frame(MessageType::kHeartbeat, pb::Heartbeat());
  EXPECT_FALSE(decode_message(hb, MessageType::kAttestation, limits, out, &why).ok());
  EXPECT_EQ(why, DropReason::kUnexpectedType);
}

TEST(Frame, DropCountersCountByReason) {
  DropCounters c;
  c.add(DropReason::kGarbage);
  c.add(DropReason::kGarbage);
  c.add(DropReason::kOversized);
  EXPECT_EQ(c.total(), 3u);
  auto snap = c.snapshot();
  EXPECT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap["garbage"], 2u);
  EXPECT_EQ(snap["oversized"], 1u);
}

TEST(Frame, TopicsArePrefixed) {
  EXPECT_EQ(attestation_topic("node-a"), "att.node-a");
  EXPECT_EQ(heartbeat_topic("node-a"), "hb.node-a");
  EXPECT_EQ(decision_topic(""), "dec.none");
}

}  // namespace
}  // namespace quorate::wire
