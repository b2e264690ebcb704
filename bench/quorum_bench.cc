// quorum_bench: 10,000 subject keys x 5 nodes = 50,000 Ed25519-signed attestations imported into a cold store
// (verified against the roster, stored) and decided; reports attestations/s against the raw Ed25519 verify rate
// measured in the same run (goal: at least 50% of it).
//
// Rounds alternate the baseline (raw verify) with our cold imports; every figure is min/median/max over rounds
// with CPU seconds beside wall seconds, and the ratios are per round (bench_stats.h).
//
// Usage: quorum_bench [SUBJECTS [NODES [BATCH [THREADS [ROUNDS]]]]]   (defaults 10000 5 500, hardware threads, 5)
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>
#include <nlohmann/json.hpp>

#include "bench_stats.h"
#include "quorate/attest/attest.h"
#include "quorate/attest/dsse.h"
#include "quorate/attest/keys.h"
#include "quorate/attest/statement.h"
#include "quorate/core/encoding.h"
#include "quorate/core/sha256.h"
#include "quorate/core/time.h"
#include "quorate/quorum/decision.h"
#include "quorate/quorum/query.h"
#include "quorate/quorum/store.h"
#include "quorate/quorum/verified_votes.h"
#include "quorate/quorum/verifier.h"
#include "tests/support/sample_build_result.h"

namespace {

using namespace quorate;
using Clock = std::chrono::steady_clock;

constexpr int64_t kFinished = 1'790'000'000;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string build_result(size_t subject, const std::string& image, const std::string& config) {
  quorate::testing::SampleBuild b;
  b.commit = sha256_hex(std::to_string(subject)).substr(0, 40);
  b.image = image;
  b.manifest_digest = image;
  b.config_digest = config;
  b.started_on = format_rfc3339(kFinished - 30);
  b.finished_on = format_rfc3339(kFinished);
  return quorate::testing::sample_build_result(b);
}

// The raw rate: OpenSSL Ed25519 verifications of the same PAE bytes the attestations carry, nothing else.
double raw_verify_rate(const std::vector<std::string>& envelopes, const std::vector<attest::KeyPair>& keys,
                       size_t nodes) {
  std::vector<EVP_PKEY*> pkeys;
  for (const auto& k : keys) {
    std::string der = attest::PublicKey::from_pem(k.public_pem).value().spki_der();
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    pkeys.push_back(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  }
  struct Item {
    std::string pae, sig;
    EVP_PKEY* key;
  };
  std::vector<Item> items;
  size_t n = std::min<size_t>(envelopes.size(), 20000);
  for (size_t i = 0; i < n; ++i) {
    auto e = attest::parse_envelope(envelopes[i]).value();
    items.push_back({attest::pae(e.payload_type, e.payload), e.signatures[0].sig, pkeys[i % nodes]});
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t ok = 0;
  auto t0 = Clock::now();
  for (const auto& it : items) {
    EVP_MD_CTX_reset(ctx);
    EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, it.key);
    ok += EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(it.sig.data()), it.sig.size(),
                           reinterpret_cast<const unsigned char*>(it.pae.data()), it.pae.size()) == 1;
  }
  double s = since(t0);
  EVP_MD_CTX_free(ctx);
  for (auto* k : pkeys) EVP_PKEY_free(k);
  if (ok != items.size()) std::cerr << "raw verify: " << items.size() - ok << " failures\n";
  return static_cast<double>(items.size()) / s;
}

}  // namespace

int main(int argc, char** argv) {
  size_t subjects = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 10000;
  size_t nodes = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 5;
  size_t batch = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 500;
  unsigned threads = argc > 4 ? static_cast<unsigned>(std::strtoul(argv[4], nullptr, 10))
                              : std::max(2u, std::thread::hardware_concurrency());
  int rounds = argc > 5 ? std::max(1, std::atoi(argv[5])) : 5;
  std::string load_start = bench::load_average();
  std::string templ = (std::filesystem::temp_directory_path() / "quorum-bench.XXXXXX").string();
  std::filesystem::path dir = ::mkdtemp(templ.data());

  // Keys, policy.
  std::vector<attest::KeyPair> keys;
  std::vector<std::unique_ptr<attest::Signer>> signers;
  std::string policy = "threshold = " + std::to_string(nodes / 2 + 1) + "\n";
  for (size_t j = 0; j < nodes; ++j) {
    keys.push_back(attest::generate_key(attest::KeyType::kEd25519).value());
    signers.push_back(attest::signer_from_pem(keys.back().private_pem).value());
    policy += "[[nodes]]\nid = \"node-" + std::to_string(j) + "\"\npublic_key = \"\"\"\n" + keys.back().public_pem +
              "\"\"\"\n";
  }
  std::ofstream(dir / "policy.toml") << policy;
  auto verifier = quorum::Verifier::load(dir / "policy.toml");
  if (!verifier.ok()) {
    std::cerr << verifier.status().to_string() << "\n";
    return 2;
  }

  // Attestations: subject-major, as nodes' streams would interleave.
  auto t_sign = Clock::now();
  std::vector<std::string> envelopes;
  envelopes.reserve(subjects * nodes);
  for (size_t i = 0; i < subjects; ++i) {
    std::string image = sha256_digest("manifest" + std::to_string(i));
    std::string config = sha256_digest("config" + std::to_string(i));
    std::string result = build_result(i, image, config);
    for (size_t j = 0; j < nodes; ++j) {
      envelopes.push_back(attest::attest_build_result(result, *signers[j], "node-" + std::to_string(j)).value());
    }
  }
  double sign_s = since(t_sign);
  size_t total = envelopes.size();
  size_t envelope_bytes = 0;
  for (const auto& e : envelopes) envelope_bytes += e.size();

  double raw = raw_verify_rate(envelopes, keys, nodes);  // also warms up OpenSSL and the caches

  // Where the time goes, on the first 5,000 attestations: each step of verification alone.
  size_t probe = std::min<size_t>(total, 5000);
  auto per = [&](auto&& step) {
    auto t0 = Clock::now();
    for (size_t i = 0; i < probe; ++i) step(envelopes[i]);
    return since(t0) / static_cast<double>(probe) * 1e6;
  };
  double us_parse = per([](const std::string& e) { (void)attest::parse_envelope(e); });
  std::vector<attest::Envelope> parsed;
  for (size_t i = 0; i < probe; ++i) parsed.push_back(attest::parse_envelope(envelopes[i]).value());
  size_t idx = 0;
  double us_statement = per([&](const std::string&) { (void)attest::parse_statement(parsed[idx++ % probe].payload); });
  idx = 0;
  double us_serialize =
      per([&](const std::string&) { (void)sha256_digest(parsed[idx++ % probe].serialize().value()); });
  double us_verify = per([&](const std::string& e) { (void)verifier->verify(e); });
  std::vector<quorum::VerifiedAttestation> verified;
  for (size_t i = 0; i < probe; ++i) verified.push_back(verifier->verify(envelopes[i]).value());
  auto scratch = quorum::Store::open(dir / "scratch.db").value();
  auto t_store = Clock::now();
  for (size_t at = 0; at < probe; at += batch) {
    Status st = scratch->transaction([&] {
      for (size_t i = at; i < std::min(probe, at + batch); ++i) {
        const auto& v = verified[i];
        QR_TRY(scratch->add_attestation({0, v.envelope_digest, v.envelope, v.vote, v.started_on, kFinished}));
      }
      return Status();
    });
    if (!st.ok()) std::cerr << st.to_string() << "\n";
  }
  double us_store = since(t_store) / static_cast<double>(probe) * 1e6;
  scratch.reset();

  // Cold store: a new file, imported in batches (one transaction each), then every subject key decided and
  // the decisions recorded. Once with verification in the importing thread, once with `threads` verifiers.
  struct Run {
    double import_s = 0, decide_s = 0, cpu_s = 0;
    size_t stored = 0, decided = 0, accepted = 0;
  };
  auto cold_run = [&](unsigned n_threads, const std::string& name) -> Run {
    Run r;
    double cpu0 = bench::cpu_seconds(), wall0 = bench::wall_seconds();
    auto store = quorum::Store::open(dir / name).value();
    auto t_import = Clock::now();
    for (size_t at = 0; at < total; at += batch) {
      std::span<const std::string> part(envelopes.data() + at, std::min(batch, total - at));
      auto outcomes = quorum::import_attestations(*store, *verifier, part, kFinished + 60, {n_threads});
      if (!outcomes.ok()) {
        std::cerr << outcomes.status().to_string() << "\n";
        std::exit(2);
      }
      for (const auto& o : *outcomes) r.stored += o.kind == quorum::ImportOutcome::Kind::kStored;
    }
    r.import_s = since(t_import);
    auto t_decide = Clock::now();
    // As `quorate verify --store DB` does it: verify every stored envelope again (a store is not trusted),
    // decide every subject key, record every decision.
    quorum::VerifiedVotes votes(*store, *verifier, {n_threads});
    auto answer = quorum::answer(verifier->policy(), votes, {}, kFinished + 3600);
    if (!answer.ok()) {
      std::cerr << answer.status().to_string() << "\n";
      std::exit(2);
    }
    Status st = store->transaction([&] {
      for (const auto& d : answer->decisions) {
        r.accepted += d.accepted;
        QR_RETURN_IF_ERROR(store->add_decision(d));
      }
      return Status();
    });
    r.decide_s = since(t_decide);
    r.decided = answer->decisions.size();
    r.cpu_s = bench::cpu_seconds() - cpu0;
    bench::check_possible(("cold import + decide, " + std::to_string(n_threads) + " thread(s)").c_str(),
                          bench::wall_seconds() - wall0, r.cpu_s);
    store.reset();
    std::filesystem::remove(dir / name);
    if (!st.ok()) {
      std::cerr << st.to_string() << "\n";
      std::exit(2);
    }
    return r;
  };
  // Rounds: raw verify (the baseline), then the cold import with 1 thread and with `threads`.
  std::vector<double> raw_rates, single_rates, multi_rates, single_cpu, multi_cpu, r_single, r_multi;
  bool ok = true;
  for (int round = 0; round < rounds; ++round) {
    double base = raw_verify_rate(envelopes, keys, nodes);
    Run single = cold_run(1, "single.db");
    Run multi = cold_run(threads, "multi.db");
    ok = ok && single.stored == total && multi.stored == total && single.accepted == subjects &&
         multi.accepted == subjects;
    raw_rates.push_back(base);
    single_rates.push_back(static_cast<double>(total) / (single.import_s + single.decide_s));
    multi_rates.push_back(static_cast<double>(total) / (multi.import_s + multi.decide_s));
    single_cpu.push_back(single.cpu_s);
    multi_cpu.push_back(multi.cpu_s);
    r_single.push_back(single_rates.back() / base);
    r_multi.push_back(multi_rates.back() / base);
    std::fprintf(stderr, "  round %d: raw %.0f/s, 1 thread %.0f/s (%.2f CPU-s), %u threads %.0f/s (%.2f CPU-s)\n",
                 round + 1, base, single_rates.back(), single.cpu_s, threads, multi_rates.back(), multi.cpu_s);
  }

  std::printf(
      "quorum_bench: %zu subject keys x %zu nodes = %zu attestations (avg %zu bytes), batch %zu; %ld cores; "
      "load average %s at start, %s at the end; %d rounds\n",
      subjects, nodes, total, envelope_bytes / total, batch, sysconf(_SC_NPROCESSORS_ONLN), load_start.c_str(),
      bench::load_average().c_str(), rounds);
  std::printf("  signing (setup, not timed): %.1f s, %.0f/s\n", sign_s, static_cast<double>(total) / sign_s);
  std::printf(
      "  per attestation (first %zu, once): parse envelope %.1f us, parse statement %.1f us, serialize + digest "
      "%.1f us, Verifier::verify %.1f us (raw verify %.1f us), store insert %.1f us\n",
      probe, us_parse, us_statement, us_serialize, us_verify, 1e6 / raw, us_store);
  std::printf("  raw Ed25519 verify (OpenSSL, same PAE bytes, 1 thread, wall): %s\n",
              bench::describe(raw_rates, "/s").c_str());
  std::printf("  import + decide, 1 thread:  %s; %s\n", bench::describe(single_rates, "/s").c_str(),
              bench::describe(single_cpu, " CPU-s", "%.2f").c_str());
  std::printf("  import + decide, %u threads: %s; %s\n", threads, bench::describe(multi_rates, "/s").c_str(),
              bench::describe(multi_cpu, " CPU-s", "%.2f").c_str());
  // The raw rate is one thread's: under other load, `threads` threads get more of the machine than it did.
  bench::print_ratio("1 thread / raw verify", r_single, 0.5);
  bench::print_ratio((std::to_string(threads) + " threads / raw verify").c_str(), r_multi, 0.5);
  std::filesystem::remove_all(dir);
  return ok ? 0 : 1;
}
