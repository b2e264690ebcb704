// store_bench: the cost of storing attestations on the writing thread (quorum::Store), with SQLite's automatic
// checkpoint inside COMMIT (A, the baseline) against the Store's background checkpointer (B).
//
// Each run creates a new store under $TMPDIR (default /tmp) and inserts ROWS synthetic attestation rows (a ~3 KB
// envelope each, random-looking digests and commits, NODES rows per subject) in transactions of BATCH rows, as
// the verifier daemon's Judge::commit does; the store is closed (final checkpoint) outside the timed span. Runs
// alternate A B A B ... after a warm-up pair (bench_stats.h); besides wall and process CPU seconds, each side
// prints the writing thread's CPU microseconds per row (the verifier's main thread is the bottleneck) and, for
// B, the largest WAL a commit left and how often the writer had to checkpoint itself.
//
// Usage: store_bench [ROWS [BATCH [PAIRS [NODES]]]]   (defaults 30000 500 5 5)
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_stats.h"
#include "quorate/core/sha256.h"
#include "quorate/quorum/store.h"

namespace {

using namespace quorate;

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::vector<quorum::StoredAttestation> make_rows(size_t n, size_t nodes) {
  std::vector<quorum::StoredAttestation> rows;
  rows.reserve(n);
  std::string filler;
  for (int i = 0; filler.size() < 3000; ++i) filler += sha256_hex("filler" + std::to_string(i));
  filler.resize(3000);
  for (size_t i = 0; i < n; ++i) {
    const size_t subject = i / nodes, node = i % nodes;
    quorum::StoredAttestation a;
    a.envelope_digest = "sha256:" + sha256_hex("envelope " + std::to_string(i));
    // Distinct bytes per row (SQLite does not deduplicate, but keep the content honest).
    a.envelope = "{\"payload\":\"" + a.envelope_digest + filler + "\"}";
    a.vote.envelope_digest = a.envelope_digest;
    a.vote.node_id = "node-" + std::to_string(node);
    a.vote.keyid = sha256_hex("key " + std::to_string(node)).substr(0, 16);
    a.vote.subject = {"https://git.example/repo-" + std::to_string(subject % 50) + ".git",
                      sha256_hex("commit " + std::to_string(subject)).substr(0, 40), "Containerfile"};
    a.vote.subject.source_date_epoch = 1'700'000'000;
    a.vote.image_digest = "sha256:" + sha256_hex("image " + std::to_string(subject));
    a.vote.config_digest = "sha256:" + sha256_hex("config " + std::to_string(subject));
    a.vote.run_environment = "image";
    a.vote.signed_at = 1'790'000'000;
    a.started_on = 1'789'999'970;
    a.received_at = 1'790'000'060;
    rows.push_back(std::move(a));
  }
  return rows;
}

struct Extra {
  std::vector<double> writer_us_per_row;
  int largest_wal_pages = 0;
  int64_t writer_checkpoints = 0, background_checkpoints = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 30000;
  const size_t batch = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 500;
  const int pairs = argc > 3 ? std::atoi(argv[3]) : 5;
  const size_t nodes = argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 5;
  if (n == 0 || batch == 0 || pairs <= 0 || nodes == 0) {
    std::fprintf(stderr, "usage: store_bench [ROWS [BATCH [PAIRS [NODES]]]]\n");
    return 2;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::filesystem::path dir = std::filesystem::path(tmp && *tmp ? tmp : "/tmp") / "store_bench";
  std::filesystem::create_directories(dir);
  const auto rows = make_rows(n, nodes);

  bool ok = true;
  Extra ea, eb;
  auto run = [&](bool background, Extra& extra) {
    const auto path = dir / (background ? "b.db" : "a.db");
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
    quorum::StoreOptions options;
    options.background_checkpoint = background;
    auto store = quorum::Store::open(path, options).value();
    bench::Timer timer;
    const double t0 = thread_cpu_seconds();
    for (size_t i = 0; i < n; i += batch) {
      Status st = store->transaction([&]() -> Status {
        for (size_t j = i; j < std::min(n, i + batch); ++j) {
          if (!QR_TRY(store->add_attestation(rows[j]))) return Status::internal("duplicate row");
        }
        return Status();
      });
      if (!st.ok()) {
        std::fprintf(stderr, "store_bench: %s\n", st.message().c_str());
        ok = false;
        break;
      }
    }
    const double writer = thread_cpu_seconds() - t0;
    bench::Run r = timer.stop(static_cast<double>(n));
    auto stats = store->checkpoint_stats();
    store.reset();
    extra.writer_us_per_row.push_back(writer / static_cast<double>(n) * 1e6);
    extra.largest_wal_pages = std::max(extra.largest_wal_pages, stats.largest_wal_pages);
    extra.writer_checkpoints += stats.writer;
    extra.background_checkpoints += stats.background;
    return r;
  };
  char title[200];
  std::snprintf(title, sizeof title, "store_bench: %zu rows (~3 KB envelopes, %zu per subject), %zu per transaction", n,
                nodes, batch);
  auto c = bench::alternate(
      title, "writer checkpoints (autocheckpoint)", [&] { return run(false, ea); }, "background checkpointer",
      [&] { return run(true, eb); }, pairs, 1, "rows", bench::where(dir.string()));
  bench::report(c);
  std::printf("  A writing thread: %s\n", bench::describe(ea.writer_us_per_row, " us/row", "%.1f").c_str());
  std::printf("  B writing thread: %s\n", bench::describe(eb.writer_us_per_row, " us/row", "%.1f").c_str());
  std::vector<double> ratio;
  for (size_t i = 1; i < ea.writer_us_per_row.size() && i < eb.writer_us_per_row.size(); ++i)
    ratio.push_back(eb.writer_us_per_row[i] / ea.writer_us_per_row[i]);  // the warm-up pair left out
  bench::print_ratio("writing thread CPU per row, B/A per pair", ratio);
  std::printf("  B: largest WAL %d pages; %lld background checkpoints, %lld by the writer itself (all runs)\n",
              eb.largest_wal_pages, static_cast<long long>(eb.background_checkpoints),
              static_cast<long long>(eb.writer_checkpoints));
  for (const char* name : {"a.db", "b.db"})
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(dir / (std::string(name) + suffix));
  return ok ? 0 : 1;
}
