// Envelope verifications per second (our whole path: parse, PAE, signature, statement, roster) against the raw
// `openssl speed` verify rate of the same algorithm, measured in the same run. Both in CPU time, as openssl
// speed reports by default, so other load on the machine does not skew the ratio. Goal: at least 70%. Rounds
// alternate openssl speed with ours; figures are min/median/max over rounds (bench_stats.h).
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include "bench_stats.h"
#include "quorate/attest/attest.h"
#include "quorate/attest/dsse.h"
#include "quorate/attest/keys.h"
#include "quorate/attest/roster.h"
#include "quorate/attest/statement.h"

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
  double start = bench::cpu_seconds(), now = start;
  while (now - start < seconds) {
    for (int i = 0; i < 64; ++i) {
      if (!fn()) {
        std::cerr << "verification failed in the benchmark\n";
        std::exit(1);
      }
    }
    n += 64;
    now = bench::cpu_seconds();
  }
  return static_cast<double>(n) / (now - start);
}

// `rounds` rounds, each running openssl speed and then each of our steps, so that our figures alternate with the
// baseline's and a burst of other load lands on both; per-round ratios ours/openssl, with their spread.
int run(KeyType type, const char* speed_name, int seconds, int rounds) {
  auto pair = generate_key(type).value();
  auto signer = signer_from_pem(pair.private_pem).value();
  auto envelope = attest_build_result(kBuildResult, *signer, "node-a").value();
  auto roster = Roster::create({{"node-a", signer->public_key(), {}, {}, {}}}).value();
  auto env = parse_envelope(envelope).value();
  std::string message = pae(env.payload_type, env.payload);
  std::vector<double> raw_key, parse_env, parse_stmt, ours_key, ours_roster, openssl;
  std::vector<double> r_raw, r_key, r_roster;
  double wall0 = bench::wall_seconds(), cpu0 = bench::cpu_seconds();
  for (int r = 0; r < rounds; ++r) {
    double o = openssl_verify_rate(speed_name, seconds);
    if (o <= 0) {
      std::printf("%-8s openssl speed %s gave no figure; no ratio\n", key_type_name(type), speed_name);
      return 1;
    }
    openssl.push_back(o);
    raw_key.push_back(rate([&] { return signer->public_key().verify(message, env.signatures[0].sig).ok(); }, seconds));
    parse_env.push_back(rate([&] { return parse_envelope(envelope).ok(); }, seconds));
    parse_stmt.push_back(rate([&] { return parse_statement(env.payload).ok(); }, seconds));
    ours_key.push_back(rate([&] { return verify_with_key(envelope, signer->public_key()).ok(); }, seconds));
    ours_roster.push_back(rate([&] { return roster.verify(envelope).ok(); }, seconds));
    r_raw.push_back(raw_key.back() / o);
    r_key.push_back(ours_key.back() / o);
    r_roster.push_back(ours_roster.back() / o);
  }
  double wall = bench::wall_seconds() - wall0, cpu = bench::cpu_seconds() - cpu0;
  const char* name = key_type_name(type);
  std::printf(
      "%s: envelope %zu bytes; %d rounds alternating openssl speed with ours, %d CPU-s per figure; "
      "our measuring took %.1f s wall for %.1f CPU-s (openssl ran in its own process)\n",
      name, envelope.size(), rounds, seconds, wall, cpu);
  bench::check_possible("our measuring", wall, cpu);
  std::printf("  openssl speed %s verify   %s\n", speed_name, bench::describe(openssl, "/s").c_str());
  std::printf("  PublicKey::verify(PAE)        %s\n", bench::describe(raw_key, "/s").c_str());
  std::printf("  parse_envelope                %s\n", bench::describe(parse_env, "/s").c_str());
  std::printf("  parse_statement               %s\n", bench::describe(parse_stmt, "/s").c_str());
  std::printf("  verify_with_key               %s\n", bench::describe(ours_key, "/s").c_str());
  std::printf("  Roster::verify                %s\n", bench::describe(ours_roster, "/s").c_str());
  bench::print_ratio("PublicKey::verify / openssl", r_raw);
  bench::print_ratio("verify_with_key / openssl", r_key, 0.7);
  bool met = bench::print_ratio("Roster::verify / openssl", r_roster, 0.7);
  return met ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // attest_bench [SECONDS [ROUNDS]]: each figure runs SECONDS of CPU time (default 1), in ROUNDS rounds (5).
  int seconds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 1;
  int rounds = argc > 2 ? std::max(1, std::atoi(argv[2])) : 5;
  std::printf("attest_bench: %ld cores, load average at start %s\n", sysconf(_SC_NPROCESSORS_ONLN),
              bench::load_average().c_str());
  int bad = run(KeyType::kEd25519, "ed25519", seconds, rounds);
  bad += run(KeyType::kEcdsaP256, "ecdsap256", seconds, rounds);
  std::printf("load average at the end %s; goal (Roster::verify >= 70%% of openssl speed in every round): %s\n",
              bench::load_average().c_str(), bad == 0 ? "met" : "NOT met");
  return bad == 0 ? 0 : 1;
}
