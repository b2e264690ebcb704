// Build result -> statement -> DSSE envelope (or Sigstore bundle), the bytes a node publishes.
#include "quorate/attest/attest.h"

#include "quorate/attest/bundle.h"
#include "quorate/attest/dsse.h"
#include "quorate/attest/statement.h"

namespace quorate::attest {

Result<std::string> attest_build_result(std::string_view build_result, const Signer& signer, std::string_view node_id,
                                        AttestFormat format, std::string_view builder_uri) {
  auto statement = QR_TRY(statement_from_build_result(build_result, node_id, builder_uri));
  auto envelope = QR_TRY(sign_envelope(kInTotoPayloadType, statement, signer));
  if (format == AttestFormat::kBundle) return to_bundle(envelope, signer.keyid());
  return envelope.serialize();
}

}  // namespace quorate::attest
