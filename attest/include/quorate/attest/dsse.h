// DSSE envelopes (https://github.com/secure-systems-lab/dsse): the pre-authentication encoding, strict parsing
// and deterministic serialization.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "quorate/attest/keys.h"
#include "quorate/core/status.h"

namespace quorate::attest {

inline constexpr std::string_view kInTotoPayloadType = "application/vnd.in-toto+json";
// The largest envelope (or bundle) accepted, before any parsing. Matches the wire's attestation limit.
inline constexpr size_t kMaxEnvelopeBytes = 1u << 20;
// The most signatures an envelope may carry (quorate writes one). Each costs a verification: 1 MiB holds about
// 10,000, and a verifier tried each against every roster key (a forged envelope cost 33 CPU seconds).
inline constexpr size_t kMaxSignatures = 16;

// "DSSEv1 <len(type)> <type> <len(payload)> <payload>": the bytes that are signed.
std::string pae(std::string_view payload_type, std::string_view payload);

struct EnvelopeSignature {
  std::string keyid;  // a hint only: the signature must still verify with the key it names
  std::string sig;    // raw signature bytes (base64-decoded)
};

// A value type. payload holds the decoded bytes.
struct Envelope {
  std::string payload_type;
  std::string payload;
  std::vector<EnvelopeSignature> signatures;

  // Canonical JSON (quorate/core/json.h), standard padded base64. The same envelope always gives the same
  // bytes; bad_input only for a payloadType or keyid that is not valid UTF-8, which parsing never yields.
  Result<std::string> serialize() const;
};

// Parses a DSSE envelope strictly: at most `max_bytes` (bad_input "too large" otherwise), valid UTF-8 JSON,
// no duplicate keys at any depth, no unknown members, strict base64 (padded, no whitespace), one to
// kMaxSignatures signatures, each with a non-empty sig. Every failure is bad_input with a message saying what is wrong.
Result<Envelope> parse_envelope(std::string_view json, size_t max_bytes = kMaxEnvelopeBytes);

// Signs `payload` and returns the envelope with one signature (keyid = signer.keyid()).
Result<Envelope> sign_envelope(std::string_view payload_type, std::string_view payload, const Signer& signer);

// ok when some signature of `envelope` verifies with `key` over the PAE; verification otherwise.
Status verify_envelope_signature(const Envelope& envelope, const PublicKey& key);

}  // namespace quorate::attest
