// quorate audit: per Git commit, who attested what, whether they agree, and what looks wrong.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "quorate/core/status.h"
#include "quorate/quorum/decision.h"
#include "quorate/quorum/policy.h"
#include "quorate/quorum/store.h"
#include "quorate/quorum/verifier.h"

namespace quorate::audit {

// A commit's own signature, as far as the tools on this machine can check it. gpg's verdict is read as git
// reads it (gpg-interface.c), and a signature block must hold one signature. The statuses:
//   "unsigned"           the commit has no signature
//   "good"               GOODSIG: it verifies, by a key valid now; detail gives the key's trust ("trust: undefined",
//                        "never", "marginal", "fully" or "ultimate"), which does not change the status, as in git
//   "bad"                BADSIG: it does not verify; or the block holds more than one signature (detail: how many)
//   "expired signature"  EXPSIG: it verifies, but the signature has expired
//   "expired key"        EXPKEYSIG: it verifies, by a key that has expired
//   "revoked key"        REVKEYSIG: it verifies, by a key that has been revoked
//   "not checked"        ERRSIG (no public key, an algorithm gpg lacks), no gpg, gpg past its deadline or its
//                        output bound; ssh, x509 and unknown signatures. detail says why
struct CommitSignature {
  std::string kind;    // "none", "gpg", "ssh", "x509", "unknown"
  std::string status;  // as above
  std::string signer;  // who (gpg: key id and user id), when known
  std::string detail;  // why it is not good or was not checked; a good one's trust
};

// How long gpg may take over one commit's signature unless AuditOptions::gpg_deadline says otherwise.
inline constexpr std::chrono::seconds kGpgDeadline{10};

// Attestations for one subject key (repository, commit, recipe) of a commit.
struct SubjectAudit {
  quorum::SubjectKey subject;
  std::vector<quorum::Vote> votes;           // sorted by node id, then envelope digest
  bool agree = false;                        // every vote names the same image digest
  std::optional<quorum::Decision> decision;  // under the policy, when one was given
};

struct CommitAudit {
  std::string id;
  std::string summary;  // the first paragraph of the message, lines joined; cut after 4096 bytes ("[N more bytes]")
  int64_t time = 0;     // committer time
  CommitSignature signature;
  bool shallow = false;  // a shallow clone's boundary: its parents are not in the repository, the walk ends here
  std::vector<SubjectAudit> subjects;  // empty: no attestations for this commit
};

// Something an auditor must look at first.
struct RedFlag {
  std::string kind;  // "unknown-commit": an attestation names a commit the repository does not have;
                     // "source-mismatch": it names a commit of this repository under another source URI;
                     // "distrusted": (with a verifier) a stored row whose envelope does not verify under the
                     // policy or whose columns differ from its envelope; it is left out of everything else
  std::string commit;
  std::string source_uri;
  std::string node_id;
  std::string envelope_digest;
  std::string detail;
};

struct AuditReport {
  std::string repository;  // as given
  std::string source_uri;  // what attestations of this repository name
  // Every vote rests on an envelope verified under a policy (AuditOptions::verifier); false: the store's rows
  // as stored, which whoever had the file could have written, and every report says so.
  bool verified = false;
  std::vector<RedFlag> red_flags;
  std::vector<CommitAudit> commits;  // in walk order (newest first)
};

struct AuditOptions {
  std::string repo;        // local path (working clone or bare) or file:// URL
  std::string range;       // "REV" (first-parent history of REV) or "A..B"; empty = HEAD
  size_t max_count = 100;  // commits walked at most
  std::string source_uri;  // default: `repo` as given, as the builder records it
  // When set, every vote rests on its envelope verified here (quorum::VerifiedVotes) and decisions are
  // computed under its policy; when null, the store's rows are reported as stored, unverified.
  const quorum::Verifier* verifier = nullptr;
  int64_t now = 0;  // the time decisions are made at
  // The gpg program that checks commit signatures (the CLI finds it on $PATH); empty: gpg signatures are
  // reported "not checked", "gpg is not installed".
  std::filesystem::path gpg;
  // How long gpg may take over one signature: what it reads comes from the repository, which is hostile input.
  // Past it gpg is killed and the signature is "not checked".
  std::chrono::seconds gpg_deadline = kGpgDeadline;
  std::filesystem::path temp_dir;  // where gpg's inputs are written; empty: /tmp
};

// Walks the commits and reads the store. not_found for a missing repository or revision; bad_input naming the
// commit for a history that cannot be read (a missing or corrupt object: the report would otherwise end there
// as if the history did) and for a revision that names no commit. A shallow clone's history ends at its
// boundary commits, which are marked.
Result<AuditReport> run_audit(quorum::Store& store, const AuditOptions& options);

nlohmann::json to_json(const AuditReport& report);
std::string to_text(const AuditReport& report);
std::string to_markdown(const AuditReport& report);

}  // namespace quorate::audit
