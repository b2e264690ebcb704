// Sigstore bundle v0.3 (public-key verification material, no transparency-log entry) around a DSSE envelope,
// so that tools outside quorate (e.g. @sigstore/verify) can verify an attestation.
#pragma once

#include <string>
#include <string_view>

#include "quorate/attest/dsse.h"
#include "quorate/core/status.h"

namespace quorate::attest {

inline constexpr std::string_view kBundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json";

// Canonical JSON of the bundle: mediaType, verificationMaterial.publicKey.hint = `keyid`, empty tlogEntries,
// and dsseEnvelope = `envelope` (which should carry exactly one signature for Sigstore verifiers).
Result<std::string> to_bundle(const Envelope& envelope, std::string_view keyid);

// The envelope inside a bundle. bad_input when it is not a v0.3 bundle with a DSSE envelope (strict JSON as
// parse_envelope), or larger than max_bytes.
Result<Envelope> envelope_from_bundle(std::string_view json, size_t max_bytes = kMaxEnvelopeBytes);

// A DSSE envelope or a Sigstore bundle, whichever `json` is (a bundle has a "mediaType" member).
Result<Envelope> parse_envelope_or_bundle(std::string_view json, size_t max_bytes = kMaxEnvelopeBytes);

}  // namespace quorate::attest
