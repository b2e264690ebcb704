// Verifier: a policy file's rules and roster; attestations verified through attest and imported into the store.
#include "quorate/quorum/verifier.h"

#include <toml++/toml.h>

#include <algorithm>
#include <system_error>
#include <thread>

#include "quorate/attest/roster.h"
#include "quorate/core/file.h"
#include "quorate/core/sha256.h"

namespace quorate::quorum {
namespace {

// The policy's `roster = "file"`, resolved against the policy file's directory; empty when absent.
Result<std::filesystem::path> roster_path(std::string_view text, const std::filesystem::path& policy_path) {
  toml::table table;
  try {
    table = toml::parse(text, policy_path.string());
  } catch (const toml::parse_error& e) {
    return Status::bad_input(policy_path.string() + ": " + std::string(e.description()));
  }
  const toml::node* n = table.get("roster");
  if (n == nullptr) return std::filesystem::path();
  if (!n->is_string()) return Status::bad_input(policy_path.string() + ": 'roster' must be a file path");
  std::filesystem::path p(n->as_string()->get());
  return p.is_absolute() ? p : policy_path.parent_path() / p;
}

std::vector<TrustedKey> trusted_keys(const std::vector<attest::RosterEntry>& entries) {
  std::vector<TrustedKey> keys;
  for (const auto& e : entries) keys.push_back({e.node_id, e.key.keyid(), e.not_before, e.not_after, e.revoked_at});
  return keys;
}

}  // namespace

struct Verifier::Impl {
  attest::Roster roster;
  Policy policy;
};

Verifier::Verifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Verifier::Verifier(Verifier&&) noexcept = default;
Verifier& Verifier::operator=(Verifier&&) noexcept = default;
Verifier::~Verifier() = default;

const Policy& Verifier::policy() const { return impl_->policy; }

Result<Verifier> Verifier::load(const std::filesystem::path& policy_path) {
  std::string text = QR_TRY(read_file(policy_path, 1u << 20));
  const std::string what = policy_path.string();
  QuorumRules rules = QR_TRY(parse_rules(text, what));
  std::vector<attest::RosterEntry> entries = QR_TRY(attest::parse_roster_nodes(text, policy_path));
  std::filesystem::path extra = QR_TRY(roster_path(text, policy_path));
  if (!extra.empty()) {
    attest::Roster from_file = QR_TRY(attest::Roster::load(extra));
    entries.insert(entries.end(), from_file.entries().begin(), from_file.entries().end());
  }
  Trust trust = QR_TRY(Trust::create(trusted_keys(entries)));
  auto impl = std::make_unique<Impl>();
  impl->policy = QR_TRY(Policy::create(std::move(rules), std::move(trust), what));
  impl->roster = QR_TRY(attest::Roster::create(std::move(entries)));
  return Verifier(std::move(impl));
}

Result<VerifiedAttestation> Verifier::verify(std::string_view bytes) const {
  attest::Verdict verdict = impl_->roster.verify(bytes);
  if (!verdict.ok()) return verdict.status;
  const attest::Attestation& a = *verdict.attestation;
  const attest::Statement& s = a.statement;
  VerifiedAttestation v;
  v.envelope = a.envelope.serialize();
  v.envelope_digest = sha256_digest(v.envelope);
  v.vote = {a.node_id, a.keyid, {s.source_uri, s.commit, s.recipe_path}, s.image_digest, s.config_digest,
            s.finished_on, v.envelope_digest};
  v.started_on = s.started_on;
  return v;
}

const char* import_kind_name(ImportOutcome::Kind k) {
  switch (k) {
    case ImportOutcome::Kind::kStored: return "stored";
    case ImportOutcome::Kind::kDuplicate: return "duplicate";
    case ImportOutcome::Kind::kRejected: return "rejected";
  }
  return "?";
}

Result<std::vector<ImportOutcome>> import_attestations(Store& store, const Verifier& verifier,
                                                       std::span<const std::string> attestations, int64_t received_at,
                                                       const ImportOptions& options) {
  // Verify outside the transaction, so the write lock is held only for the inserts. Each thread takes every
  // n-th attestation and writes only its own slots: the result does not depend on scheduling.
  std::vector<std::optional<Result<VerifiedAttestation>>> verified(attestations.size());
  const size_t n = std::max<size_t>(1, std::min<size_t>(options.threads, attestations.size()));
  auto work = [&](size_t first) {
    for (size_t i = first; i < attestations.size(); i += n) verified[i].emplace(verifier.verify(attestations[i]));
  };
  std::vector<std::thread> workers;
  try {
    for (size_t t = 1; t < n; ++t) workers.emplace_back(work, t);
  } catch (const std::system_error&) {
    // No more threads: the slots of the ones that did not start are filled below.
  }
  work(0);
  for (auto& w : workers) w.join();
  for (size_t i = 0; i < attestations.size(); ++i) {
    if (!verified[i]) verified[i].emplace(verifier.verify(attestations[i]));
  }
  std::vector<ImportOutcome> outcomes;
  Status st = store.transaction([&]() -> Status {
    outcomes.clear();
    for (size_t i = 0; i < attestations.size(); ++i) {
      ImportOutcome o;
      const Result<VerifiedAttestation>& result = *verified[i];
      if (result.ok()) {
        const VerifiedAttestation& v = result.value();
        StoredAttestation row{0, v.envelope_digest, v.envelope, v.vote, v.started_on, received_at};
        bool fresh = QR_TRY(store.add_attestation(row));
        o.kind = fresh ? ImportOutcome::Kind::kStored : ImportOutcome::Kind::kDuplicate;
        o.envelope_digest = v.envelope_digest;
        o.subject = v.vote.subject;
      } else {
        o.kind = ImportOutcome::Kind::kRejected;
        o.reason = result.status();
        o.envelope_digest = sha256_digest(attestations[i]);
        Rejection r{0, o.envelope_digest, attestations[i], code_name(o.reason.code()), o.reason.message(), received_at};
        QR_TRY(store.add_rejection(r));
      }
      outcomes.push_back(std::move(o));
    }
    return Status();
  });
  QR_RETURN_IF_ERROR(st);
  return outcomes;
}

}  // namespace quorate::quorum
