// DSSE envelopes: PAE, strict parsing, canonical serialization, signing and signature checks.
#include "quorate/attest/dsse.h"

#include "json.h"
#include "quorate/core/encoding.h"

namespace quorate::attest {

using detail::Json;
using detail::JsonValue;

std::string pae(std::string_view payload_type, std::string_view payload) {
  std::string out = "DSSEv1 ";
  out.reserve(out.size() + payload_type.size() + payload.size() + 48);
  out += std::to_string(payload_type.size());
  out += ' ';
  out += payload_type;
  out += ' ';
  out += std::to_string(payload.size());
  out += ' ';
  out += payload;
  return out;
}

namespace detail {

Json envelope_json(const Envelope& e) {
  Json sigs = Json::array();
  for (const auto& s : e.signatures) sigs.push_back({{"keyid", s.keyid}, {"sig", base64_encode(s.sig)}});
  return {{"payload", base64_encode(e.payload)}, {"payloadType", e.payload_type}, {"signatures", std::move(sigs)}};
}

Result<Envelope> envelope_from_json(const JsonValue& j, std::string_view what) {
  if (!j.is_object()) return Status::bad_input(std::string(what) + ": not a JSON object");
  QR_RETURN_IF_ERROR(check_members(j, {"payload", "payloadType", "signatures"}, what));
  Envelope e;
  e.payload_type = QR_TRY(get_string(j, "payloadType", what));
  auto payload_b64 = QR_TRY(get_string(j, "payload", what));
  auto payload = base64_decode(payload_b64);
  if (!payload.ok()) return Status::bad_input(std::string(what) + ": payload is not strict base64");
  e.payload = std::move(payload).value();
  const JsonValue* sigs = QR_TRY(get_array(j, "signatures", what));
  if (sigs->size() == 0) return Status::bad_input(std::string(what) + ": no signatures");
  if (sigs->size() > kMaxSignatures) {
    return Status::bad_input(std::string(what) + ": " + std::to_string(sigs->size()) + " signatures; at most " +
                             std::to_string(kMaxSignatures) + " are read");
  }
  e.signatures.reserve(sigs->size());
  for (size_t i = 0; i < sigs->size(); ++i) {
    const JsonValue& s = sigs->items()[i].value;
    std::string where = std::string(what) + ": signatures[" + std::to_string(i) + "]";
    if (!s.is_object()) return Status::bad_input(where + ": not an object");
    QR_RETURN_IF_ERROR(check_members(s, {"keyid", "sig"}, where));
    EnvelopeSignature sig;
    if (s.contains("keyid")) sig.keyid = QR_TRY(get_string(s, "keyid", where));
    auto sig_b64 = QR_TRY(get_string(s, "sig", where));
    auto raw = base64_decode(sig_b64);
    if (!raw.ok()) return Status::bad_input(where + ": sig is not strict base64");
    if (raw->empty()) return Status::bad_input(where + ": empty sig");
    sig.sig = std::move(raw).value();
    e.signatures.push_back(std::move(sig));
  }
  return e;
}

}  // namespace detail

// canonical_json(envelope_json(*this)), written directly (the verifier stores every envelope it accepts this
// way): the members in byte order, base64 text as it is (it needs no escaping), and the two free-form strings
// through canonical_json, the one rule for them (test Dsse.SerializeIsTheCanonicalJsonOfTheEnvelope).
Result<std::string> Envelope::serialize() const {
  auto quoted = [](const std::string& s) { return canonical_json(Json(s), "envelope"); };
  std::string type = QR_TRY(quoted(payload_type));
  std::string out = "{\"payload\":\"";
  out.reserve(payload.size() / 3 * 4 + type.size() + signatures.size() * 200 + 64);
  out += base64_encode(payload);
  out += "\",\"payloadType\":";
  out += type;
  out += ",\"signatures\":[";
  for (size_t i = 0; i < signatures.size(); ++i) {
    std::string keyid = QR_TRY(quoted(signatures[i].keyid));
    out += i == 0 ? "{\"keyid\":" : ",{\"keyid\":";
    out += keyid;
    out += ",\"sig\":\"";
    out += base64_encode(signatures[i].sig);
    out += "\"}";
  }
  out += "]}";
  return out;
}

Result<Envelope> parse_envelope(std::string_view json, size_t max_bytes) {
  if (json.size() > max_bytes) {
    return Status::bad_input("DSSE envelope: too large (" + std::to_string(json.size()) + " bytes, limit " +
                             std::to_string(max_bytes) + ")");
  }
  auto doc = QR_TRY(detail::parse_strict_json(json, "DSSE envelope"));
  return detail::envelope_from_json(doc.root(), "DSSE envelope");
}

Result<Envelope> sign_envelope(std::string_view payload_type, std::string_view payload, const Signer& signer) {
  Envelope e;
  e.payload_type = std::string(payload_type);
  e.payload = std::string(payload);
  auto sig = QR_TRY(signer.sign(pae(payload_type, payload)));
  e.signatures.push_back({signer.keyid(), std::move(sig)});
  return e;
}

Status verify_envelope_signature(const Envelope& envelope, const PublicKey& key) {
  std::string message = pae(envelope.payload_type, envelope.payload);
  for (const auto& s : envelope.signatures) {
    if (key.verify(message, s.sig).ok()) return Status::ok_status();
  }
  return Status::verification("no signature of the envelope verifies with key " + key.keyid());
}

}  // namespace quorate::attest
