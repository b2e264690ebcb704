// Frame header, size limits before parsing, drop counters.
#include "quorate/wire/frame.h"

#include <algorithm>

namespace quorate::wire {
namespace {

constexpr char kMagic0 = 'Q';
constexpr char kMagic1 = 'W';

bool known_type(uint8_t t) {
  return t >= static_cast<uint8_t>(MessageType::kBuildRequest) && t <= static_cast<uint8_t>(MessageType::kHeartbeat);
}

Status drop(DropReason reason, DropReason* why, const std::string& detail) {
  if (why) *why = reason;
  return Status::bad_input(std::string(drop_reason_name(reason)) + ": " + detail);
}

}  // namespace

const char* message_type_name(MessageType type) {
  switch (type) {
    case MessageType::kBuildRequest:
      return "BuildRequest";
    case MessageType::kJobStatusRequest:
      return "JobStatusRequest";
    case MessageType::kJobStatus:
      return "JobStatus";
    case MessageType::kAttestation:
      return "AttestationMessage";
    case MessageType::kHistoryRequest:
      return "HistoryRequest";
    case MessageType::kHistoryResponse:
      return "HistoryResponse";
    case MessageType::kDecision:
      return "Decision";
    case MessageType::kQuery:
      return "Query";
    case MessageType::kAnswer:
      return "Answer";
    case MessageType::kHeartbeat:
      return "Heartbeat";
  }
  return "unknown";
}

const char* drop_reason_name(DropReason reason) {
  switch (reason) {
    case DropReason::kOversized:
      return "oversized";
    case DropReason::kGarbage:
      return "garbage";
    case DropReason::kBadVersion:
      return "bad_version";
    case DropReason::kUnknownType:
      return "unknown_type";
    case DropReason::kUnexpectedType:
      return "unexpected_type";
    case DropReason::kBadTopic:
      return "bad_topic";
    case DropReason::kMalformed:
      return "malformed";
    case DropReason::kCount_:
      break;
  }
  return "unknown";
}

size_t Limits::limit_for(MessageType type) const {
  switch (type) {
    case MessageType::kAttestation:
      return max_attestation_bytes;
    case MessageType::kHistoryResponse:
      return max_history_bytes;
    case MessageType::kDecision:
    case MessageType::kAnswer:
      return max_decision_bytes;
    default:
      return max_control_bytes;
  }
}

size_t Limits::largest() const {
  return std::max({max_control_bytes, max_attestation_bytes, max_decision_bytes, max_history_bytes});
}

uint64_t DropCounters::total() const {
  uint64_t sum = 0;
  for (const auto& c : counts_) sum += c.load();
  return sum;
}

std::map<std::string, uint64_t> DropCounters::snapshot() const {
  std::map<std::string, uint64_t> out;
  for (size_t i = 0; i < counts_.size(); ++i) {
    uint64_t n = counts_[i].load();
    if (n != 0) out[drop_reason_name(static_cast<DropReason>(i))] = n;
  }
  return out;
}

std::string encode_frame(MessageType type, const google::protobuf::MessageLite& body) {
  std::string out;
  out.reserve(kFrameHeaderSize + body.ByteSizeLong());
  out.push_back(kMagic0);
  out.push_back(kMagic1);
  out.push_back(static_cast<char>(kSchemaVersion));
  out.push_back(static_cast<char>(type));
  body.AppendToString(&out);
  return out;
}

Result<FrameView> decode_frame(std::string_view frame, const Limits& limits, DropReason* why) {
  // The size comes first: nothing of an oversized frame is looked at.
  if (frame.size() > limits.largest()) {
    return drop(DropReason::kOversized, why,
                std::to_string(frame.size()) + " bytes > largest limit " + std::to_string(limits.largest()));
  }
  if (frame.size() < kFrameHeaderSize || frame[0] != kMagic0 || frame[1] != kMagic1) {
    return drop(DropReason::kGarbage, why, "no quorate frame header (" + std::to_string(frame.size()) + " bytes)");
  }
  auto version = static_cast<uint8_t>(frame[2]);
  if (version != kSchemaVersion) {
    return drop(DropReason::kBadVersion, why,
                "schema version " + std::to_string(version) + ", expected " + std::to_string(kSchemaVersion));
  }
  auto raw_type = static_cast<uint8_t>(frame[3]);
  if (!known_type(raw_type)) return drop(DropReason::kUnknownType, why, "message type " + std::to_string(raw_type));
  auto type = static_cast<MessageType>(raw_type);
  if (frame.size() > limits.limit_for(type)) {
    return drop(DropReason::kOversized, why,
                std::string(message_type_name(type)) + " of " + std::to_string(frame.size()) + " bytes > limit " +
                    std::to_string(limits.limit_for(type)));
  }
  return FrameView{type, frame.substr(kFrameHeaderSize)};
}

Status decode_message(std::string_view frame, MessageType expected, const Limits& limits,
                      google::protobuf::MessageLite& out, DropReason* why) {
  auto view = decode_frame(frame, limits, why);
  if (!view.ok()) return view.status();
  if (view->type != expected) {
    return drop(DropReason::kUnexpectedType, why,
                std::string("got ") + message_type_name(view->type) + ", expected " + message_type_name(expected));
  }
  if (!out.ParseFromArray(view->body.data(), static_cast<int>(view->body.size()))) {
    return drop(DropReason::kMalformed, why, std::string(message_type_name(expected)) + " body does not parse");
  }
  return Status();
}

std::string attestation_topic(std::string_view node_id) {
  return std::string(kAttestationTopicPrefix) + std::string(node_id);
}
std::string heartbeat_topic(std::string_view node_id) {
  return std::string(kHeartbeatTopicPrefix) + std::string(node_id);
}
std::string decision_topic(std::string_view commit) {
  return std::string(kDecisionTopicPrefix) + std::string(commit.empty() ? "none" : commit);
}

}  // namespace quorate::wire
