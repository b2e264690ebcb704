// run_audit: libgit2 history walk joined with the attestation store; text, JSON and Markdown reports.
#include "quorate/audit/audit.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include "quorate/core/build_args.h"
#include "quorate/core/display.h"
#include "quorate/core/file.h"
#include "quorate/core/process.h"
#include "quorate/core/temporaries.h"
#include "quorate/core/time.h"
#include "quorate/git/git.h"
#include "quorate/quorum/verified_votes.h"

namespace quorate::audit {
namespace {

std::string local_path(const std::string& repo) {
  constexpr std::string_view kFile = "file://";
  return repo.rfind(kFile, 0) == 0 ? repo.substr(kFile.size()) : repo;
}

// gpg's verdicts on a signature (its doc/DETAILS): it prints one of these status lines for each signature it
// checks, and each is a status of ours (audit.h).
struct GpgVerdict {
  std::string_view keyword;
  const char* status;
  const char* detail;  // for all but GOODSIG (whose detail is the trust) and ERRSIG (see verdict_of)
};
constexpr GpgVerdict kGpgVerdicts[] = {
    {"GOODSIG", "good", ""},
    {"BADSIG", "bad", "the signature does not match the commit"},
    {"EXPSIG", "expired signature", "the signature has expired"},
    {"EXPKEYSIG", "expired key", "the signing key has expired"},
    {"REVKEYSIG", "revoked key", "the signing key has been revoked"},
    {"ERRSIG", "not checked", ""},
};

// What gpg's status lines ("[GNUPG:] KEYWORD ARGS") say of one signature block.
struct GpgStatusLines {
  size_t new_signatures = 0;         // NEWSIG lines: gpg prints one before each signature it reads
  size_t verdicts = 0;               // lines of kGpgVerdicts: one for each signature
  const GpgVerdict* last = nullptr;  // the last of them
  std::string args;                  // its arguments: key id and user id (ERRSIG: key id, algorithms, …, code)
  std::string trust;                 // of the TRUST_ line, as git names it ("undefined" … "ultimate"); empty: none
  std::string no_pubkey;             // the key id of a NO_PUBKEY line
};

// gpg's trust levels, in its words and in git's.
constexpr std::pair<std::string_view, const char*> kGpgTrustLevels[] = {
    {"TRUST_UNDEFINED", "undefined"}, {"TRUST_NEVER", "never"},       {"TRUST_MARGINAL", "marginal"},
    {"TRUST_FULLY", "fully"},         {"TRUST_ULTIMATE", "ultimate"},
};

// Only lines that begin "[GNUPG:] " are read: gpg writes them, and escapes what the signer chose (user ids,
// notations) so that it cannot begin a line.
GpgStatusLines read_status_lines(const std::string& output) {
  constexpr std::string_view kPrefix = "[GNUPG:] ";
  GpgStatusLines s;
  std::istringstream lines(output);
  for (std::string text; std::getline(lines, text);) {
    const std::string_view line(text);
    if (line.substr(0, kPrefix.size()) != kPrefix) continue;
    const std::string_view rest = line.substr(kPrefix.size());
    const size_t space = std::min(rest.find(' '), rest.size());
    const std::string_view keyword = rest.substr(0, space), args = rest.substr(std::min(space + 1, rest.size()));
    if (keyword == "NEWSIG") ++s.new_signatures;
    if (keyword == "NO_PUBKEY") s.no_pubkey = args;
    for (const auto& [level, name] : kGpgTrustLevels) {
      if (keyword == level) s.trust = name;
    }
    for (const auto& verdict : kGpgVerdicts) {
      if (keyword != verdict.keyword) continue;
      ++s.verdicts;
      s.last = &verdict;
      s.args = args;
    }
  }
  return s;
}

// Why gpg could not check a signature: ERRSIG's arguments are the key id, public key and hash algorithms,
// signature class, time and an error code (9: no public key, 4: an algorithm gpg does not have).
std::string errsig_detail(const GpgStatusLines& s) {
  std::istringstream words(s.args);
  std::vector<std::string> fields{std::istream_iterator<std::string>(words), std::istream_iterator<std::string>()};
  const std::string code = fields.size() > 5 ? fields[5] : "";
  if (code == "9" || !s.no_pubkey.empty()) {
    return "no public key for " + (s.no_pubkey.empty() ? fields[0] : s.no_pubkey) + " in the keyring";
  }
  if (code == "4") return "gpg does not have the signature's algorithm (ERRSIG " + s.args + ")";
  return "gpg could not check the signature (ERRSIG " + s.args + ")";
}

// The signature the status lines describe. More than one signature in the block is "bad", whatever each one's
// verdict, as git refuses it: the last line alone would let a good signature hide a bad one before it.
CommitSignature verdict_of(const GpgStatusLines& s, const ProcessResult& run) {
  CommitSignature sig{"gpg", "not checked", "", ""};
  if (const size_t signatures = std::max(s.new_signatures, s.verdicts); signatures > 1) {
    sig.status = "bad";
    sig.detail = "the signature block holds " + std::to_string(signatures) + " signatures; git accepts one only";
    return sig;
  }
  if (s.last == nullptr) {
    sig.detail = "gpg gave no verdict (it " + describe_wait_status(run.wait_status) + ")";
    return sig;
  }
  sig.status = s.last->status;
  sig.signer = s.args;
  sig.detail = s.last->detail;
  if (s.last->keyword == "ERRSIG") {
    sig.signer = s.args.substr(0, s.args.find(' '));
    sig.detail = errsig_detail(s);
  } else if (s.last->keyword == "GOODSIG" && !run.succeeded()) {
    sig.status = "not checked";
    sig.detail = "gpg printed GOODSIG but " + describe_wait_status(run.wait_status);
  } else if (s.last->keyword == "GOODSIG") {
    sig.detail = s.trust.empty() ? "gpg gave no trust level" : "trust: " + s.trust;
  }
  return sig;
}

// Bounds gpg's output: a signature's notations are the signer's text, which gpg prints on status lines.
constexpr size_t kMaxGpgOutputBytes = 1u << 20;

// What `gpg --verify` says of a detached signature over `data`: both are written into a private temporary
// directory under options.temp_dir, and gpg is run by argv (no shell) within options.gpg_deadline and
// kMaxGpgOutputBytes, its status lines read from stdout.
CommitSignature check_gpg(const std::string& signature, const std::string& data, const AuditOptions& options) {
  CommitSignature sig{"gpg", "not checked", "", ""};
  if (options.gpg.empty()) {
    sig.detail = "gpg is not installed";
    return sig;
  }
  auto dir = TempDir::create(temp_parent(options.temp_dir), "quorate-audit.");
  if (!dir.ok()) {
    sig.detail = "no temporary directory";
    return sig;
  }
  const auto sig_file = dir->path() / "sig", data_file = dir->path() / "data";
  Status written = write_file_atomic(sig_file, signature);
  if (written.ok()) written = write_file_atomic(data_file, data);
  std::optional<ProcessResult> run;
  if (written.ok()) {
    ProcessSpec spec;
    spec.argv = {options.gpg.string(), "--batch",         "--no-tty",        "--status-fd", "1",
                 "--verify",           sig_file.string(), data_file.string()};
    spec.stderr_to = Stderr::kDiscard;
    spec.max_output_bytes = kMaxGpgOutputBytes;
    spec.deadline = std::chrono::steady_clock::now() + options.gpg_deadline;
    if (auto r = run_process(spec); r.ok()) run = std::move(*r);
  }
  if (!run) {
    sig.detail = "gpg could not be run";
  } else if (run->ending == ProcessEnding::kTimedOut) {
    sig.detail = "gpg did not answer within " + std::to_string(options.gpg_deadline.count()) + " s";
  } else if (run->ending == ProcessEnding::kOutputCut) {
    sig.detail = "gpg printed more than " + std::to_string(kMaxGpgOutputBytes >> 20) + " MiB";
  } else if (run->ending != ProcessEnding::kExited) {
    sig.detail = "gpg was stopped";
  } else {
    return verdict_of(read_status_lines(run->output), *run);
  }
  return sig;
}

CommitSignature commit_signature(git_repository* repo, const git_oid* oid, const AuditOptions& options) {
  git_buf signature = GIT_BUF_INIT;
  git_buf data = GIT_BUF_INIT;
  int rc = git_commit_extract_signature(&signature, &data, repo, const_cast<git_oid*>(oid), nullptr);
  if (rc == GIT_ENOTFOUND) return {"none", "unsigned", "", ""};
  if (rc != 0) return {"unknown", "not checked", "", git::last_error()};
  std::string sig(signature.ptr, signature.size);
  std::string signed_data(data.ptr, data.size);
  git_buf_dispose(&signature);
  git_buf_dispose(&data);
  if (sig.rfind("-----BEGIN PGP SIGNATURE-----", 0) == 0) return check_gpg(sig, signed_data, options);
  if (sig.rfind("-----BEGIN SSH SIGNATURE-----", 0) == 0) {
    return {"ssh", "not checked", "", "ssh signatures are checked against an allowed-signers file, none given"};
  }
  if (sig.rfind("-----BEGIN SIGNED MESSAGE-----", 0) == 0) return {"x509", "not checked", "", "no x509 verifier"};
  return {"unknown", "not checked", "", "unrecognised signature format"};
}

// A commit's summary as reports show it: libgit2's (the first paragraph, its lines joined), cut at
// kMaxSummaryBytes on a UTF-8 boundary. A message is as long as its author likes and compresses to almost
// nothing: 40 commits of 16 MiB each fit in a 3 MB repository, and kept whole they took a report to 2 GB.
constexpr size_t kMaxSummaryBytes = 4096;

std::string cut_summary(const char* summary) {
  if (summary == nullptr) return "";
  std::string_view s(summary);
  if (s.size() <= kMaxSummaryBytes) return std::string(s);
  size_t end = kMaxSummaryBytes;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xc0) == 0x80) --end;  // not inside a sequence
  return std::string(s.substr(0, end)) + " [" + std::to_string(s.size() - end) + " more bytes]";
}

class History {
 public:
  static Result<std::unique_ptr<History>> open(const std::string& repo) {
    auto h = std::unique_ptr<History>(new History());
    h->name_ = repo;
    QR_RETURN_IF_ERROR(git::open_repository(local_path(repo), h->repo_, repo));
    QR_RETURN_IF_ERROR(h->read_shallow());
    return h;
  }

  Result<std::vector<CommitAudit>> walk(const AuditOptions& options) {
    std::vector<CommitAudit> out;
    if (options.range.find("..") != std::string::npos) {
      QR_RETURN_IF_ERROR(walk_range(options, out));
    } else {
      QR_RETURN_IF_ERROR(walk_first_parents(options, out));
    }
    return out;
  }

  bool has_commit(const std::string& hex) {
    git_oid oid;
    if (hex.size() != GIT_OID_HEXSZ || git_oid_fromstr(&oid, hex.c_str()) != 0) return false;
    git::Ptr<git_commit, git_commit_free> commit;
    return git_commit_lookup(&commit.p, repo_.p, &oid) == 0;
  }

  bool shallow() const { return !shallow_.empty(); }

 private:
  History() = default;

  // A shallow clone lists the commits whose parents it did not fetch in its "shallow" file: the history this
  // repository holds ends at them, and a walk stops there rather than fail on a parent that is not here.
  Status read_shallow() {
    if (git_repository_is_shallow(repo_.p) != 1) return Status();
    const auto file = std::filesystem::path(git_repository_commondir(repo_.p)) / "shallow";
    auto text = read_regular_file(file, kMaxShallowBytes);
    if (!text.ok()) return text.status().with_context("repository " + name_ + ": shallow clone");
    std::istringstream lines(*text);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty()) shallow_.insert(line);
    }
    return Status();
  }

  Status unreadable(const std::string& what) const {
    return Status::bad_input("repository " + name_ + ": " + what + ": " + git::last_error() +
                             (shallow() ? " (a shallow clone)" : ""));
  }

  CommitAudit describe(git_commit* commit, const AuditOptions& options) {
    const git_oid* oid = git_commit_id(commit);
    CommitAudit c;
    c.id = git::oid_hex(oid);
    c.summary = cut_summary(git_commit_summary(commit));
    c.time = static_cast<int64_t>(git_commit_time(commit));
    c.signature = commit_signature(repo_.p, oid, options);
    c.shallow = shallow_.count(c.id) != 0;
    return c;
  }

  // The first-parent history of one revision, read a commit at a time from the tip: max_count bounds the
  // work, however long the history is (a revision walk sorts all of it before it yields the first commit:
  // 3 s and 196 MB for 3 commits of a 300,000-commit history). A commit that cannot be read is bad input.
  Status walk_first_parents(const AuditOptions& options, std::vector<CommitAudit>& out) {
    const std::string rev = options.range.empty() ? "HEAD" : options.range;
    git::Ptr<git_object, git_object_free> obj, peeled;
    if (git_revparse_single(&obj.p, repo_.p, rev.c_str()) != 0) {
      return Status::not_found("revision \"" + rev + "\": " + git::last_error());
    }
    if (git_object_peel(&peeled.p, obj.p, GIT_OBJECT_COMMIT) != 0) {
      return Status::bad_input("revision \"" + rev + "\" does not name a commit: " + git::last_error());
    }
    git_oid oid = *git_object_id(peeled.p);
    while (out.size() < options.max_count) {
      git::Ptr<git_commit, git_commit_free> commit;
      if (git_commit_lookup(&commit.p, repo_.p, &oid) != 0) {
        const std::string id = git::oid_hex(&oid);
        return unreadable(out.empty() ? "commit " + id : "commit " + id + ", first parent of " + out.back().id);
      }
      out.push_back(describe(commit.p, options));
      if (out.back().shallow || git_commit_parentcount(commit.p) == 0) break;
      oid = *git_commit_parent_id(commit.p, 0);
    }
    return Status();
  }

  // "A..B": libgit2's walk, which marks what A reaches; an error on the way (a missing or corrupt object, a
  // shallow clone's missing parents) is bad input, not the end of the history.
  Status walk_range(const AuditOptions& options, std::vector<CommitAudit>& out) {
    const std::string& range = options.range;
    git::Ptr<git_revwalk, git_revwalk_free> walk;
    if (git_revwalk_new(&walk.p, repo_.p) != 0) return Status::internal(git::last_error());
    git_revwalk_sorting(walk.p, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME);
    if (git_revwalk_push_range(walk.p, range.c_str()) != 0) {
      return Status::not_found("revision range \"" + range + "\": " + git::last_error());
    }
    git_revwalk_simplify_first_parent(walk.p);
    git_oid oid;
    int rc = 0;
    while (out.size() < options.max_count && (rc = git_revwalk_next(&oid, walk.p)) == 0) {
      git::Ptr<git_commit, git_commit_free> commit;
      if (git_commit_lookup(&commit.p, repo_.p, &oid) != 0) return unreadable("commit " + git::oid_hex(&oid));
      out.push_back(describe(commit.p, options));
    }
    if (rc != 0 && rc != GIT_ITEROVER) return unreadable("the history of \"" + range + "\" cannot be walked");
    return Status();
  }

  static constexpr uint64_t kMaxShallowBytes = 64u << 20;

  git::Library lib_;
  git::Repository repo_;
  std::string name_;
  std::set<std::string> shallow_;
};

std::string short_digest(const std::string& d) { return d.size() > 19 ? d.substr(0, 19) : d; }

std::string votes_summary(const SubjectAudit& s) {
  std::set<std::string> nodes;
  for (const auto& v : s.votes) nodes.insert(v.node_id);
  std::string out = std::to_string(nodes.size()) + (nodes.size() == 1 ? " node" : " nodes");
  out += s.agree ? ", agree" : ", DISAGREE";
  if (s.decision) out += s.decision->accepted ? ": accepted " + short_digest(s.decision->digest) : ": rejected";
  return out;
}

// The directory a source URI names when it is local: a plain path or a file:// URL; empty for remote ones
// (scheme://…, or scp-like host:path).
std::filesystem::path local_dir(const std::string& uri) {
  if (uri.rfind("file://", 0) == 0) return uri.substr(7);
  auto colon = uri.find(':');
  if (colon != std::string::npos && colon < uri.find('/')) return {};
  return uri;
}

// Whether two source URIs name the same repository: equal, or the same local directory named two ways
// ("hello", "/srv/git/hello", "file:///srv/git/hello").
bool same_source(const std::string& a, const std::string& b) {
  if (a == b) return true;
  auto pa = local_dir(a), pb = local_dir(b);
  if (pa.empty() || pb.empty()) return false;
  std::error_code ea, eb;
  auto ca = std::filesystem::weakly_canonical(std::filesystem::absolute(pa, ea), ea);
  auto cb = std::filesystem::weakly_canonical(std::filesystem::absolute(pb, eb), eb);
  return !ea && !eb && ca == cb;
}

}  // namespace

Result<AuditReport> run_audit(quorum::Store& store, const AuditOptions& options) {
  auto history = QR_TRY(History::open(options.repo));
  AuditReport report;
  report.repository = options.repo;
  report.source_uri = options.source_uri.empty() ? options.repo : options.source_uri;
  report.verified = options.verifier != nullptr;
  report.commits = QR_TRY(history->walk(options));

  std::map<std::string, std::map<quorum::SubjectKey, std::vector<quorum::Vote>>> by_commit;
  std::vector<quorum::Vote> all;
  if (options.verifier) {
    quorum::VerifiedVotes verified(store, *options.verifier);
    all = QR_TRY(verified.all_votes());
    for (const auto& r : verified.take_distrusted()) {
      report.red_flags.push_back(
          {"distrusted", "", "", "", r.envelope_digest, "store row " + std::to_string(r.id) + " ignored: " + r.reason});
    }
  } else {
    for (auto& row : QR_TRY(store.all_rows())) all.push_back(std::move(row.vote));
  }
  for (auto& vote : all) {
    const bool ours = same_source(vote.subject.source_uri, report.source_uri);
    const bool known = history->has_commit(vote.subject.commit);
    if (ours && !known) {
      report.red_flags.push_back({"unknown-commit", vote.subject.commit, vote.subject.source_uri, vote.node_id,
                                  vote.envelope_digest,
                                  "the repository has no commit " + vote.subject.commit +
                                      (history->shallow() ? " (it is a shallow clone: the commit may be older than "
                                                            "the history it holds)"
                                                          : "")});
    } else if (!ours && known) {
      report.red_flags.push_back({"source-mismatch", vote.subject.commit, vote.subject.source_uri, vote.node_id,
                                  vote.envelope_digest,
                                  "names a commit of this repository under source " + vote.subject.source_uri});
    }
    if (known) by_commit[vote.subject.commit][vote.subject].push_back(std::move(vote));
  }
  std::sort(report.red_flags.begin(), report.red_flags.end(), [](const RedFlag& a, const RedFlag& b) {
    return std::tie(a.kind, a.commit, a.node_id, a.envelope_digest) <
           std::tie(b.kind, b.commit, b.node_id, b.envelope_digest);
  });

  for (auto& commit : report.commits) {
    auto found = by_commit.find(commit.id);
    if (found == by_commit.end()) continue;
    for (auto& [subject, votes] : found->second) {
      SubjectAudit s;
      s.subject = subject;
      std::sort(votes.begin(), votes.end(), [](const quorum::Vote& a, const quorum::Vote& b) {
        return std::tie(a.node_id, a.envelope_digest) < std::tie(b.node_id, b.envelope_digest);
      });
      s.votes = votes;
      s.agree = std::all_of(votes.begin(), votes.end(),
                            [&](const quorum::Vote& v) { return v.image_digest == votes.front().image_digest; });
      if (options.verifier) s.decision = quorum::decide(options.verifier->policy(), subject, votes, options.now);
      commit.subjects.push_back(std::move(s));
    }
  }
  return report;
}

namespace {

// Without a policy the rows are shown as the store holds them: a store file is input like any other, and one
// edited by hand can list any node as agreeing.
constexpr const char* kUnverified =
    "NOT VERIFIED: attestations as the store holds them; give --policy to verify each envelope against a roster";

// A signature as the text and Markdown reports show it: its status, then who made it and why it is not good
// (or a good one's trust) in parentheses, as far as they are known.
std::string describe_signature(const CommitSignature& s) {
  std::string about = s.signer;
  if (!s.detail.empty()) about += (about.empty() ? "" : "; ") + s.detail;
  return about.empty() ? s.status : s.status + " (" + about + ")";
}

}  // namespace

nlohmann::json to_json(const AuditReport& report) {
  nlohmann::json out;
  out["repository"] = report.repository;
  out["source_uri"] = report.source_uri;
  out["verified"] = report.verified;
  out["red_flags"] = nlohmann::json::array();
  for (const auto& f : report.red_flags) {
    out["red_flags"].push_back({{"kind", f.kind},
                                {"commit", f.commit},
                                {"source_uri", f.source_uri},
                                {"node_id", f.node_id},
                                {"envelope_digest", f.envelope_digest},
                                {"detail", f.detail}});
  }
  out["commits"] = nlohmann::json::array();
  for (const auto& c : report.commits) {
    nlohmann::json jc{{"commit", c.id},
                      {"summary", c.summary},
                      {"time", format_rfc3339(c.time)},
                      {"signature",
                       {{"kind", c.signature.kind},
                        {"status", c.signature.status},
                        {"signer", c.signature.signer},
                        {"detail", c.signature.detail}}}};
    jc["shallow"] = c.shallow;
    jc["attested"] = !c.subjects.empty();
    jc["subjects"] = nlohmann::json::array();
    for (const auto& s : c.subjects) {
      nlohmann::json js{{"source_uri", s.subject.source_uri},
                        {"recipe_path", s.subject.recipe_path},
                        {"source_date_epoch", s.subject.source_date_epoch},
                        {"agree", s.agree}};
      // Part of the key (core/build_args.h): an object, absent when there are none, as in decisions.
      if (!s.subject.build_args.empty()) js["build_args"] = build_args_json(s.subject.build_args);
      js["attestations"] = nlohmann::json::array();
      for (const auto& v : s.votes) {
        js["attestations"].push_back({{"node_id", v.node_id},
                                      {"keyid", v.keyid},
                                      {"image_digest", v.image_digest},
                                      {"config_digest", v.config_digest},
                                      {"signed_at", format_rfc3339(v.signed_at)},
                                      {"envelope_digest", v.envelope_digest}});
      }
      if (s.decision) {
        auto decision = s.decision->to_json();
        js["decision"] =
            decision.ok() ? nlohmann::json::parse(*decision) : nlohmann::json(decision.status().to_string());
      }
      jc["subjects"].push_back(std::move(js));
    }
    out["commits"].push_back(std::move(jc));
  }
  return out;
}

// Every field that comes from the repository or the store is masked (core/display.h): a commit message is
// written by whoever made the commit, and must not rewrite the auditor's terminal.
std::string to_text(const AuditReport& report) {
  std::ostringstream out;
  out << "repository " << mask_control(report.repository) << " (attestations name it "
      << mask_control(report.source_uri) << ")\n";
  if (!report.verified) out << kUnverified << "\n";
  if (!report.red_flags.empty()) {
    out << "RED FLAGS (" << report.red_flags.size() << "):\n";
    for (const auto& f : report.red_flags) {
      out << "  " << f.kind << " " << mask_control(f.commit.substr(0, 12)) << " by " << mask_control(f.node_id) << ": "
          << mask_control(f.detail) << "\n";
    }
  }
  for (const auto& c : report.commits) {
    out << c.id.substr(0, 12) << "  " << format_rfc3339(c.time) << "  " << mask_control(describe_signature(c.signature))
        << "  " << mask_control(c.summary) << "\n";
    if (c.shallow) out << "    the history ends here: a shallow clone, its parents were not fetched\n";
    if (c.subjects.empty()) out << "    no attestations\n";
    for (const auto& s : c.subjects) {
      out << "    "
          << mask_control(s.subject.recipe_path + " (epoch " + std::to_string(s.subject.source_date_epoch) +
                          describe_build_args(s.subject.build_args) + "): " + votes_summary(s))
          << "\n";
      for (const auto& v : s.votes) out << "      " << mask_control(v.node_id + "  " + v.image_digest) << "\n";
    }
  }
  return out.str();
}

// As to_text, and each cell escaped (core/display.h) so that a '|' or a newline in a field cannot add cells
// or rows.
std::string to_markdown(const AuditReport& report) {
  std::ostringstream out;
  out << "# Audit of `" << mask_control(report.repository) << "`\n\n";
  if (!report.verified) out << kUnverified << "\n\n";
  if (!report.red_flags.empty()) {
    out << "## Red flags\n\n| kind | commit | node | detail |\n|---|---|---|---|\n";
    for (const auto& f : report.red_flags) {
      out << "| " << f.kind << " | `" << markdown_cell(f.commit.substr(0, 12)) << "` | " << markdown_cell(f.node_id)
          << " | " << markdown_cell(f.detail) << " |\n";
    }
    out << "\n";
  }
  out << "## Commits\n\n| commit | time | signature | summary | attestations |\n|---|---|---|---|---|\n";
  for (const auto& c : report.commits) {
    std::string att;
    for (const auto& s : c.subjects) {
      att += (att.empty() ? "" : "; ") + s.subject.recipe_path + describe_build_args(s.subject.build_args) + ": " +
             votes_summary(s);
    }
    out << "| `" << c.id.substr(0, 12) << "` | " << format_rfc3339(c.time) << " | "
        << markdown_cell(describe_signature(c.signature)) << " | " << markdown_cell(c.summary) << " | "
        << (att.empty() ? "none" : markdown_cell(att)) << " |\n";
  }
  for (const auto& c : report.commits) {
    if (c.shallow)
      out << "\nThe history ends at `" << c.id.substr(0, 12) << "`: a shallow clone, its parents were not fetched.\n";
  }
  return out.str();
}

}  // namespace quorate::audit
