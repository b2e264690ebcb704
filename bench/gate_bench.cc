// gate_bench: latency of admission reviews from one client over TLS (keep-alive), against a store of 10,000
// decisions (10,000 subject keys, each accepted by 2 of 3 nodes: 20,000 Ed25519-signed attestations).
// Baseline, measured alternately in the same run over the same connection: GET /healthz (TLS + HTTP without a
// decision). Each round: BATCH pairs (one health check, then one review of a random accepted digest: A B A B);
// p50/p99 of each per round, min/median/max over the rounds. The first review of a digest verifies its two
// envelopes (cold); a second phase over the same digests is warm.
//
// Usage: gate_bench [SUBJECTS [ROUNDS [BATCH [KEEPALIVE]]]]   (defaults 10000 6 500, the gate's default)
// KEEPALIVE: requests per connection before the server closes it (5 is cpp-httplib's own default).
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "bench_stats.h"
#include "quorate/attest/attest.h"
#include "quorate/attest/keys.h"
#include "quorate/core/sha256.h"
#include "quorate/gate/decider.h"
#include "quorate/gate/server.h"
#include "quorate/quorum/store.h"
#include "quorate/quorum/verifier.h"
#include "tests/support/sample_build_result.h"

namespace {

using namespace quorate;
using nlohmann::json;
namespace fs = std::filesystem;

int64_t steady_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string build_result(size_t subject, const std::string& image) {
  quorate::testing::SampleBuild b;
  b.commit = sha256_hex(std::to_string(subject)).substr(0, 40);
  b.image = image;
  b.manifest_digest = image;
  return quorate::testing::sample_build_result(b);
}

std::string pod_review(const std::string& uid, const std::string& image) {
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "app"}, {"namespace", "default"}}},
              {"spec", {{"containers", {{{"name", "app"}, {"image", image}}}}}}};
  json gvk = {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}};
  return json({{"apiVersion", "admission.k8s.io/v1"},
               {"kind", "AdmissionReview"},
               {"request",
                {{"uid", uid}, {"kind", gvk}, {"namespace", "default"}, {"operation", "CREATE"}, {"object", pod}}}})
      .dump();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

int fail(const std::string& what) {
  std::fprintf(stderr, "gate_bench: %s\n", what.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t subjects = argc > 1 ? std::stoul(argv[1]) : 10000;
  const int rounds = argc > 2 ? std::stoi(argv[2]) : 6;
  const size_t batch = argc > 3 ? std::stoul(argv[3]) : 500;
  const size_t keep_alive = argc > 4 ? std::stoul(argv[4]) : 0;  // 0: the gate's default
  char tmpl[] = "/tmp/gate-bench.XXXXXX";
  fs::path dir = ::mkdtemp(tmpl);

  // Roster, policy (2 of 3), certificate.
  std::ofstream policy(dir / "policy.toml");
  policy << "threshold = 2\n";
  std::vector<std::unique_ptr<attest::Signer>> signers;
  for (const char* id : {"a", "b", "c"}) {
    auto pair = attest::generate_key(attest::KeyType::kEd25519).value();
    if (!attest::write_key_pair(dir / (std::string(id) + ".key.pem"), pair).ok()) return fail("cannot write keys");
    signers.push_back(attest::signer_from_pem(pair.private_pem).value());
    policy << "\n[[nodes]]\nid = \"" << id << "\"\npublic_key = \"" << id << ".key.pem.pub.pem\"\n";
  }
  policy.close();
  std::string openssl =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 "
      "-addext subjectAltName=IP:127.0.0.1 -keyout " +
      (dir / "key.pem").string() + " -out " + (dir / "cert.pem").string() + " 2>/dev/null";
  if (std::system(openssl.c_str()) != 0) return fail("openssl req failed");
  fs::permissions(dir / "key.pem", fs::perms::owner_read | fs::perms::owner_write);

  // The store: every subject accepted by a and b.
  double t0 = bench::wall_seconds();
  auto verifier = quorum::Verifier::load(dir / "policy.toml").value();
  std::vector<std::string> images;
  {
    auto store = quorum::Store::open(dir / "store.db").value();
    std::vector<std::string> batch_atts;
    for (size_t s = 0; s < subjects; ++s) {
      std::string image = sha256_digest("image " + std::to_string(s));
      images.push_back(image);
      for (size_t n = 0; n < 2; ++n) {
        batch_atts.push_back(attest::attest_build_result(build_result(s, image), *signers[n], n ? "b" : "a").value());
      }
      if (batch_atts.size() >= 1000 || s + 1 == subjects) {
        if (!quorum::import_attestations(*store, verifier, batch_atts, 1795000000, {.threads = 2}).ok()) {
          return fail("import failed");
        }
        batch_atts.clear();
      }
    }
  }
  std::printf("store: %zu subject keys, %zu attestations, made in %.1f s\n", subjects, subjects * 2,
              bench::wall_seconds() - t0);

  auto decider = gate::Decider::open({dir / "policy.toml", dir / "store.db", {}, [] { return int64_t{1796000000}; }});
  if (!decider.ok()) return fail(decider.status().to_string());
  gate::ServerOptions so;
  so.cert = dir / "cert.pem";
  so.key = dir / "key.pem";
  so.steady_us = steady_us;
  if (keep_alive > 0) so.keep_alive_max_requests = keep_alive;
  auto server = gate::Server::start(**decider, so);
  if (!server.ok()) return fail(server.status().to_string());

  httplib::SSLClient client("127.0.0.1", (*server)->port());
  client.set_ca_cert_path((dir / "cert.pem").c_str());
  client.enable_server_certificate_verification(true);
  client.set_keep_alive(true);
  client.set_tcp_nodelay(true);  // as the API server's Go client (Go sets TCP_NODELAY by default)

  std::mt19937_64 rng(42);
  auto review_ms = [&](const std::string& image, size_t i) -> double {
    std::string body = pod_review("bench-" + std::to_string(i), "registry.example/app@" + image);
    double s = bench::wall_seconds();
    auto r = client.Post("/validate", body, "application/json");
    double ms = (bench::wall_seconds() - s) * 1000;
    if (!r || r->status != 200 || r->body.find("\"allowed\":true") == std::string::npos) {
      std::fprintf(stderr, "gate_bench: review %zu not allowed: %s\n", i, r ? r->body.c_str() : "no response");
      std::exit(1);
    }
    return ms;
  };
  auto health_ms = [&]() -> double {
    double s = bench::wall_seconds();
    auto r = client.Get("/healthz");
    double ms = (bench::wall_seconds() - s) * 1000;
    if (!r || r->status != 200) std::exit(1);
    return ms;
  };
  // Warm-up: the TLS handshake, the first statements, the code paths (pairs not counted).
  for (int i = 0; i < 50; ++i) {
    (void)health_ms();
    (void)review_ms(images[rng() % images.size()], 0);
  }

  // One phase: ROUNDS rounds of BATCH pairs, each pair GET /healthz (A) then one review (B), alternating.
  struct Phase {
    std::vector<double> a_all, b_all, a_p50, a_p99, b_p50, b_p99, ratio_p50, ratio_p99;
    double cpu = 0, wall = 0;
    uint64_t handshakes = 0;
  };
  size_t n = 0;
  std::vector<std::string> asked;
  auto run_phase = [&](bool warm) {
    Phase ph;
    double cpu0 = bench::cpu_seconds(), wall0 = bench::wall_seconds();
    uint64_t hs0 = (*server)->handshakes();
    size_t k = 0;
    for (int r = 0; r < rounds; ++r) {
      std::vector<double> a, b;
      for (size_t i = 0; i < batch; ++i) {
        a.push_back(health_ms());
        std::string image = warm ? asked[k++ % asked.size()] : images[rng() % images.size()];
        if (!warm) asked.push_back(image);
        b.push_back(review_ms(image, ++n));
      }
      ph.a_p50.push_back(percentile(a, 0.5));
      ph.a_p99.push_back(percentile(a, 0.99));
      ph.b_p50.push_back(percentile(b, 0.5));
      ph.b_p99.push_back(percentile(b, 0.99));
      ph.ratio_p50.push_back(ph.b_p50.back() / ph.a_p50.back());
      ph.ratio_p99.push_back(ph.b_p99.back() / ph.a_p99.back());
      ph.a_all.insert(ph.a_all.end(), a.begin(), a.end());
      ph.b_all.insert(ph.b_all.end(), b.begin(), b.end());
    }
    ph.cpu = bench::cpu_seconds() - cpu0;
    ph.wall = bench::wall_seconds() - wall0;
    ph.handshakes = (*server)->handshakes() - hs0;
    return ph;
  };
  auto report = [&](const char* name, const Phase& ph) {
    std::printf(
        "%s: %d rounds x %zu pairs (GET /healthz, review), %llu TLS handshake(s), CPU %.2f s over %.2f s wall "
        "(client and server in this process), load average %s\n",
        name, rounds, batch, static_cast<unsigned long long>(ph.handshakes), ph.cpu, ph.wall,
        bench::load_average().c_str());
    bench::check_possible(name, ph.wall, ph.cpu);
    std::printf("  baseline GET /healthz  all: p50 %.3f ms  p99 %.3f ms  max %.3f ms;  per round p50 %s, p99 %s\n",
                percentile(ph.a_all, 0.5), percentile(ph.a_all, 0.99), percentile(ph.a_all, 1.0),
                bench::describe(ph.a_p50, " ms", "%.3f").c_str(), bench::describe(ph.a_p99, " ms", "%.3f").c_str());
    std::printf("  review                 all: p50 %.3f ms  p99 %.3f ms  max %.3f ms;  per round p50 %s, p99 %s\n",
                percentile(ph.b_all, 0.5), percentile(ph.b_all, 0.99), percentile(ph.b_all, 1.0),
                bench::describe(ph.b_p50, " ms", "%.3f").c_str(), bench::describe(ph.b_p99, " ms", "%.3f").c_str());
    bench::print_ratio("ratio review/healthz p50", ph.ratio_p50);
    bench::print_ratio("ratio review/healthz p99", ph.ratio_p99);
    size_t met = 0;
    for (double p : ph.b_p99) met += p < 5.0;
    std::printf("  goal review p99 < 5 ms: %s (%zu of %zu rounds; all reviews p99 %.3f ms)\n",
                met == ph.b_p99.size()             ? "met in every round"
                : percentile(ph.b_all, 0.99) < 5.0 ? "met overall, not every round"
                                                   : "NOT met",
                met, ph.b_p99.size(), percentile(ph.b_all, 0.99));
  };
  std::printf("server keep-alive: at most %zu requests per connection\n", so.keep_alive_max_requests);
  Phase cold = run_phase(false);
  report("cold (first ask of each digest: its two envelopes verified)", cold);
  Phase warm = run_phase(true);
  report("warm (the same digests asked again)", warm);
  (*server)->stop();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
