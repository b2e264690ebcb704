// quorum_bench: 10,000 subject keys x 5 nodes = 50,000 Ed25519-signed attestations imported into a cold store
// (verified against the roster, stored) and decided; reports attestations/s against the raw Ed25519 verify rate
// of the same PAE bytes in this process (bench/raw_verify.h; goal: at least 50% of it).
//
// Runs alternate ours with the baseline (a warm-up pair, then ROUNDS pairs A B A B ...): first the cold import +
// decide with THREADS verifying threads, then with 1. Each side prints min/median/max of wall and CPU seconds
// and of its rate, the per-pair ratios of the rates, the load average and where the store lives
// (bench_stats.h). The store is a file under $TMPDIR (default /tmp); TMPDIR=/dev/shm puts it on tmpfs.
//
// Usage: quorum_bench [SUBJECTS [NODES [BATCH [THREADS [ROUNDS]]]]]   (defaults 10000 5 500, hardware threads, 5)
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
#include "raw_verify.h"
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

  // The baseline: OpenSSL's Ed25519 verify of the PAE bytes of (up to) the first 20,000 attestations.
  std::vector<std::string> public_pems;
  for (const auto& k : keys) public_pems.push_back(k.public_pem);
  bench::RawVerify raw_verify(public_pems);
  for (size_t i = 0; i < std::min<size_t>(total, 20000); ++i) {
    auto e = attest::parse_envelope(envelopes[i]).value();
    raw_verify.add(attest::pae(e.payload_type, e.payload), e.signatures[0].sig, i % nodes);
  }
  double raw = raw_verify.run().per_wall();  // once for the per-step figures below; warms up OpenSSL

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
  bool ok = true;
  auto cold_run = [&](unsigned n_threads, const std::string& name) -> bench::Run {
    auto store = quorum::Store::open(dir / name).value();
    bench::Timer timer;
    size_t stored = 0, accepted = 0;
    for (size_t at = 0; at < total; at += batch) {
      std::span<const std::string> part(envelopes.data() + at, std::min(batch, total - at));
      auto outcomes = quorum::import_attestations(*store, *verifier, part, kFinished + 60, {n_threads});
      if (!outcomes.ok()) {
        std::cerr << outcomes.status().to_string() << "\n";
        std::exit(2);
      }
      for (const auto& o : *outcomes) stored += o.kind == quorum::ImportOutcome::Kind::kStored;
    }
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
        accepted += d.accepted;
        QR_RETURN_IF_ERROR(store->add_decision(d));
      }
      return Status();
    });
    bench::Run run = timer.stop(static_cast<double>(total));
    store.reset();
    std::filesystem::remove(dir / name);
    if (!st.ok()) {
      std::cerr << st.to_string() << "\n";
      std::exit(2);
    }
    ok = ok && stored == total && accepted == subjects;
    return run;
  };
  auto baseline = [&] { return raw_verify.run(); };
  std::string raw_name =
      "raw Ed25519 verify (OpenSSL, same PAE bytes, 1 thread, " + std::to_string(raw_verify.size()) + " per run)";
  std::string files = bench::where(dir.string());
  auto multi = bench::alternate(
      "cold import + decide with " + std::to_string(threads) + " verifying threads against " + raw_name,
      "import + decide, " + std::to_string(threads) + " threads", [&] { return cold_run(threads, "multi.db"); },
      raw_name, baseline, rounds, 1, "attestations", files);
  auto single = bench::alternate(
      "cold import + decide with 1 thread against " + raw_name, "import + decide, 1 thread",
      [&] { return cold_run(1, "single.db"); }, raw_name, baseline, rounds, 1, "attestations", files);

  std::printf(
      "quorum_bench: %zu subject keys x %zu nodes = %zu attestations (avg %zu bytes), batch %zu; %ld cores; "
      "load average %s at start, %s at the end; %d pairs\n",
      subjects, nodes, total, envelope_bytes / total, batch, bench::cores(), load_start.c_str(),
      bench::load_average().c_str(), rounds);
  std::printf("  signing (setup, not timed): %.1f s, %.0f/s\n", sign_s, static_cast<double>(total) / sign_s);
  std::printf(
      "  per attestation (first %zu, once): parse envelope %.1f us, parse statement %.1f us, serialize + digest "
      "%.1f us, Verifier::verify %.1f us (raw verify %.1f us), store insert %.1f us\n",
      probe, us_parse, us_statement, us_serialize, us_verify, 1e6 / raw, us_store);
  // The raw rate is one thread's: under other load, `threads` threads get more of the machine than it did, and the
  // CPU-second ratio is the one that does not move with load.
  bench::report(multi, 0.5, bench::Basis::kWall);
  bench::report(single, 0.5, bench::Basis::kWall);
  if (!ok) std::printf("  ERROR: a cold run did not store every attestation or accept every subject key\n");
  std::filesystem::remove_all(dir);
  return ok ? 0 : 1;
}
