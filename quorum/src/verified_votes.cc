// VerifiedVotes: store rows checked against envelopes verified in this process (the Verifier's fingerprints).
#include "quorate/quorum/verified_votes.h"

#include <algorithm>

namespace quorate::quorum {
VerifiedVotes::VerifiedVotes(Store& store, const Verifier& verifier, Options options)
    : store_(store), verifier_(verifier), options_(options) {}

Result<std::vector<Vote>> VerifiedVotes::votes(const SubjectKey& subject) {
  return verified(QR_TRY(store_.rows(subject)));
}

Result<std::vector<Vote>> VerifiedVotes::votes(const SubjectKey& subject, std::vector<int64_t>& row_ids) {
  return verified(QR_TRY(store_.rows(subject)), &row_ids);
}

Result<std::vector<Vote>> VerifiedVotes::votes_after(const SubjectKey& subject, int64_t after_id,
                                                     std::vector<int64_t>& row_ids, int64_t& last_id) {
  std::vector<StoredAttestation> rows = QR_TRY(store_.rows(subject, after_id));
  for (const auto& r : rows) last_id = std::max(last_id, r.id);
  return verified(std::move(rows), &row_ids);
}

Result<std::vector<Vote>> VerifiedVotes::all_votes() { return verified(QR_TRY(store_.all_rows())); }

Result<std::vector<bool>> VerifiedVotes::check_rows(std::span<const StoredAttestation> rows) {
  std::vector<size_t> unknown;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!verifier_.vouched(rows[i].vote, rows[i].started_on)) unknown.push_back(i);
  }
  std::vector<std::string> envelopes;
  for (size_t i : unknown) envelopes.push_back(QR_TRY(store_.envelope(rows[i].id)));
  std::vector<Incoming> incoming;
  for (const auto& e : envelopes) incoming.push_back({e, {}});
  std::vector<Checked> checked = check_all(verifier_, incoming, options_.threads);
  std::vector<bool> refused(rows.size(), false);
  for (size_t j = 0; j < unknown.size(); ++j) {
    const StoredAttestation& row = rows[unknown[j]];
    const Checked& c = checked[j];
    std::string why;
    // A good signature by a roster key whose key does not vouch at that time (revoked, expired, another node's)
    // is still the vote it was: the engine voids it and says why. Anything else that fails is not a vote.
    if (!c.attestation) {
      why = "its envelope does not verify: " + c.status.message();
    } else if (c.attestation->vote != row.vote || c.attestation->started_on != row.started_on) {
      why = "its columns differ from what its envelope says (envelope " + c.attestation->envelope_digest + ")";
    }
    if (why.empty()) {
      verifier_.vouch(row.vote, row.started_on);
      continue;
    }
    refused[unknown[j]] = true;
    distrusted_.push_back({row.id, row.envelope_digest, std::move(why)});
  }
  return refused;
}

Result<std::vector<Vote>> VerifiedVotes::verified(std::vector<StoredAttestation> rows, std::vector<int64_t>* row_ids) {
  const std::vector<bool> refused = QR_TRY(check_rows(rows));
  std::vector<Vote> out;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (refused[i]) continue;
    out.push_back(std::move(rows[i].vote));
    if (row_ids) row_ids->push_back(rows[i].id);
  }
  return out;
}

Result<std::vector<std::vector<Vote>>> VerifiedVotes::votes_after_each(std::span<const After> wanted) {
  std::vector<StoredAttestation> rows;
  std::vector<size_t> ends;  // where each subject's rows end in `rows`
  for (const auto& w : wanted) {
    for (auto& r : QR_TRY(store_.rows(w.subject, w.after_id))) rows.push_back(std::move(r));
    ends.push_back(rows.size());
  }
  const std::vector<bool> refused = QR_TRY(check_rows(rows));
  std::vector<std::vector<Vote>> out(wanted.size());
  size_t i = 0;
  for (size_t k = 0; k < wanted.size(); ++k) {
    for (; i < ends[k]; ++i) {
      *wanted[k].last_id = std::max(*wanted[k].last_id, rows[i].id);
      if (refused[i]) continue;
      out[k].push_back(std::move(rows[i].vote));
      wanted[k].row_ids->push_back(rows[i].id);
    }
  }
  return out;
}

std::vector<DistrustedRow> VerifiedVotes::take_distrusted() {
  std::vector<DistrustedRow> out = std::move(distrusted_);
  distrusted_.clear();
  std::sort(out.begin(), out.end(), [](const DistrustedRow& a, const DistrustedRow& b) { return a.id < b.id; });
  out.erase(
      std::unique(out.begin(), out.end(), [](const DistrustedRow& a, const DistrustedRow& b) { return a.id == b.id; }),
      out.end());
  return out;
}

}  // namespace quorate::quorum
