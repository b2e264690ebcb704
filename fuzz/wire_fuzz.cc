// libFuzzer target: the wire frame decoder (header checks, size limits, every message type's body) must never
// crash, whatever the bytes; a frame it accepts must encode and decode back to the same message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "quorate/wire/frame.h"

namespace {

namespace pb = quorate::wire::pb;
using quorate::wire::MessageType;

std::unique_ptr<google::protobuf::MessageLite> message_for(MessageType type) {
  switch (type) {
    case MessageType::kBuildRequest:
      return std::make_unique<pb::BuildRequest>();
    case MessageType::kJobStatusRequest:
      return std::make_unique<pb::JobStatusRequest>();
    case MessageType::kJobStatus:
      return std::make_unique<pb::JobStatus>();
    case MessageType::kAttestation:
      return std::make_unique<pb::AttestationMessage>();
    case MessageType::kHistoryRequest:
      return std::make_unique<pb::HistoryRequest>();
    case MessageType::kHistoryResponse:
      return std::make_unique<pb::HistoryResponse>();
    case MessageType::kDecision:
      return std::make_unique<pb::Decision>();
    case MessageType::kQuery:
      return std::make_unique<pb::Query>();
    case MessageType::kAnswer:
      return std::make_unique<pb::Answer>();
    case MessageType::kHeartbeat:
      return std::make_unique<pb::Heartbeat>();
  }
  std::abort();  // decode_frame returned a type outside the enum
}

// Map fields make the plain serialization order unspecified: compare deterministic ones.
std::string canonical(const google::protobuf::MessageLite& m) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&coded);
  }
  return out;
}

// Small limits too, so that the size checks are reached with small inputs.
const quorate::wire::Limits& small_limits() {
  static const quorate::wire::Limits l = [] {
    quorate::wire::Limits x;
    x.max_control_bytes = 64;
    x.max_attestation_bytes = 256;
    x.max_decision_bytes = 512;
    x.max_history_bytes = 1024;
    return x;
  }();
  return l;
}

void check(std::string_view bytes, const quorate::wire::Limits& limits) {
  quorate::wire::DropReason why{};
  auto view = quorate::wire::decode_frame(bytes, limits, &why);
  if (!view.ok()) {
    if (static_cast<size_t>(why) >= static_cast<size_t>(quorate::wire::DropReason::kCount_)) std::abort();
    return;
  }
  if (view->body.size() + quorate::wire::kFrameHeaderSize != bytes.size()) std::abort();
  if (bytes.size() > limits.limit_for(view->type)) std::abort();
  auto msg = message_for(view->type);
  if (!quorate::wire::decode_message(bytes, view->type, limits, *msg, &why).ok()) return;
  // Accepted: encoding it again gives a frame that decodes to the same bytes of body.
  std::string again = quorate::wire::encode_frame(view->type, *msg);
  auto msg2 = message_for(view->type);
  quorate::wire::Limits unlimited;
  unlimited.max_control_bytes = unlimited.max_attestation_bytes = unlimited.max_decision_bytes =
      unlimited.max_history_bytes = again.size();
  if (!quorate::wire::decode_message(again, view->type, unlimited, *msg2).ok()) std::abort();
  if (canonical(*msg2) != canonical(*msg)) std::abort();
  (void)quorate::wire::message_type_name(view->type);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check(bytes, quorate::wire::Limits{});
  check(bytes, small_limits());
  return 0;
}
