// Envelope verifications per second (our whole path: parse, PAE, signature, statement, roster) against the raw
// `openssl speed` verify rate of the same algorithm, measured in the same run. Both in CPU time, as openssl
// speed reports by default, so other load on the machine does not skew the ratio. Goal: at least 70%.
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "quorate/attest/attest.h"
#include "quorate/attest/dsse.h"
#include "quorate/attest/statement.h"
#include "quorate/attest/keys.h"
#include "quorate/attest/roster.h"

namespace {

using namespace quorate::attest;

constexpr const char* kBuildResult =
    R"({"base_images":[{"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","name":"debian:12"}],)"
    R"("canonical_form":1,"compressor":"gzip zlib 1.2.13 level 6","environment":{"LC_ALL":"C.UTF-8","PATH":"/usr/bin:/bin",)"
    R"("SOURCE_DATE_EPOCH":"1700000000","TZ":"UTC"},"finished_on":"2026-11-23T08:00:03Z","image":{"config_digest":)"
    R"("sha256:2222222222222222222222222222222222222222222222222222222222222222","diff_ids":)"
    R"(["sha256:3333333333333333333333333333333333333333333333333333333333333333"],"layers":[{"digest":)"
    R"("sha256:4444444444444444444444444444444444444444444444444444444444444444","media_type":)"
    R"("application/vnd.oci.image.layer.v1.tar+gzip","size":123}],"manifest_digest":)"
    R"("sha256:5555555555555555555555555555555555555555555555555555555555555555","name":"example.org/hello"},)"
    R"("platform":{"architecture":"amd64","os":"linux"},"sandbox":"bubblewrap","schema":"https://quorate.dev/build-result/v1",)"
    R"("source":{"commit":"0123456789abcdef0123456789abcdef01234567","recipe_path":"quorate.toml","tree":)"
    R"("89abcdef0123456789abcdef0123456789abcdef","uri":"file:///src/hello.git"},"source_date_epoch":1700000000,)"
    R"("started_on":"2026-11-23T08:00:00Z","toolchain":{"libarchive":"3.6.2","quorate":"0.1.0","run":{"cc":"gcc 12"}}})";

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// The verify/s figure of `openssl speed -mr` for `algorithm` ("ed25519" or "ecdsap256"); 0 when unavailable.
double openssl_verify_rate(const std::string& algorithm, int seconds) {
  std::string cmd = "openssl speed -mr -seconds " + std::to_string(seconds) + " " + algorithm + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return 0;
  char line[512];
  double sign = 0, verify = 0;
  while (fgets(line, sizeof line, p) != nullptr) {
    std::string s(line);
    if (s.rfind("+F", 0) != 0) continue;
    // Ed25519: +F6:<n>:253:Ed25519:<sign/s>:<verify/s>   ECDSA: +F4:<n>:256:<sign/s>:<verify/s>
    auto last = s.rfind(':');
    auto prev = s.rfind(':', last - 1);
    sign = std::stod(s.substr(prev + 1, last - prev - 1));
    verify = std::stod(s.substr(last + 1));
  }
  pclose(p);
  (void)sign;
  return verify;
}

// Verifications per CPU second of `fn`, run for about `seconds`.
template <class Fn>
double rate(Fn fn, double seconds) {
  long n = 0;
  double start = cpu_seconds(), now = start;
  while (now - start < seconds) {
    for (int i = 0; i < 64; ++i) {
      if (!fn()) {
        std::cerr << "verification failed in the benchmark\n";
        std::exit(1);
      }
    }
    n += 64;
    now = cpu_seconds();
  }
  return static_cast<double>(n) / (now - start);
}

// The best of `rounds` alternating measurements of each side: the machine is shared, and the best figure is the
// one least disturbed by other load, for openssl and for us alike.
int run(KeyType type, const char* speed_name, int seconds, int rounds) {
  auto pair = generate_key(type).value();
  auto signer = signer_from_pem(pair.private_pem).value();
  auto envelope = attest_build_result(kBuildResult, *signer, "node-a").value();
  auto roster = Roster::create({{"node-a", signer->public_key(), {}, {}, {}}}).value();
  auto env = parse_envelope(envelope).value();
  std::string message = pae(env.payload_type, env.payload);
  double raw_key = 0, parse_env = 0, parse_stmt = 0, ours_key = 0, ours_roster = 0, openssl = 0;
  for (int r = 0; r < rounds; ++r) {
    raw_key = std::max(raw_key, rate([&] { return signer->public_key().verify(message, env.signatures[0].sig).ok(); }, seconds));
    parse_env = std::max(parse_env, rate([&] { return parse_envelope(envelope).ok(); }, seconds));
    parse_stmt = std::max(parse_stmt, rate([&] { return parse_statement(env.payload).ok(); }, seconds));
    ours_key = std::max(ours_key, rate([&] { return verify_with_key(envelope, signer->public_key()).ok(); }, seconds));
    ours_roster = std::max(ours_roster, rate([&] { return roster.verify(envelope).ok(); }, seconds));
    openssl = std::max(openssl, openssl_verify_rate(speed_name, seconds));
  }
  std::printf("%-8s parts: PublicKey::verify(PAE) %.0f/s, parse_envelope %.0f/s, parse_statement %.0f/s\n",
              key_type_name(type), raw_key, parse_env, parse_stmt);
  std::printf("%-8s envelope %zu bytes: verify_with_key %.0f/s, Roster::verify %.0f/s; openssl speed verify %.0f/s; "
              "ratio %.0f%% (Roster::verify %.0f%%)\n",
              key_type_name(type), envelope.size(), ours_key, ours_roster, openssl,
              openssl > 0 ? 100 * ours_key / openssl : 0, openssl > 0 ? 100 * ours_roster / openssl : 0);
  return openssl > 0 && ours_roster / openssl >= 0.7 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // attest_bench [SECONDS [ROUNDS]]: each measurement runs SECONDS of CPU time (default 2), ROUNDS times (3).
  int seconds = argc > 1 ? std::atoi(argv[1]) : 2;
  int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  int bad = run(KeyType::kEd25519, "ed25519", seconds, rounds);
  bad += run(KeyType::kEcdsaP256, "ecdsap256", seconds, rounds);
  std::printf("goal (>= 70%% of openssl speed): %s\n", bad == 0 ? "met" : "NOT met");
  return bad == 0 ? 0 : 1;
}
