// `quorate store import|list|show|check`: load attestations into a quorum store, inspect it, check it.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>

#include "quorate/cli/cli.h"
#include "quorate/core/display.h"
#include "quorate/core/file.h"
#include "quorate/core/json.h"
#include "quorate/core/sha256.h"
#include "quorate/core/time.h"
#include "quorate/quorum/store.h"
#include "quorate/quorum/verified_votes.h"
#include "quorate/quorum/verifier.h"

namespace quorate::cli {
namespace {

struct StoreArgs {
  std::string policy;
  std::string db;
  std::vector<std::string> files;
  std::string id;
  std::string now;
  bool json = false;
  unsigned threads = 1;
};

Result<int64_t> receive_time(const std::string& now) {
  if (!now.empty()) return parse_rfc3339(now);
  return static_cast<int64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

Result<std::unique_ptr<quorum::Store>> open_existing(const std::string& db) {
  if (!std::filesystem::exists(db)) return Status::not_found(db + ": no such store");
  return quorum::Store::open(db);
}

Status run_import(const StoreArgs& a) {
  int64_t now = QR_TRY(receive_time(a.now));
  quorum::Verifier verifier = QR_TRY(quorum::Verifier::load(a.policy));
  std::vector<std::string> bytes;
  for (const auto& f : a.files) bytes.push_back(QR_TRY(read_file(f)));
  auto store = QR_TRY(quorum::Store::open(a.db));
  auto outcomes = QR_TRY(quorum::import_attestations(*store, verifier, bytes, now, {a.threads}));
  std::string rejected;  // the rejected files, named in the failure
  size_t rejections = 0;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const auto& o = outcomes[i];
    std::cout << a.files[i] << ": " << quorum::import_kind_name(o.kind) << " " << o.envelope_digest;
    if (o.kind == quorum::ImportOutcome::Kind::kRejected) {
      std::cout << ": " << mask_control(o.reason.to_string());  // may quote the envelope
      rejected += (rejected.empty() ? "" : ", ") + a.files[i];
      ++rejections;
    }
    std::cout << "\n";
  }
  // Rejections are stored (store list shows them), and still a failure of the import: exit 1.
  if (rejections > 0) {
    return Status::verification(std::to_string(rejections) + " of " + std::to_string(outcomes.size()) +
                                " files rejected: " + rejected);
  }
  return Status();
}

nlohmann::json attestation_json(const quorum::StoredAttestation& s) {
  const auto& v = s.vote;
  nlohmann::json j = {{"kind", "attestation"},
                      {"envelope_digest", s.envelope_digest},
                      {"node_id", v.node_id},
                      {"keyid", v.keyid},
                      {"subject",
                       {{"source_uri", v.subject.source_uri},
                        {"commit", v.subject.commit},
                        {"recipe_path", v.subject.recipe_path},
                        {"source_date_epoch", v.subject.source_date_epoch}}},
                      {"image_digest", v.image_digest},
                      {"config_digest", v.config_digest},
                      {"started_on", format_rfc3339(s.started_on)},
                      {"finished_on", format_rfc3339(v.signed_at)},
                      {"received_at", format_rfc3339(s.received_at)}};
  // part of the subject key (core/build_args.h); absent when none
  if (!v.subject.build_args.empty()) j["subject"]["build_args"] = build_args_json(v.subject.build_args);
  return j;
}

nlohmann::json rejection_json(const quorum::Rejection& r) {
  nlohmann::json j = {{"kind", "rejection"},
                      {"envelope_digest", r.envelope_digest},
                      {"code", r.code},
                      {"reason", r.reason},
                      {"received_at", format_rfc3339(r.received_at)}};
  if (!r.publisher.empty()) j["publisher"] = r.publisher;
  return j;
}

// Listings are for people: a hostile byte in a stored reason shows as U+FFFD rather than stopping them.
std::string dump(const nlohmann::json& j) { return display_json(j, -1); }

// The first 16 hex digits of a "sha256:<hex>" digest, as listings show it; a stored digest of another form (a
// store edited by hand) whole, since it is the row's only name.
std::string short_digest(const std::string& digest) {
  constexpr size_t kPrefix = 7;  // "sha256:"
  if (!digest.starts_with("sha256:") || digest.size() < kPrefix + 16) return digest;
  return digest.substr(kPrefix, 16);
}

Status run_list(const StoreArgs& a) {
  auto store = QR_TRY(open_existing(a.db));
  auto attestations = QR_TRY(store->attestations());
  auto rejections = QR_TRY(store->rejections());
  auto decisions = QR_TRY(store->decisions());
  for (const auto& s : attestations) {
    if (a.json) {
      std::cout << dump(attestation_json(s)) << "\n";
      continue;
    }
    // Node ids, subjects and reasons are what envelopes and publishers said: each line masked.
    std::cout << mask_control("attestation " + short_digest(s.envelope_digest) + " " + s.vote.node_id + " " +
                              s.vote.subject.to_string() + " " + s.vote.image_digest)
              << "\n";
  }
  for (const auto& r : rejections) {
    if (a.json) {
      std::cout << dump(rejection_json(r)) << "\n";
      continue;
    }
    std::cout << mask_control("rejection   " + short_digest(r.envelope_digest) + " " + r.code + ": " + r.reason)
              << "\n";
  }
  for (const auto& d : decisions) {
    if (a.json) {
      std::cout << dump({{"kind", "decision"}, {"id", d.id}, {"decision", parse_untrusted_json(d.json)}}) << "\n";
      continue;
    }
    std::cout << mask_control("decision    " + std::to_string(d.id) + " " + format_rfc3339(d.decided_at) + " " +
                              d.subject.to_string() + " " +
                              (d.accepted ? "ACCEPTED " + d.digest : std::string("REJECTED")) + " policy " +
                              d.policy_digest)
              << "\n";
  }
  return Status();
}

// `sha256sum` of an envelope file quorate wrote hashes the canonical JSON plus the file's final newline: a
// full digest that names no row is also looked up as that.
Result<std::optional<quorum::StoredAttestation>> find_by_file_digest(quorum::Store& store, std::string id) {
  if (id.starts_with("sha256:")) id = id.substr(7);
  if (id.size() != 64 || id.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return std::optional<quorum::StoredAttestation>();
  }
  for (auto& row : QR_TRY(store.all_rows())) {  // rows without their envelopes: read each one
    std::string envelope = QR_TRY(store.envelope(row.id));
    if (sha256_hex(envelope + "\n") != id) continue;
    row.envelope = std::move(envelope);
    return std::optional<quorum::StoredAttestation>(std::move(row));
  }
  return std::optional<quorum::StoredAttestation>();
}

Status run_show(const StoreArgs& a) {
  auto store = QR_TRY(open_existing(a.db));
  auto found = QR_TRY(store->find_attestation(a.id));
  if (!found) found = QR_TRY(find_by_file_digest(*store, a.id));
  if (found) {
    nlohmann::json j = attestation_json(*found);
    j["envelope"] = parse_untrusted_json(found->envelope);
    std::cout << display_json(j, -1) << "\n";  // --json or not: one line (README)
    return Status();
  }
  auto rejected = QR_TRY(store->find_rejection(a.id));
  if (!rejected) return Status::not_found(a.db + ": no attestation or rejection '" + a.id + "'");
  nlohmann::json j = rejection_json(*rejected);
  j["bytes"] = rejected->envelope;
  std::cout << display_json(j, -1) << "\n";  // --json or not: one line (README)
  return Status();
}

// A store file is input like any other: one copied from elsewhere, restored from a backup or edited by hand
// may hold rows its envelopes do not support. Checks the file (SQLite's integrity check, every row filed under
// its subject and image; a file that fails it is bad input, exit 2), then, with a policy, every row's envelope
// against the policy's roster and the row's columns against what the envelope says, one subject at a time
// (rows that fail: exit 1, each listed).
Status run_check(const StoreArgs& a) {
  // Read only: never migrated or written, safe next to a verifier writing it.
  auto store = QR_TRY(quorum::Store::open_read_only(a.db));
  QR_RETURN_IF_ERROR(store->check_integrity().with_context("check"));
  const auto subjects = QR_TRY(store->subjects());
  if (a.policy.empty()) {
    std::cout << a.db << ": integrity ok, " << subjects.size()
              << " subject(s); envelopes not checked (give --policy to check them against its roster)\n";
    return Status();
  }
  quorum::Verifier verifier = QR_TRY(quorum::Verifier::load(a.policy));
  quorum::VerifiedVotes votes(*store, verifier, {a.threads});
  size_t rows = 0, distrusted = 0;
  for (const auto& subject : subjects) {
    std::vector<int64_t> ids;
    rows += QR_TRY(votes.votes(subject, ids)).size();
    for (const auto& r : votes.take_distrusted()) {
      ++distrusted;
      std::cout << a.db << ": attestation row " << r.id << " (" << mask_control(r.envelope_digest)
                << "): " << mask_control(r.reason) << "\n";
    }
  }
  if (distrusted > 0) {
    return Status::verification(a.db + ": " + std::to_string(distrusted) + " attestation row(s) not supported by " +
                                "their envelope under " + a.policy + " (listed above); " + std::to_string(rows) +
                                " verify");
  }
  std::cout << a.db << ": integrity ok, " << subjects.size() << " subject(s), " << rows
            << " attestation row(s): every envelope verifies against " << a.policy << " and matches its row\n";
  return Status();
}

}  // namespace

void add_store_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<StoreArgs>();
  auto* cmd = app.add_subcommand("store", "Load attestations into a quorum store and inspect it");
  cmd->require_subcommand(1);
  auto* import_cmd =
      cmd->add_subcommand("import", "Verify envelopes or bundles against the policy's roster and store them");
  import_cmd->add_option("--policy", args->policy, "Quorum policy file whose roster verifies the attestations")
      ->required();
  import_cmd->add_option("--now", args->now, "Record this RFC 3339 time as the time received (default: now)");
  import_cmd->add_option("--threads", args->threads, "Threads verifying signatures (default 1)")
      ->check(CLI::Range(1u, 256u));
  import_cmd->add_option("db", args->db, "Store (SQLite file; created if absent)")->required();
  import_cmd->add_option("files", args->files, "DSSE envelope or Sigstore bundle files")->required();
  import_cmd->callback([args, &action] { action = [args] { return run_import(*args); }; });
  auto* list = cmd->add_subcommand("list", "List attestations, rejections and decisions");
  list->add_option("db", args->db, "Store")->required();
  list->add_flag("--json", args->json, "One JSON object a line");
  list->callback([args, &action] { action = [args] { return run_list(*args); }; });
  auto* show = cmd->add_subcommand("show", "Show one attestation or rejection with its envelope");
  show->add_option("db", args->db, "Store")->required();
  show->add_option("id", args->id, "Envelope digest or a unique prefix of its hex")->required();
  show->callback([args, &action] { action = [args] { return run_show(*args); }; });
  auto* check = cmd->add_subcommand(
      "check", "Check a store file: SQLite integrity, every row filed; with --policy every envelope and row");
  check->add_option("--policy", args->policy, "Quorum policy file whose roster verifies every stored envelope");
  check->add_option("--threads", args->threads, "Threads verifying signatures (default 1)")
      ->check(CLI::Range(1u, 256u));
  check->add_option("db", args->db, "Store")->required();
  check->callback([args, &action] { action = [args] { return run_check(*args); }; });
}

}  // namespace quorate::cli
