// Verifier: a policy file's rules and roster; attestations verified through attest and imported into the store.
#include "quorate/quorum/verifier.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_set>

#include "quorate/attest/roster.h"
#include "quorate/core/build_args.h"
#include "quorate/core/file.h"
#include "quorate/core/sha256.h"

namespace quorate::quorum {
namespace {

std::vector<TrustedKey> trusted_keys(const std::vector<attest::RosterEntry>& entries) {
  std::vector<TrustedKey> keys;
  for (const auto& e : entries) keys.push_back({e.node_id, e.key.keyid(), e.not_before, e.not_after, e.revoked_at});
  return keys;
}

using VoteFingerprint = std::array<char, 32>;

// Every column a decision reads, delimited so that no two votes share a fingerprint.
VoteFingerprint vote_fingerprint(const Vote& v, int64_t started_on) {
  Sha256 h;
  for (const std::string* f :
       {&v.envelope_digest, &v.node_id, &v.keyid, &v.subject.source_uri, &v.subject.commit, &v.subject.recipe_path,
        &v.image_digest, &v.config_digest, &v.run_environment, &v.subject.build_args}) {
    h.update(std::to_string(f->size()) + ":");
    h.update(*f);
    h.update(";");
  }
  h.update(std::to_string(v.signed_at) + ";" + std::to_string(started_on) + ";" +
           std::to_string(v.subject.source_date_epoch));
  std::string raw = h.finish_raw();
  VoteFingerprint out{};
  std::memcpy(out.data(), raw.data(), std::min(raw.size(), out.size()));
  return out;
}

struct VoteFingerprintHash {
  size_t operator()(const VoteFingerprint& f) const {
    size_t x;
    std::memcpy(&x, f.data(), sizeof x);  // a SHA-256: any of its bytes are a good hash
    return x;
  }
};

}  // namespace

struct Verifier::Impl {
  attest::Roster roster;
  Policy policy;
  // Two generations: when `vouched` holds kVouchedGeneration votes it becomes `vouched_before` (the one before
  // is forgotten), so a verifier that runs for months remembers a bounded number of votes, the latest ones.
  mutable std::mutex vouched_mu;
  mutable std::unordered_set<VoteFingerprint, VoteFingerprintHash> vouched, vouched_before;
};

void Verifier::vouch(const Vote& vote, int64_t started_on) const {
  VoteFingerprint f = vote_fingerprint(vote, started_on);
  std::lock_guard<std::mutex> lock(impl_->vouched_mu);
  if (impl_->vouched.size() >= kVouchedGeneration) {
    impl_->vouched_before = std::move(impl_->vouched);
    impl_->vouched = {};
  }
  impl_->vouched.insert(f);
}

bool Verifier::vouched(const Vote& vote, int64_t started_on) const {
  VoteFingerprint f = vote_fingerprint(vote, started_on);
  std::lock_guard<std::mutex> lock(impl_->vouched_mu);
  return impl_->vouched.count(f) != 0 || impl_->vouched_before.count(f) != 0;
}

size_t Verifier::vouched_count() const {
  std::lock_guard<std::mutex> lock(impl_->vouched_mu);
  return impl_->vouched.size() + impl_->vouched_before.size();
}

Verifier::Verifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Verifier::Verifier(Verifier&&) noexcept = default;
Verifier& Verifier::operator=(Verifier&&) noexcept = default;
Verifier::~Verifier() = default;

const Policy& Verifier::policy() const { return impl_->policy; }

Result<Verifier> Verifier::load(const std::filesystem::path& policy_path) {
  std::string text = QR_TRY(read_regular_file(policy_path, 1u << 20));  // a daemon's config names it
  const std::string what = policy_path.string();
  QuorumRules rules = QR_TRY(parse_rules(text, what));
  std::vector<attest::RosterEntry> entries = QR_TRY(attest::roster_or_policy_entries(text, policy_path));
  Trust trust = QR_TRY(Trust::create(trusted_keys(entries)));
  auto impl = std::make_unique<Impl>();
  impl->policy = QR_TRY(Policy::create(std::move(rules), std::move(trust), what));
  impl->roster = QR_TRY(attest::Roster::create(std::move(entries)));
  return Verifier(std::move(impl));
}

Checked Verifier::check(std::string_view bytes, const std::string& publisher) const {
  attest::Verdict verdict = impl_->roster.verify(bytes);
  Checked c;
  c.failure = verdict.failure;
  c.status = verdict.status;
  if (!verdict.attestation) return c;
  const attest::Attestation& a = *verdict.attestation;
  if (verdict.ok() && !publisher.empty() && a.node_id != publisher) {
    c.failure = attest::Failure::kNotPublisher;
    c.status = Status::verification("signer is not the publishing node: signed by '" + a.node_id + "', published by '" +
                                    publisher + "'");
    return c;
  }
  const attest::Statement& s = a.statement;
  auto envelope = a.envelope.serialize();
  if (!envelope.ok()) {  // a parsed envelope always serializes; kept as a refusal rather than an assumption
    c.failure = attest::Failure::kMalformed;
    c.status = envelope.status();
    return c;
  }
  auto build_args = build_args_text(s.build_args);  // parse_statement checked them; kept as a refusal too
  if (!build_args.ok()) {
    c.failure = attest::Failure::kMalformed;
    c.status = build_args.status();
    return c;
  }
  VerifiedAttestation& v = c.attestation.emplace();
  v.envelope = std::move(envelope).value();
  v.envelope_digest = sha256_digest(v.envelope);
  v.vote = {a.node_id,
            a.keyid,
            {s.source_uri, s.commit, s.recipe_path, s.source_date_epoch, std::move(build_args).value()},
            s.image_digest,
            s.config_digest,
            s.finished_on,
            v.envelope_digest,
            s.run_environment};
  v.started_on = s.started_on;
  return c;
}

Result<VerifiedAttestation> Verifier::verify(std::string_view bytes) const {
  Checked c = check(bytes);
  if (!c.ok()) return c.status;
  return std::move(*c.attestation);
}

const char* import_kind_name(ImportOutcome::Kind k) {
  switch (k) {
    case ImportOutcome::Kind::kStored:
      return "stored";
    case ImportOutcome::Kind::kDuplicate:
      return "duplicate";
    case ImportOutcome::Kind::kRejected:
      return "rejected";
  }
  return "?";
}

std::vector<Checked> check_all(const Verifier& verifier, std::span<const Incoming> attestations, unsigned threads) {
  // Each thread takes the next attestation not taken yet and writes only its slot: the result does not depend on
  // scheduling, and a thread that got less CPU (a nicer one, or one the loop's thread preempted) does not leave
  // a share of the batch for the end while the other cores idle (issue 17: at every n-th attestation per thread
  // the last one of a batch often ran alone).
  std::vector<std::optional<Checked>> checked(attestations.size());
  const size_t n = std::max<size_t>(1, std::min<size_t>(threads, attestations.size()));
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < attestations.size(); i = next++) {
      checked[i].emplace(verifier.check(attestations[i].bytes, attestations[i].publisher));
    }
  };
  std::vector<std::thread> workers;
  try {
    for (size_t t = 1; t < n; ++t) workers.emplace_back(work);
  } catch (const std::system_error&) {
    // No more threads: the ones that started (and this one) take every slot.
  }
  work();
  for (auto& w : workers) w.join();
  std::vector<Checked> out;
  out.reserve(attestations.size());
  for (auto& c : checked) out.push_back(std::move(*c));  // work() in this thread ran until every slot was taken
  return out;
}

Result<std::vector<ImportOutcome>> import_attestations(Store& store, const Verifier& verifier,
                                                       std::span<const Incoming> attestations, int64_t received_at,
                                                       const ImportOptions& options) {
  // Verify outside the transaction, so the write lock is held only for the inserts.
  return store_checked(store, verifier, attestations, check_all(verifier, attestations, options.threads), received_at);
}

Result<std::vector<ImportOutcome>> store_checked(Store& store, const Verifier& verifier,
                                                 std::span<const Incoming> attestations,
                                                 std::span<const Checked> checked, int64_t received_at) {
  if (checked.size() != attestations.size())
    return Status::internal("store_checked: " + std::to_string(checked.size()) + " checks for " +
                            std::to_string(attestations.size()) + " attestations");
  std::vector<ImportOutcome> outcomes;
  Status st = store.transaction([&]() -> Status {
    outcomes.clear();
    for (size_t i = 0; i < attestations.size(); ++i) {
      ImportOutcome o;
      const Checked& c = checked[i];
      if (c.ok()) {
        const VerifiedAttestation& v = *c.attestation;
        StoredAttestation row{0, v.envelope_digest, v.envelope, v.vote, v.started_on, received_at};
        bool fresh = QR_TRY(store.add_attestation(row));
        o.kind = fresh ? ImportOutcome::Kind::kStored : ImportOutcome::Kind::kDuplicate;
        o.envelope_digest = v.envelope_digest;
        o.subject = v.vote.subject;
        o.vote = v.vote;
        o.started_on = v.started_on;
      } else {
        o.kind = ImportOutcome::Kind::kRejected;
        o.failure = c.failure;
        o.reason = c.status;
        std::string bytes(attestations[i].bytes);
        o.envelope_digest = sha256_digest(bytes);
        Rejection r{0,           o.envelope_digest,        bytes, code_name(o.reason.code()), o.reason.message(),
                    received_at, attestations[i].publisher};
        QR_TRY(store.add_rejection(r));
      }
      outcomes.push_back(std::move(o));
    }
    return Status();
  });
  QR_RETURN_IF_ERROR(st);
  // Stored or already there: the row's columns are this vote's (a duplicate's row may say otherwise when the
  // store was tampered with; then its fingerprint differs and VerifiedVotes checks it).
  for (const auto& o : outcomes) {
    if (o.vote) verifier.vouch(*o.vote, o.started_on);
  }
  return outcomes;
}

Result<std::vector<ImportOutcome>> import_attestations(Store& store, const Verifier& verifier,
                                                       std::span<const std::string> attestations, int64_t received_at,
                                                       const ImportOptions& options) {
  std::vector<Incoming> incoming;
  incoming.reserve(attestations.size());
  for (const auto& a : attestations) incoming.push_back({a, {}});
  return import_attestations(store, verifier, incoming, received_at, options);
}

}  // namespace quorate::quorum
