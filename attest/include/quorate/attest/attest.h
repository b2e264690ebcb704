// The one call that turns a build result into a signed attestation (for `quorate attest` and `quorate build
// --attest`, and for rebuild nodes).
#pragma once

#include <string>
#include <string_view>

#include "quorate/attest/keys.h"
#include "quorate/core/status.h"

namespace quorate::attest {

enum class AttestFormat { kEnvelope, kBundle };

// Builds the statement of `build_result` (the JSON of `quorate build --result-out`), signs it as node `node_id`
// (runDetails.builder.id = `builder_uri`, default default_builder_uri(node_id))
// and returns the DSSE envelope (or the Sigstore bundle) as canonical JSON bytes. With an Ed25519 key the bytes
// are the same for the same input. bad_input naming the field when the build result is malformed; internal when
// signing fails.
Result<std::string> attest_build_result(std::string_view build_result, const Signer& signer, std::string_view node_id,
                                        AttestFormat format = AttestFormat::kEnvelope,
                                        std::string_view builder_uri = {});

}  // namespace quorate::attest
