// quorate audit on a generated 50-commit repository with attestations from four nodes.
#include "quorate/audit/audit.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <sstream>
#include <thread>

#include "quorate/core/display.h"
#include "quorate/core/process.h"
#include "quorate/quorum/verifier.h"
#include "quorum/signed.h"
#include "support/test_util.h"

namespace quorate::audit {
namespace {
namespace fs = std::filesystem;
using quorate::quorum::testing::make_nodes;
using quorate::quorum::testing::Node;
using quorate::testing::CommandResult;
using quorate::testing::run;
using quorate::testing::ScratchDir;
using quorate::testing::sh;

constexpr int64_t kNow = 1'790'000'600;

std::string build_result(const std::string& uri, const std::string& commit, const std::string& image,
                         const std::string& recipe_path = "quorate.toml") {
  nlohmann::json r = {{"schema", "https://quorate.dev/build-result/v1"},
                      {"canonical_form", 1},
                      {"image",
                       {{"name", "registry.example/app"},
                        {"manifest_digest", sha256_digest("manifest:" + image)},
                        {"config_digest", sha256_digest("config:" + image)},
                        {"diff_ids", {sha256_digest("layer:" + image)}},
                        {"layers", nlohmann::json::array()}}},
                      {"source", {{"uri", uri}, {"commit", commit}, {"recipe_path", recipe_path}}},
                      {"base_images", nlohmann::json::array()},
                      {"platform", {{"os", "linux"}, {"architecture", "amd64"}}},
                      {"source_date_epoch", 1700000000},
                      {"compressor", "gzip zlib 1.2.13 level 6"},
                      {"started_on", format_rfc3339(quorate::quorum::testing::kSigned - 30)},
                      {"finished_on", format_rfc3339(quorate::quorum::testing::kSigned)}};
  return r.dump();
}

// An executable sh script at `path` running `body`.
fs::path write_script(const fs::path& path, const std::string& body) {
  quorate::testing::spit(path, "#!/bin/sh\n" + body + "\n");
  fs::permissions(path, fs::perms::owner_all);
  return path;
}

// A scratch GNUPGHOME; the gpg-agent that signing starts for it is stopped when it goes. The agent removes its
// sockets after gpgconf returns, which can race the removal of the directory: it is tried again for a second.
class GpgHome {
 public:
  ~GpgHome() {
    run("GNUPGHOME=" + sh(path().string()) + " timeout 10 gpgconf --kill all");
    std::error_code ec;
    for (int i = 0; i < 10 && fs::exists(path(), ec); ++i) {
      if (fs::remove_all(path(), ec) == static_cast<std::uintmax_t>(-1) || fs::exists(path(), ec)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }
  const fs::path& path() const { return dir_.path(); }
  fs::path operator/(const std::string& name) const { return dir_ / name; }

 private:
  ScratchDir dir_;
};

// Shell commands that make a key (ed25519, no passphrase, expiring after `expiry`) for `email` with `gpg`, and
// that sign a new commit with it through `program` (a gpg wrapper; empty: gpg).
std::string make_key(const std::string& email, const std::string& expiry = "never", const std::string& gpg = "gpg") {
  return gpg + " --batch --passphrase '' --quick-gen-key " + sh("Signer <" + email + ">") + " ed25519 sign " + expiry +
         " >/dev/null 2>&1; ";
}
std::string signed_commit(const std::string& email, const fs::path& program = {}) {
  return "echo signed >> file; git add file; git -c user.signingkey=" + email +
         (program.empty() ? "" : " -c gpg.program=" + sh(program.string())) + " commit -q -S -m signed; ";
}
// Imports the revocation certificate gpg wrote for `email`'s key when it made it.
std::string revoke_key(const std::string& email) {
  return "fpr=$(gpg --with-colons --list-keys " + email +
         " | awk -F: '/^fpr/ { print $10; exit }'); sed 's/^:-----BEGIN/-----BEGIN/' "
         "\"$GNUPGHOME/openpgp-revocs.d/$fpr.rev\" | gpg --batch --import >/dev/null 2>&1; ";
}

// gpg with its clock frozen at 2020-01-01, for keys and signatures that have expired by now.
constexpr const char* kGpgIn2020 = "exec gpg --faked-system-time 20200101T000000! \"$@\"";

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // 50 commits on a first-parent line, fixed dates, no signatures.
    repo_ = dir_ / "repo";
    std::string script =
        "set -e; git init -q " + sh(repo_.string()) + "; cd " + sh(repo_.string()) +
        "; export GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@x GIT_COMMITTER_NAME=a GIT_COMMITTER_EMAIL=a@x;"
        " for i in $(seq 1 50); do echo $i > file; git add file;"
        " GIT_AUTHOR_DATE=\"@$((1700000000 + i)) +0000\" GIT_COMMITTER_DATE=\"@$((1700000000 + i)) +0000\""
        " git -c commit.gpgsign=false commit -q -m \"change $i\"; done; git rev-list --first-parent HEAD";
    auto r = run(script);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) commits_.push_back(line);  // newest first
    ASSERT_EQ(commits_.size(), 50u);
    uri_ = "file://" + repo_.string();

    nodes_ = make_nodes({"node-a", "node-b", "node-c", "node-d"});
    auto policy = quorate::quorum::testing::write_policy(dir_.path(), "threshold = 3", nodes_);
    auto verifier = quorum::Verifier::load(policy);
    ASSERT_TRUE(verifier.ok()) << verifier.status().to_string();
    verifier_ = std::make_unique<quorum::Verifier>(std::move(verifier).value());
    store_ = quorum::Store::open(dir_ / "store.db").value();

    std::vector<std::string> atts;
    auto attest = [&](const Node& n, const std::string& uri, const std::string& commit, const std::string& image) {
      atts.push_back(attest::attest_build_result(build_result(uri, commit, image), *n.signer, n.id).value());
    };
    for (int i = 0; i < 4; ++i) attest(nodes_[i], uri_, commits_[0], "v50");      // quorum, all agree
    for (int i = 0; i < 3; ++i) attest(nodes_[i], uri_, commits_[1], "v49");      // quorum, one silent
    attest(nodes_[3], uri_, commits_[1], "v49-rogue");                            // ... and one dissenter
    attest(nodes_[0], uri_, commits_[2], "v48");                                  // one vote: no quorum
    attest(nodes_[3], uri_, std::string(40, 'f'), "ghost");                       // a commit that does not exist
    attest(nodes_[1], "https://elsewhere.example/fork.git", commits_[3], "v47");  // right commit, wrong source
    auto outcomes = quorum::import_attestations(*store_, *verifier_, atts, kNow);
    ASSERT_TRUE(outcomes.ok()) << outcomes.status().to_string();
    for (const auto& o : *outcomes) ASSERT_EQ(o.kind, quorum::ImportOutcome::Kind::kStored) << o.reason.to_string();
  }

  AuditOptions options(size_t max = 100) {
    AuditOptions o;
    o.repo = repo_.string();
    o.source_uri = uri_;
    o.verifier = &*verifier_;
    o.now = kNow;
    o.max_count = max;
    // As the CLI does: gpg from $PATH, its inputs under the scratch directory.
    const char* path = std::getenv("PATH");
    o.gpg = find_program("gpg", path ? path : "").value_or("");
    o.temp_dir = dir_.path();
    return o;
  }

  AuditReport audit(const AuditOptions& o) {
    auto r = run_audit(*store_, o);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? std::move(r).value() : AuditReport{};
  }

  AuditReport audit(size_t max = 100) { return audit(options(max)); }

  // Runs `script` (sh, stopping at the first error, killed after 60 s) in the repository with GNUPGHOME set to
  // `home`; exit status 77 when gpg is not installed.
  CommandResult in_repo(const GpgHome& home, const std::string& script) {
    return run("command -v gpg >/dev/null || exit 77; cd " + sh(repo_.string()) +
               " && GNUPGHOME=" + sh(home.path().string()) +
               " GIT_AUTHOR_NAME=a GIT_AUTHOR_EMAIL=a@x GIT_COMMITTER_NAME=a GIT_COMMITTER_EMAIL=a@x"
               " timeout -k 5 60 sh -c " +
               sh("set -e; " + script));
  }

  // The newest commit's signature as the audit reports it, gpg reading its keys from `home`.
  CommitSignature head_signature(const GpgHome& home, const AuditOptions& o) {
    ::setenv("GNUPGHOME", home.path().c_str(), 1);
    auto report = audit(o);
    ::unsetenv("GNUPGHOME");
    return report.commits.empty() ? CommitSignature{} : report.commits.front().signature;
  }
  CommitSignature head_signature(const GpgHome& home) { return head_signature(home, options(1)); }

  // A commit on top of HEAD whose gpgsig header holds a PGP signature block that no key made: for a gpg that
  // is not gpg.
  void commit_with_made_up_signature() {
    auto r = run("cd " + sh(repo_.string()) +
                 R"( && c=$(printf 'tree %s\nparent %s\nauthor a <a@x> 1700000100 +0000\n)"
                 R"(committer a <a@x> 1700000100 +0000\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n iQ==\n)"
                 R"( -----END PGP SIGNATURE-----\n\nsigned\n' $(git rev-parse 'HEAD^{tree}') $(git rev-parse HEAD))"
                 R"( | git hash-object -t commit -w --stdin) && git update-ref HEAD "$c")");
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }

  ScratchDir dir_;
  fs::path repo_;
  std::string uri_;
  std::vector<std::string> commits_;
  std::vector<Node> nodes_;
  std::unique_ptr<quorum::Verifier> verifier_;
  std::unique_ptr<quorum::Store> store_;
};

TEST_F(AuditTest, JsonReportFieldByField) {
  auto j = to_json(audit());
  ASSERT_EQ(j["commits"].size(), 50u);
  EXPECT_EQ(j["source_uri"], uri_);

  // Red flags first: the commit that does not exist and the attestation under another source.
  ASSERT_EQ(j["red_flags"].size(), 2u);
  EXPECT_EQ(j["red_flags"][0]["kind"], "source-mismatch");
  EXPECT_EQ(j["red_flags"][0]["commit"], commits_[3]);
  EXPECT_EQ(j["red_flags"][0]["node_id"], "node-b");
  EXPECT_EQ(j["red_flags"][1]["kind"], "unknown-commit");
  EXPECT_EQ(j["red_flags"][1]["commit"], std::string(40, 'f'));
  EXPECT_EQ(j["red_flags"][1]["node_id"], "node-d");

  const auto& head = j["commits"][0];
  EXPECT_EQ(head["commit"], commits_[0]);
  EXPECT_EQ(head["summary"], "change 50");
  EXPECT_EQ(head["time"], "2023-11-14T22:14:10Z");
  EXPECT_EQ(head["signature"]["status"], "unsigned");
  ASSERT_EQ(head["subjects"].size(), 1u);
  EXPECT_EQ(head["subjects"][0]["agree"], true);
  EXPECT_EQ(head["subjects"][0]["attestations"].size(), 4u);
  EXPECT_EQ(head["subjects"][0]["attestations"][0]["node_id"], "node-a");
  EXPECT_EQ(head["subjects"][0]["attestations"][0]["image_digest"], sha256_digest("manifest:v50"));
  EXPECT_EQ(head["subjects"][0]["decision"]["accepted"], true);

  const auto& dissent = j["commits"][1]["subjects"][0];
  EXPECT_EQ(dissent["agree"], false);
  EXPECT_EQ(dissent["decision"]["accepted"], false);  // on_conflict = reject: the rogue blocks

  const auto& lone = j["commits"][2]["subjects"][0];
  EXPECT_EQ(lone["attestations"].size(), 1u);
  EXPECT_EQ(lone["decision"]["accepted"], false);

  // The fork's attestation names commit 47 under another source: flagged, and listed under its own subject.
  ASSERT_EQ(j["commits"][3]["subjects"].size(), 1u);
  EXPECT_EQ(j["commits"][3]["subjects"][0]["source_uri"], "https://elsewhere.example/fork.git");

  for (size_t i = 4; i < 50; ++i) {
    EXPECT_EQ(j["commits"][i]["attested"], false) << i;
  }
}

// Attestations name the repository file:///…/repo; the auditor passes the path, or a path that reaches it
// through "..": the same local directory, so the only red flags are still the fork and the ghost commit.
TEST_F(AuditTest, ALocalRepositoryNamedAnotherWayIsTheSameSource) {
  for (const auto& name : {repo_.string(), (repo_ / ".." / "repo").string()}) {
    AuditOptions o;
    o.repo = repo_.string();
    o.source_uri = name;
    o.now = kNow;
    auto r = run_audit(*store_, o);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_EQ(r->red_flags.size(), 2u) << name;
    EXPECT_EQ(r->red_flags[0].source_uri, "https://elsewhere.example/fork.git");
    EXPECT_EQ(r->red_flags[1].kind, "unknown-commit");
  }
  AuditOptions other;
  other.repo = repo_.string();
  other.source_uri = (dir_ / "another-repo").string();
  other.now = kNow;
  auto r = run_audit(*store_, other);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->red_flags.size(), 10u) << "every attestation of a known commit is under another source";
}

TEST_F(AuditTest, MaxCountAndRangesBoundTheWalk) {
  EXPECT_EQ(audit(5).commits.size(), 5u);
  AuditOptions o;
  o.repo = repo_.string();
  o.range = commits_[10] + ".." + commits_[0];
  auto r = run_audit(*store_, o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->commits.size(), 10u);
  EXPECT_EQ(r->commits.front().id, commits_[0]);
}

TEST_F(AuditTest, TextAndMarkdownPutRedFlagsFirst) {
  auto report = audit();
  std::string text = to_text(report);
  EXPECT_LT(text.find("RED FLAGS (2)"), text.find(commits_[0].substr(0, 12) + "  "));
  EXPECT_NE(text.find("4 nodes, agree: accepted"), std::string::npos) << text;
  EXPECT_NE(text.find("DISAGREE: rejected"), std::string::npos) << text;
  EXPECT_NE(text.find("no attestations"), std::string::npos);
  std::string md = to_markdown(report);
  EXPECT_LT(md.find("## Red flags"), md.find("## Commits"));
}

TEST_F(AuditTest, MissingRepositoryOrRevisionIsNotFound) {
  AuditOptions o;
  o.repo = (dir_ / "nowhere").string();
  EXPECT_TRUE(run_audit(*store_, o).status().is_not_found());
  o.repo = repo_.string();
  o.range = "no-such-branch";
  EXPECT_TRUE(run_audit(*store_, o).status().is_not_found());
}

TEST_F(AuditTest, SignedCommitsAreReportedWithTheirStatus) {
  // An ssh- or gpg-signed commit is named as signed even when it cannot be checked here.
  ScratchDir home;
  auto r =
      run("command -v gpg >/dev/null || exit 77; export GNUPGHOME=" + sh(home.path().string()) +
          "; gpg --batch --passphrase '' --quick-gen-key 'Auditor <aud@example>' ed25519 sign never >/dev/null 2>&1 &&"
          " cd " +
          sh(repo_.string()) +
          " && echo signed > file && git add file &&"
          " git -c user.name=a -c user.email=a@x -c user.signingkey=aud@example commit -q -S -m signed");
  if (r.exit_code == 77) GTEST_SKIP() << "gpg is not installed";
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ::setenv("GNUPGHOME", home.path().c_str(), 1);
  auto report = audit(1);
  ::unsetenv("GNUPGHOME");
  ASSERT_EQ(report.commits.size(), 1u);
  EXPECT_EQ(report.commits[0].signature.kind, "gpg");
  EXPECT_EQ(report.commits[0].signature.status, "good");
  EXPECT_NE(report.commits[0].signature.signer.find("Auditor"), std::string::npos);
}

// git counts a good signature good whatever its key's trust, and so does the audit; the auditor is told the
// trust in every report.
TEST_F(AuditTest, AGoodSignatureSaysHowFarItsKeyIsTrusted) {
  GpgHome signer, auditor;
  auto r = in_repo(signer, make_key("signer@example") + signed_commit("signer@example") +
                               "gpg --export signer@example | GNUPGHOME=" + sh(auditor.path().string()) +
                               " gpg --batch --import 2>&1");
  if (r.exit_code == 77) GTEST_SKIP() << "gpg is not installed";
  ASSERT_EQ(r.exit_code, 0) << r.out;

  const auto own = head_signature(signer);  // gpg trusts the keys it made ultimately
  EXPECT_EQ(own.status, "good");
  EXPECT_EQ(own.detail, "trust: ultimate");
  ::setenv("GNUPGHOME", auditor.path().c_str(), 1);
  const auto report = audit(1);
  ::unsetenv("GNUPGHOME");
  ASSERT_EQ(report.commits.size(), 1u);
  const auto& imported = report.commits[0].signature;
  EXPECT_EQ(imported.status, "good");
  EXPECT_EQ(imported.detail, "trust: undefined");
  EXPECT_NE(to_text(report).find("  good (" + imported.signer + "; trust: undefined)  signed\n"), std::string::npos)
      << to_text(report);
  EXPECT_NE(to_markdown(report).find(" | good (" + markdown_cell(imported.signer) + "; trust: undefined) | signed | "),
            std::string::npos)
      << to_markdown(report);
  EXPECT_EQ(to_json(report)["commits"][0]["signature"]["detail"], "trust: undefined");
}

// A second signer appended to every signing: the block holds a signature by a key since revoked, then a good
// one. gpg's last verdict is GOODSIG; git refuses a block of more than one signature, and so does the audit.
TEST_F(AuditTest, ASignatureBlockOfTwoSignaturesIsBadThoughTheLastIsGood) {
  GpgHome home;
  const auto both = write_script(home / "both", "exec gpg \"$@\" -u second@example");
  auto r = in_repo(home, make_key("first@example") + make_key("second@example") + signed_commit("first@example", both) +
                             revoke_key("first@example"));
  if (r.exit_code == 77) GTEST_SKIP() << "gpg is not installed";
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto sig = head_signature(home);
  EXPECT_EQ(sig.status, "bad");
  EXPECT_EQ(sig.detail, "the signature block holds 2 signatures; git accepts one only");
  EXPECT_EQ(sig.signer, "");
}

TEST_F(AuditTest, AnExpiredSignatureIsReportedAsSuch) {
  GpgHome home;
  const auto in_2020 = write_script(home / "gpg-2020", kGpgIn2020);
  const auto expiring = write_script(home / "expiring", std::string(kGpgIn2020) + " --default-sig-expire 1d");
  auto r = in_repo(home,
                   make_key("lasting@example", "never", in_2020.string()) + signed_commit("lasting@example", expiring));
  if (r.exit_code == 77) GTEST_SKIP() << "gpg is not installed";
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto sig = head_signature(home);
  EXPECT_EQ(sig.status, "expired signature");
  EXPECT_EQ(sig.detail, "the signature has expired");
  EXPECT_NE(sig.signer.find("lasting@example"), std::string::npos) << sig.signer;
}

TEST_F(AuditTest, ASignatureByAnExpiredKeyIsReportedAsSuch) {
  GpgHome home;
  const auto in_2020 = write_script(home / "gpg-2020", kGpgIn2020);
  auto r = in_repo(home, make_key("brief@example", "1d", in_2020.string()) + signed_commit("brief@example", in_2020));
  if (r.exit_code == 77) GTEST_SKIP() << "gpg is not installed";
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto sig = head_signature(home);
  EXPECT_EQ(sig.status, "expired key");
  EXPECT_EQ(sig.detail, "the signing key has expired");
  EXPECT_NE(sig.signer.find("brief@example"), std::string::npos) << sig.signer;
}

TEST_F(AuditTest, ASignatureByARevokedKeyIsReportedAsSuch) {
  GpgHome home;
  auto r =
      in_repo(home, make_key("revoked@example") + signed_commit("revoked@example") + revoke_key("revoked@example"));
  if (r.exit_code == 77) GTEST_SKIP() << "gpg is not installed";
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto sig = head_signature(home);
  EXPECT_EQ(sig.status, "revoked key");
  EXPECT_EQ(sig.detail, "the signing key has been revoked");
  EXPECT_NE(sig.signer.find("revoked@example"), std::string::npos) << sig.signer;
}

// ERRSIG: gpg cannot check a signature whose key it does not have, and says which key that is.
TEST_F(AuditTest, ASignatureByAKeyNotInTheKeyringIsNotChecked) {
  GpgHome signer, auditor;
  auto r =
      in_repo(signer, make_key("stranger@example") + signed_commit("stranger@example") +
                          "gpg --with-colons --list-keys stranger@example 2>/dev/null | awk -F: '/^pub/ { print $5 }'");
  if (r.exit_code == 77) GTEST_SKIP() << "gpg is not installed";
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string keyid = r.out.substr(0, r.out.find('\n'));
  const auto sig = head_signature(auditor);
  EXPECT_EQ(sig.status, "not checked");
  EXPECT_EQ(sig.detail, "no public key for " + keyid + " in the keyring");
  EXPECT_EQ(sig.signer, keyid);
}

// gpg can hang (on a key server or an agent, say); the audit does not wait past the deadline, and the process
// is gone when it returns.
TEST_F(AuditTest, AGpgThatDoesNotAnswerIsStoppedAtTheDeadline) {
  commit_with_made_up_signature();
  GpgHome home;
  auto o = options(1);
  o.gpg = write_script(home / "gpg", "echo $$ > " + sh((home / "pid").string()) + "; exec sleep 20");
  o.gpg_deadline = std::chrono::seconds(1);
  const auto start = std::chrono::steady_clock::now();
  const auto sig = head_signature(home, o);
  const auto took = std::chrono::steady_clock::now() - start;
  const pid_t pid = std::atoi(quorate::testing::slurp(home / "pid").c_str());
  ASSERT_GT(pid, 0);
  EXPECT_EQ(::kill(pid, 0), -1) << "the stand-in gpg " << pid << " is still running";
  EXPECT_EQ(sig.status, "not checked");
  EXPECT_EQ(sig.detail, "gpg did not answer within 1 s");
  EXPECT_LT(took, std::chrono::seconds(6));
}

// A signature's notations are the signer's text, as long as the signature, and gpg prints them on status
// lines; a GOODSIG past the output bound is not read.
TEST_F(AuditTest, AGpgThatPrintsMoreThanTheBoundIsCut) {
  commit_with_made_up_signature();
  GpgHome home;
  auto o = options(1);
  o.gpg = write_script(home / "gpg",
                       "yes '[GNUPG:] NOTATION_DATA 0123456789abcdef0123456789abcdef' | head -c 2097152;"
                       " echo '[GNUPG:] NEWSIG'; echo '[GNUPG:] GOODSIG 0123456789ABCDEF Mallory <m@example>';"
                       " echo '[GNUPG:] TRUST_ULTIMATE 0 pgp'");
  const auto sig = head_signature(home, o);
  EXPECT_EQ(sig.status, "not checked");
  EXPECT_EQ(sig.detail, "gpg printed more than 1 MiB");
  EXPECT_EQ(sig.signer, "");
}

// The cells of a Markdown table row as GFM splits it: at each '|' not escaped by a backslash.
size_t cells(const std::string& row) {
  size_t pipes = 0;
  for (size_t i = 0; i < row.size(); ++i) {
    if (row[i] == '\\')
      ++i;
    else if (row[i] == '|')
      ++pipes;
  }
  return pipes - 1;
}

// Bytes a terminal acts on: C0 controls but the newline, DEL, and C1 controls as UTF-8.
bool has_control(const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c < 0x20 && c != '\n') || c == 0x7f) return true;
    if (c == 0xc2 && i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xe0) == 0x80) return true;
  }
  return false;
}

// A commit message can erase the auditor's line and print "gpg good" in its place, and a recipe path from a
// node can split a table row: text output masks control characters, Markdown escapes cells, JSON is exact.
TEST_F(AuditTest, HostileSummariesAndPathsNeitherDriveTheTerminalNorAddCells) {
  const std::string summary =
      "x\x1b[2K\x1b[1Gcafe00000000  gpg good | gpg good | y\x07\x7f \xc2\x9b"
      "2J back\\slash `code` <b>";
  quorate::testing::spit(dir_ / "msg", summary + "\n");
  auto r = run("cd " + sh(repo_.string()) +
               " && echo hostile > file && git add file && git -c user.name=a -c user.email=a@x"
               " -c commit.gpgsign=false commit -q --cleanup=verbatim -F " +
               sh((dir_ / "msg").string()) + " && git rev-parse HEAD");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string head = r.out.substr(0, 40);
  const std::string recipe = "evil | x\x1b]0;title\x07.toml";
  auto att = attest::attest_build_result(build_result(uri_, head, "v51", recipe), *nodes_[0].signer, "node-a");
  ASSERT_TRUE(att.ok()) << att.status().to_string();
  const std::vector<std::string> atts = {*att};
  ASSERT_TRUE(quorum::import_attestations(*store_, *verifier_, atts, kNow).ok());
  auto report = audit(1);
  ASSERT_EQ(report.commits.size(), 1u);
  ASSERT_EQ(report.commits[0].summary, summary);

  const std::string text = to_text(report);
  EXPECT_FALSE(has_control(text)) << text;
  EXPECT_NE(text.find("  x?[2K?[1Gcafe00000000  gpg good | gpg good | y?? ?2J back\\slash `code` <b>\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("    evil | x?]0;title?.toml (epoch 1700000000): 1 node, agree: rejected\n"), std::string::npos)
      << text;

  const std::string md = to_markdown(report);
  EXPECT_FALSE(has_control(md)) << md;
  std::istringstream lines(md.substr(md.find("## Commits")));
  std::vector<std::string> rows;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("|", 0) == 0) rows.push_back(line);
  }
  ASSERT_EQ(rows.size(), 3u) << md;
  for (const auto& row : rows) EXPECT_EQ(cells(row), 5u) << row;
  EXPECT_NE(
      rows[2].find(" | x?[2K?[1Gcafe00000000  gpg good \\| gpg good \\| y?? ?2J back\\\\slash \\`code\\` \\<b\\> | "
                   "evil \\| x?]0;title?.toml: 1 node, agree: rejected |"),
      std::string::npos)
      << rows[2];

  const auto json = to_json(report);
  EXPECT_EQ(json["commits"][0]["summary"], summary);
  EXPECT_EQ(json["commits"][0]["subjects"][0]["recipe_path"], recipe);
}

// The file holding a commit of the fixture's repository, whose objects are all loose.
fs::path loose_object(const fs::path& repo, const std::string& hex) {
  return repo / ".git" / "objects" / hex.substr(0, 2) / hex.substr(2);
}

// A history that cannot be read to its end is bad input naming the commit. A revision walk that met a missing
// object stopped there, before the first commit when it sorted the whole history first: the audit listed no
// commit and said nothing was wrong (exit 0).
TEST_F(AuditTest, AHistoryWithAMissingCommitIsBadInputNamingIt) {
  ASSERT_TRUE(fs::remove(loose_object(repo_, commits_[10])));
  AuditOptions o;
  o.repo = repo_.string();
  o.now = kNow;
  auto r = run_audit(*store_, o);
  ASSERT_TRUE(r.status().is_bad_input()) << (r.ok() ? "ok" : r.status().to_string());
  EXPECT_NE(r.status().message().find("commit " + commits_[10] + ", first parent of " + commits_[9]), std::string::npos)
      << r.status().to_string();
  o.range = commits_[20] + ".." + commits_[0];
  r = run_audit(*store_, o);
  EXPECT_TRUE(r.status().is_bad_input()) << (r.ok() ? "ok" : r.status().to_string());
}

// The newest commits are read without the rest of the history: max_count bounds the work, not only the
// report. Five commits of a history whose eleventh is missing are reported; a walk that sorted the whole
// history before yielding its first commit read every commit, and failed on that one.
TEST_F(AuditTest, MaxCountBoundsWhatIsReadNotJustWhatIsShown) {
  ASSERT_TRUE(fs::remove(loose_object(repo_, commits_[10])));
  auto report = audit(5);
  ASSERT_EQ(report.commits.size(), 5u);
  EXPECT_EQ(report.commits[4].id, commits_[4]);
}

// A shallow clone holds part of the history: the walk ends at its boundary, which the report marks, and an
// attestation naming an older commit is flagged with the reason the commit may be missing.
TEST_F(AuditTest, AShallowClonesHistoryEndsAtItsBoundaryAndTheReportSaysSo) {
  const fs::path shallow = dir_ / "shallow";
  auto cloned = run("git clone -q --depth 3 " + sh("file://" + repo_.string()) + " " + sh(shallow.string()));
  ASSERT_EQ(cloned.exit_code, 0) << cloned.out;
  AuditOptions o;
  o.repo = shallow.string();
  o.source_uri = uri_;
  o.now = kNow;
  auto r = run_audit(*store_, o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->commits.size(), 3u);
  EXPECT_EQ(r->commits[2].id, commits_[2]);
  EXPECT_TRUE(r->commits[2].shallow);
  EXPECT_FALSE(r->commits[0].shallow);
  EXPECT_NE(to_text(*r).find(commits_[2].substr(0, 12) + "  "), std::string::npos);
  EXPECT_NE(to_text(*r).find("the history ends here: a shallow clone"), std::string::npos) << to_text(*r);
  EXPECT_EQ(to_json(*r)["commits"][2]["shallow"], true);
  ASSERT_FALSE(r->red_flags.empty());
  EXPECT_NE(r->red_flags.back().detail.find("shallow clone"), std::string::npos) << r->red_flags.back().detail;
}

// A revision naming a tree (or a blob) is bad input. The walk refused to start from it, unchecked, and the
// audit reported no commit and no red flag.
TEST_F(AuditTest, ARevisionThatNamesNoCommitIsBadInput) {
  auto tagged = run("cd " + sh(repo_.string()) + " && git tag a-tree 'HEAD^{tree}'");
  ASSERT_EQ(tagged.exit_code, 0) << tagged.out;
  AuditOptions o;
  o.repo = repo_.string();
  o.range = "a-tree";
  o.now = kNow;
  auto r = run_audit(*store_, o);
  ASSERT_TRUE(r.status().is_bad_input()) << (r.ok() ? "ok" : r.status().to_string());
  EXPECT_NE(r.status().message().find("\"a-tree\" does not name a commit"), std::string::npos)
      << r.status().to_string();
}

// A commit message compresses to almost nothing and its first paragraph is the summary, kept for every commit
// of the report: the summary is cut, on a UTF-8 boundary, and the reports stay small. (40 commits of 16 MiB,
// a 3 MB repository, took `quorate audit` to 2 GB.)
TEST_F(AuditTest, AnEnormousSummaryIsCutInEveryReport) {
  std::string message = "huge ";  // 5 bytes, then 2-byte sequences: byte 4096 falls inside one
  for (int i = 0; i < (1 << 19); ++i) message += "\xc3\xa9";
  quorate::testing::spit(dir_ / "msg", message + "\n");
  auto r = run("cd " + sh(repo_.string()) +
               " && echo huge > file && git add file && git -c user.name=a -c user.email=a@x"
               " -c commit.gpgsign=false commit -q -F " +
               sh((dir_ / "msg").string()));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto report = audit(1);
  ASSERT_EQ(report.commits.size(), 1u);
  const std::string& summary = report.commits[0].summary;
  EXPECT_LT(summary.size(), 4200u);
  EXPECT_EQ(summary.rfind("huge \xc3\xa9\xc3\xa9", 0), 0u);
  // 4095 bytes kept: the 4096th would split "\xc3\xa9".
  const std::string cut = " [" + std::to_string(message.size() - 4095) + " more bytes]";
  ASSERT_EQ(summary.size(), 4095 + cut.size());
  EXPECT_EQ(summary.substr(4095), cut);
  EXPECT_EQ(mask_control(summary), summary) << "the cut falls between two UTF-8 sequences";
  EXPECT_LT(to_text(report).size(), 8192u);
  EXPECT_LT(to_markdown(report).size(), 8192u);
  EXPECT_LT(to_json(report).dump().size(), 8192u);
}

// Without a policy the store's rows are reported as they are, and a store file may have been edited to list
// any node as agreeing: each report says that nothing was verified. Before, "4 nodes, agree" read the same
// with and without --policy.
TEST_F(AuditTest, WithoutAPolicyEveryReportSaysNothingWasVerified) {
  AuditOptions o;
  o.repo = repo_.string();
  o.source_uri = uri_;
  o.now = kNow;
  auto r = run_audit(*store_, o);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_FALSE(r->verified);
  EXPECT_EQ(to_text(*r).find("repository "), 0u);
  EXPECT_NE(to_text(*r).find("\nNOT VERIFIED: attestations as the store holds them; give --policy"), std::string::npos);
  EXPECT_NE(to_markdown(*r).find("\n\nNOT VERIFIED: "), std::string::npos);
  EXPECT_EQ(to_json(*r)["verified"], false);

  auto verified = audit();
  EXPECT_TRUE(verified.verified);
  EXPECT_EQ(to_text(verified).find("NOT VERIFIED"), std::string::npos);
  EXPECT_EQ(to_json(verified)["verified"], true);
}

}  // namespace
}  // namespace quorate::audit
