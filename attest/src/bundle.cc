// Sigstore bundle v0.3 export and import (public-key verification material, DSSE content).
#include "quorate/attest/bundle.h"

#include "json.h"

namespace quorate::attest {
using detail::Json;
using detail::JsonValue;

Result<std::string> to_bundle(const Envelope& envelope, std::string_view keyid) {
  Json bundle = {
      {"mediaType", kBundleMediaType},
      {"verificationMaterial", {{"publicKey", {{"hint", keyid}}}, {"tlogEntries", Json::array()}}},
      {"dsseEnvelope", detail::envelope_json(envelope)},
  };
  return canonical_json(bundle, "bundle");
}

namespace {

Result<Envelope> envelope_of_bundle_json(const JsonValue& j) {
  constexpr std::string_view what = "Sigstore bundle";
  if (!j.is_object()) return Status::bad_input("Sigstore bundle: not a JSON object");
  QR_RETURN_IF_ERROR(detail::check_members(j, {"mediaType", "verificationMaterial", "dsseEnvelope"}, what));
  auto media = QR_TRY(detail::get_string(j, "mediaType", what));
  if (media != kBundleMediaType) {
    return Status::bad_input("Sigstore bundle: media type '" + std::string(media) + "' is not " +
                             std::string(kBundleMediaType));
  }
  QR_TRY(detail::get_object(j, "verificationMaterial", what));
  const JsonValue* env = QR_TRY(detail::get_object(j, "dsseEnvelope", what));
  return detail::envelope_from_json(*env, "Sigstore bundle: dsseEnvelope");
}

}  // namespace

Result<Envelope> envelope_from_bundle(std::string_view json, size_t max_bytes) {
  if (json.size() > max_bytes) {
    return Status::bad_input("Sigstore bundle: too large (" + std::to_string(json.size()) + " bytes, limit " +
                             std::to_string(max_bytes) + ")");
  }
  auto doc = QR_TRY(detail::parse_strict_json(json, "Sigstore bundle"));
  return envelope_of_bundle_json(doc.root());
}

Result<Envelope> parse_envelope_or_bundle(std::string_view json, size_t max_bytes) {
  if (json.size() > max_bytes) {
    return Status::bad_input("attestation: too large (" + std::to_string(json.size()) + " bytes, limit " +
                             std::to_string(max_bytes) + ")");
  }
  auto doc = QR_TRY(detail::parse_strict_json(json, "attestation"));
  if (doc.root().contains("mediaType")) return envelope_of_bundle_json(doc.root());
  return detail::envelope_from_json(doc.root(), "DSSE envelope");
}

}  // namespace quorate::attest
