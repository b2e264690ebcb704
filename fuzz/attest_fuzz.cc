// libFuzzer target: envelope/bundle parsing, statement parsing and roster verification must never crash, whatever
// the bytes; anything they accept must serialize and parse back to the same envelope.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "quorate/attest/bundle.h"
#include "quorate/attest/dsse.h"
#include "quorate/attest/keys.h"
#include "quorate/attest/roster.h"
#include "quorate/attest/statement.h"

namespace {

const quorate::attest::Roster& roster() {
  static const quorate::attest::Roster r = [] {
    auto pair = quorate::attest::generate_key(quorate::attest::KeyType::kEd25519).value();
    auto key = quorate::attest::PublicKey::from_pem(pair.public_pem).value();
    return quorate::attest::Roster::create({{"node-a", key, {}, {}, {}}}).value();
  }();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto env = quorate::attest::parse_envelope_or_bundle(bytes);
  if (env.ok()) {
    auto written = env->serialize();
    if (!written.ok()) std::abort();  // a parsed envelope always serializes
    auto again = quorate::attest::parse_envelope(*written);
    if (!again.ok() || again->serialize().value() != *written) std::abort();
    (void)quorate::attest::parse_statement(env->payload);
  }
  (void)quorate::attest::parse_statement(bytes);
  (void)roster().verify(bytes);
  return 0;
}
