// The two questions a release gate asks: "is this image accepted, and for which commit?" and "what was
// accepted for this commit?", answered from a set of votes or from a store.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "quorate/core/status.h"
#include "quorate/quorum/decision.h"
#include "quorate/quorum/policy.h"
#include "quorate/quorum/store.h"
#include "quorate/quorum/verified_votes.h"
#include "quorate/quorum/vote.h"

namespace quorate::quorum {

// Empty fields are not asked. With an image digest, the subject keys that have a vote for it are decided;
// with a commit (and optionally a repository), the subject keys of that commit; with neither, every one.
struct Question {
  std::string image_digest;
  std::string commit;
  std::string source_uri;
  // The content (config) digest of a published copy whose bytes were checked against it (imagestore::
  // resolve_image): yes when a decision accepted this content digest, i.e. under match = "content". Set
  // either this or image_digest.
  std::string content_digest;  // last: Question{image, commit, repo} stays as it was
  // Only subject keys with exactly these build args (their canonical text, core/build_args.h; "" asks for
  // the subjects built without any); nullopt: every set. Votes built with other args are other subjects' votes
  // and never count for these.
  std::optional<std::string> build_args;
};

struct Answer {
  std::vector<Decision> decisions;  // sorted by subject key
  // Image asked: some decision accepted it (it is among its image_digests). Otherwise: at least one
  // subject key was found and every one was accepted.
  bool yes = false;
  std::string summary;  // one line in words
};

// Decides the subject keys `question` concerns, from `votes`, under `policy` at `now`. bad_input when the
// image digest is not a "sha256:" digest.
Result<Answer> answer(const Policy& policy, std::span<const Vote> votes, const Question& question, int64_t now);
// A caller's memory of decisions (the verifier daemon's, issue 17). `known`: a decision made over every vote the
// store now holds for `subject` that decide() would still make at `now` (decided_until), or nullptr. `made`:
// a decision answer() made afresh, with the votes it was made from. `votes`: every vote the store now holds for
// `subject`, exactly as VerifiedVotes::votes() gives them (row order, each verified, refused rows left out),
// when the caller keeps them (the daemon's vote cache), or nullptr: answer() then reads them from the store.
// The pointer is valid until the next call on the memory.
class DecisionMemory {
 public:
  virtual ~DecisionMemory() = default;
  virtual const Decision* known(const SubjectKey& subject, int64_t now) = 0;
  virtual void made(const Decision& decision, std::span<const Vote> votes, int64_t now) = 0;
  virtual Result<const std::vector<Vote>*> votes(const SubjectKey& subject) {
    (void)subject;
    return nullptr;
  }
};

// The same from a store: reads the votes of the concerned subject keys only, each verified in this process
// (rows that do not verify are left out and remain in votes.take_distrusted()). With `memory`, a question by
// image or commit takes each subject key's decision from it when it knows one instead of deciding afresh.
Result<Answer> answer(const Policy& policy, VerifiedVotes& votes, const Question& question, int64_t now,
                      DecisionMemory* memory = nullptr);
// The same from decisions already made elsewhere (the verifier daemon's answer to a query, which holds the
// votes): `decisions` are those of the subject keys `question` concerns, made under `policy` (the caller
// checks their policy_digest); they are sorted by subject key and summarised exactly as above.
Result<Answer> answer_from_decisions(const Policy& policy, std::vector<Decision> decisions, const Question& question);

}  // namespace quorate::quorum
