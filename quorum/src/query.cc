// Answers to the release gate's questions: pick the concerned subject keys, decide each, summarise.
#include "quorate/quorum/query.h"

#include <algorithm>
#include <map>
#include <set>

#include "quorate/core/build_args.h"
#include "quorate/core/sha256.h"

namespace quorate::quorum {
namespace {

// The subject keys a question is about: those with a vote for the image (when asked), narrowed to the commit
// and source (when given).
bool concerns_subject(const Question& q, const SubjectKey& s) {
  if (!q.commit.empty() && s.commit != q.commit) return false;
  if (q.build_args && s.build_args != *q.build_args) return false;
  return q.source_uri.empty() || s.source_uri == q.source_uri;
}
bool concerns(const Question& q, const Vote& v) {
  if (!q.image_digest.empty() && v.image_digest != q.image_digest) return false;
  if (!q.content_digest.empty() && v.config_digest != q.content_digest) return false;
  return concerns_subject(q, v.subject);
}

std::string describe(const Question& q) {
  std::string commit =
      q.commit.empty() ? "" : "commit " + q.commit + (q.source_uri.empty() ? "" : " of " + q.source_uri);
  if (q.build_args) {
    const std::string args = q.build_args->empty() ? " without build args" : describe_build_args(*q.build_args);
    Question rest = q;
    rest.build_args.reset();
    return describe(rest) + args;
  }
  if (!q.image_digest.empty()) return "image " + q.image_digest + (commit.empty() ? "" : " for " + commit);
  if (!q.content_digest.empty()) return "content " + q.content_digest + (commit.empty() ? "" : " for " + commit);
  if (!commit.empty()) return commit;
  return "the attestations given";
}

void summarise(Answer& a, const Question& q, const Policy& policy) {
  std::vector<std::string> accepted_for;
  for (const auto& d : a.decisions) {
    if (!d.accepted) continue;
    bool has_image =
        q.image_digest.empty() || std::binary_search(d.image_digests.begin(), d.image_digests.end(), q.image_digest);
    // Under match = "content" the accepted digest is the content digest; under "image" it never is one.
    if (!q.content_digest.empty()) has_image = d.digest == q.content_digest;
    if (has_image) accepted_for.push_back(d.subject.to_string());
  }
  if (a.decisions.empty()) {
    a.yes = false;
    a.summary = "nothing attested for " + describe(q);
  } else if (!q.image_digest.empty() || !q.content_digest.empty()) {
    const std::string& asked = q.image_digest.empty() ? q.content_digest : q.image_digest;
    a.yes = !accepted_for.empty();
    a.summary = a.yes ? asked + " is accepted for " + accepted_for.front() +
                            (accepted_for.size() > 1 ? " and " + std::to_string(accepted_for.size() - 1) + " more" : "")
                      : describe(q) + " is not accepted (" + std::to_string(a.decisions.size()) +
                            " subject key(s) decided)" +
                            (!q.content_digest.empty() && policy.rules().match == MatchMode::kImage
                                 ? "; the policy's match = \"image\" accepts only the attested manifest digest: a "
                                   "re-encoded copy (Docker media types, another compression) needs match = \"content\""
                                 : "");
  } else {
    a.yes = accepted_for.size() == a.decisions.size();
    a.summary = std::to_string(accepted_for.size()) + " of " + std::to_string(a.decisions.size()) +
                " subject key(s) accepted for " + describe(q);
  }
}

}  // namespace

Result<Answer> answer(const Policy& policy, std::span<const Vote> votes, const Question& q, int64_t now) {
  if (!q.image_digest.empty()) QR_RETURN_IF_ERROR(check_digest(q.image_digest).with_context("--image"));
  if (!q.content_digest.empty()) QR_RETURN_IF_ERROR(check_digest(q.content_digest).with_context("content digest"));
  std::set<SubjectKey> keys;
  for (const auto& v : votes) {
    if (concerns(q, v)) keys.insert(v.subject);
  }
  Answer a;
  for (const auto& k : keys) a.decisions.push_back(decide(policy, k, votes, now));
  summarise(a, q, policy);
  return a;
}

Result<Answer> answer(const Policy& policy, VerifiedVotes& source, const Question& q, int64_t now,
                      DecisionMemory* memory) {
  Store& store = source.store();
  if (!q.image_digest.empty()) QR_RETURN_IF_ERROR(check_digest(q.image_digest).with_context("--image"));
  if (!q.content_digest.empty()) QR_RETURN_IF_ERROR(check_digest(q.content_digest).with_context("content digest"));
  Answer a;
  if (!q.content_digest.empty()) {
    // By content: one scan of the store (config digests are not indexed), keeping the subject keys with a vote
    // for that content; each is decided on all of its votes.
    std::vector<Vote> votes = QR_TRY(source.all_votes());
    std::map<SubjectKey, std::vector<Vote>> by_subject;
    std::set<SubjectKey> concerned;
    for (auto& v : votes) {
      if (concerns(q, v)) concerned.insert(v.subject);
      by_subject[v.subject].push_back(std::move(v));
    }
    for (const auto& k : concerned) a.decisions.push_back(decide(policy, k, by_subject[k], now));
  } else if (q.image_digest.empty() && q.commit.empty()) {
    // Everything (or one repository): one scan of the store instead of a query per subject key.
    std::vector<Vote> votes = QR_TRY(source.all_votes());
    std::map<SubjectKey, std::vector<Vote>> by_subject;
    for (auto& v : votes) {
      if (concerns_subject(q, v.subject)) by_subject[v.subject].push_back(std::move(v));
    }
    for (const auto& [k, subject_votes] : by_subject) a.decisions.push_back(decide(policy, k, subject_votes, now));
  } else {
    std::vector<SubjectKey> keys = !q.image_digest.empty() ? QR_TRY(store.subjects_with_image(q.image_digest))
                                                           : QR_TRY(store.subjects_with_commit(q.commit, q.source_uri));
    std::erase_if(keys, [&](const SubjectKey& k) { return !concerns_subject(q, k); });
    for (const auto& k : keys) {
      if (const Decision* d = memory ? memory->known(k, now) : nullptr) {
        a.decisions.push_back(*d);
        continue;
      }
      // The caller's votes of the subject when it keeps them (the same votes as the store's, read once), else
      // the store's.
      const std::vector<Vote>* kept = memory ? QR_TRY(memory->votes(k)) : nullptr;
      std::vector<Vote> read;
      if (kept == nullptr) {
        read = QR_TRY(source.votes(k));
        kept = &read;
      }
      a.decisions.push_back(decide(policy, k, *kept, now));
      if (memory) memory->made(a.decisions.back(), *kept, now);
    }
  }
  summarise(a, q, policy);
  return a;
}

Result<Answer> answer_from_decisions(const Policy& policy, std::vector<Decision> decisions, const Question& q) {
  if (!q.image_digest.empty()) QR_RETURN_IF_ERROR(check_digest(q.image_digest).with_context("--image"));
  if (!q.content_digest.empty()) QR_RETURN_IF_ERROR(check_digest(q.content_digest).with_context("content digest"));
  Answer a;
  a.decisions = std::move(decisions);
  std::sort(a.decisions.begin(), a.decisions.end(),
            [](const Decision& x, const Decision& y) { return x.subject < y.subject; });
  for (auto& d : a.decisions) std::sort(d.image_digests.begin(), d.image_digests.end());  // binary_search below
  summarise(a, q, policy);
  return a;
}

}  // namespace quorate::quorum
