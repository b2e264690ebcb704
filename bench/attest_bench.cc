// Envelope verifications per CPU second (our whole path: parse, PAE, signature, statement, roster) against what
// `openssl speed` times for the same algorithm (its verify loop, run in this process: bench/raw_verify.h), in
// runs that alternate ours with the baseline (a warm-up pair, then PAIRS pairs; bench_stats.h). Rates are per CPU
// second, as openssl speed reports by default, so other load on the machine does not skew the goal's ratio; the
// per-wall-second ratio is printed beside it. Goal: Roster::verify at least 70% of the baseline in every pair.
// Usage: attest_bench [SECONDS [PAIRS]]   (defaults 1 and 5)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench_stats.h"
#include "quorate/attest/attest.h"
#include "quorate/attest/dsse.h"
#include "quorate/attest/keys.h"
#include "quorate/attest/roster.h"
#include "quorate/attest/statement.h"
#include "raw_verify.h"

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

// For one key type: Roster::verify (our whole path) and PublicKey::verify (the signature alone, before any
// parsing) each against the openssl-speed loop, in alternating runs of `seconds` CPU-seconds each; then where
// the time goes besides the signature (parse_envelope, parse_statement), measured once per round for scale.
int run(KeyType type, double seconds, int pairs) {
  auto pair = generate_key(type).value();
  auto signer = signer_from_pem(pair.private_pem).value();
  auto envelope = attest_build_result(kBuildResult, *signer, "node-a").value();
  auto roster = Roster::create({{"node-a", signer->public_key(), {}, {}, {}}}).value();
  auto env = parse_envelope(envelope).value();
  std::string message = pae(env.payload_type, env.payload);
  bench::SpeedVerify speed(pair.private_pem);
  const char* name = key_type_name(type);
  std::string baseline = std::string("openssl speed ") + (type == KeyType::kEd25519 ? "ed25519" : "ecdsap256") +
                         " verify loop (in process)";
  auto b = [&] { return bench::run_for_cpu_seconds([&] { return speed.verify(); }, seconds); };
  std::printf("%s: envelope %zu bytes (PAE %zu bytes); each run %.1f CPU-s of one thread\n", name, envelope.size(),
              message.size(), seconds);
  auto roster_cmp = bench::alternate(
      std::string(name) + ": Roster::verify of the envelope (parse, PAE, signature, statement, roster) against " +
          baseline,
      "Roster::verify",
      [&] { return bench::run_for_cpu_seconds([&] { return roster.verify(envelope).ok(); }, seconds); }, baseline, b,
      pairs, 1, "verifications");
  bool met = bench::report(roster_cmp, 0.7, bench::Basis::kCpu);
  auto key_cmp = bench::alternate(
      std::string(name) + ": PublicKey::verify of the PAE bytes (the signature alone) against " + baseline,
      "PublicKey::verify(PAE)",
      [&] {
        return bench::run_for_cpu_seconds(
            [&] { return signer->public_key().verify(message, env.signatures[0].sig).ok(); }, seconds);
      },
      baseline, b, pairs, 1, "verifications");
  bench::report(key_cmp);
  // For scale, not compared: the parsing steps alone, a tenth of a run each.
  auto parse_env = bench::run_for_cpu_seconds([&] { return parse_envelope(envelope).ok(); }, seconds / 10);
  auto parse_stmt = bench::run_for_cpu_seconds([&] { return parse_statement(env.payload).ok(); }, seconds / 10);
  std::printf("  for scale (one run each, not alternated): parse_envelope %.0f/CPU-s, parse_statement %.0f/CPU-s\n",
              parse_env.per_cpu(), parse_stmt.per_cpu());
  return met ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // attest_bench [SECONDS [PAIRS]]: each run takes SECONDS of CPU time (default 1); PAIRS alternating pairs (5)
  // after one warm-up pair.
  double seconds = argc > 1 ? std::max(0.05, std::atof(argv[1])) : 1;
  int pairs = argc > 2 ? std::max(1, std::atoi(argv[2])) : 5;
  std::printf("attest_bench: %ld cores, load average at start %s\n", bench::cores(), bench::load_average().c_str());
  int bad = run(KeyType::kEd25519, seconds, pairs);
  bad += run(KeyType::kEcdsaP256, seconds, pairs);
  std::printf(
      "load average at the end %s; goal (Roster::verify >= 70%% of the openssl speed loop per CPU second, "
      "in every pair): %s\n",
      bench::load_average().c_str(), bad == 0 ? "met" : "NOT met");
  return bad == 0 ? 0 : 1;
}
