// Framing of wire messages: a 4-byte header (magic, schema version, message type) before the protobuf body,
// size limits checked before anything is parsed, and counters of what was dropped.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "quorate/core/status.h"
#include "quorate/wire/v1/messages.pb.h"  // IWYU pragma: export

namespace quorate::wire {

namespace pb = ::quorate::wire::v1;

// The schema version written in every frame header. A reader drops frames of any other version.
inline constexpr uint8_t kSchemaVersion = 1;
// Bytes of the frame header: 'Q', 'W', schema version, message type.
inline constexpr size_t kFrameHeaderSize = 4;

enum class MessageType : uint8_t {
  kBuildRequest = 1,
  kJobStatusRequest = 2,
  kJobStatus = 3,
  kAttestation = 4,
  kHistoryRequest = 5,
  kHistoryResponse = 6,
  kDecision = 7,
  kQuery = 8,
  kAnswer = 9,
  kHeartbeat = 10,
};
// "BuildRequest", ...; "unknown" for values outside the enum.
const char* message_type_name(MessageType type);

// Largest accepted frame per kind of message, header included. Defaults fit a DSSE envelope of a large
// provenance (1 MiB) and a history batch of many of them.
struct Limits {
  size_t max_control_bytes = 64u << 10;     // BuildRequest, JobStatus*, HistoryRequest, Query, Heartbeat
  size_t max_attestation_bytes = 1u << 20;  // AttestationMessage
  size_t max_decision_bytes = 1u << 20;     // Decision, Answer
  size_t max_history_bytes = 32u << 20;     // HistoryResponse
  size_t max_topic_bytes = 256;             // PUB/SUB topic frame
  size_t limit_for(MessageType type) const;
  size_t largest() const;
};

// Why a frame was dropped; each reason has its own counter.
enum class DropReason : uint8_t {
  kOversized,       // larger than the limit for its type (checked before parsing)
  kGarbage,         // too short, bad magic, wrong number of frames
  kBadVersion,      // another schema version
  kUnknownType,     // a message type this version does not know
  kUnexpectedType,  // a known type on a socket that does not take it
  kBadTopic,        // the topic frame does not match the message
  kMalformed,       // the protobuf body does not parse, or a required field is missing
  kCount_,
};
const char* drop_reason_name(DropReason reason);

// Counts dropped frames by reason. Thread-safe (atomics).
class DropCounters {
 public:
  void add(DropReason reason) { counts_[static_cast<size_t>(reason)].fetch_add(1, std::memory_order_relaxed); }
  uint64_t get(DropReason reason) const { return counts_[static_cast<size_t>(reason)].load(); }
  uint64_t total() const;
  // Reason name -> count, non-zero counts only, sorted by name.
  std::map<std::string, uint64_t> snapshot() const;

 private:
  std::array<std::atomic<uint64_t>, static_cast<size_t>(DropReason::kCount_)> counts_{};
};

// Header + serialized body. The caller checks the size against its peer's limits if it cares; receivers
// enforce their own.
std::string encode_frame(MessageType type, const google::protobuf::MessageLite& body);

// A checked frame: its type and the still-unparsed body (a view into the frame).
struct FrameView {
  MessageType type;
  std::string_view body;
};

// Checks, in this order and before any parsing: total size against limits.largest(), header length and
// magic, schema version, known type, size against the type's limit. On failure returns bad_input naming the
// reason and, when `why` is given, stores the reason there.
Result<FrameView> decode_frame(std::string_view frame, const Limits& limits, DropReason* why = nullptr);

// decode_frame, then requires `expected` and parses the body into `out` (unknown fields are kept, not an
// error). bad_input on any failure, with the reason in `why`.
Status decode_message(std::string_view frame, MessageType expected, const Limits& limits,
                      google::protobuf::MessageLite& out, DropReason* why = nullptr);

// PUB/SUB topics: "att.<node id>", "hb.<node id>", "dec.<commit>". Subscribers filter on the prefixes
// (a client waiting for one commit subscribes to "dec.<commit>").
inline constexpr std::string_view kAttestationTopicPrefix = "att.";
inline constexpr std::string_view kHeartbeatTopicPrefix = "hb.";
inline constexpr std::string_view kDecisionTopicPrefix = "dec.";
std::string attestation_topic(std::string_view node_id);
std::string heartbeat_topic(std::string_view node_id);
std::string decision_topic(std::string_view commit);

}  // namespace quorate::wire
