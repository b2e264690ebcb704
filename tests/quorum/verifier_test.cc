// End to end through real signatures: policy files loaded with their roster, attestations verified and
// imported, decisions from the store — the acceptance cases of the quorum.
#include "quorate/quorum/verifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "quorate/core/encoding.h"
#include "quorate/quorum/query.h"
#include "quorate/sqlite/database.h"
#include "quorum/signed.h"

namespace quorate::quorum {
namespace {

using namespace quorate::quorum::testing;
using quorate::testing::ScratchDir;
using quorate::testing::spit;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kNow = kSigned + 3600;

class Quorum : public ::testing::Test {
 protected:
  void use_policy(const std::string& header, const std::vector<NodeWindow>& windows = {}) {
    auto loaded = Verifier::load(write_policy(dir_.path(), header, nodes_, windows));
    ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
    votes_.reset();
    verifier_ = std::make_unique<Verifier>(std::move(loaded.value()));
    store_ = Store::open(dir_ / "store.db").value();
  }
  std::vector<ImportOutcome> import(const std::vector<std::string>& envelopes) {
    auto r = import_attestations(*store_, *verifier_, envelopes, kNow);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? r.value() : std::vector<ImportOutcome>();
  }
  Decision decision(const std::string& commit_word) {
    auto a = answer(verifier_->policy(), votes(), {"", commit_of(commit_word), ""}, kNow);
    EXPECT_TRUE(a.ok()) << a.status().to_string();
    EXPECT_EQ(a->decisions.size(), 1u);
    return a->decisions.empty() ? Decision() : a->decisions[0];
  }
  const Node& node(size_t i) { return nodes_[i]; }
  VerifiedVotes& votes() {
    if (!votes_ || &votes_->store() != store_.get()) votes_ = std::make_unique<VerifiedVotes>(*store_, *verifier_);
    return *votes_;
  }
  static std::vector<std::string> names(const std::vector<Ballot>& ballots) {
    std::vector<std::string> out;
    for (const auto& b : ballots) out.push_back(b.node);
    return out;
  }

  ScratchDir dir_;
  std::vector<Node> nodes_ = make_nodes({"node-a", "node-b", "node-c", "node-d"});
  std::unique_ptr<Verifier> verifier_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<VerifiedVotes> votes_;
};

std::vector<std::string> honest_and_rogue(const std::vector<Node>& n) {
  return {attestation(n[0], "v1", "good"), attestation(n[1], "v1", "good"), attestation(n[2], "v1", "good"),
          attestation(n[3], "v1", "rogue")};
}

TEST_F(Quorum, ThreeHonestOneRogueAcceptedWithThreeUnderMajority) {
  use_policy("threshold = 3\non_conflict = \"majority\"");
  import(honest_and_rogue(nodes_));
  Decision d = decision("v1");
  EXPECT_TRUE(d.accepted) << d.reason;
  EXPECT_EQ(d.digest, image_of("good"));
  EXPECT_THAT(names(d.agreeing), ElementsAre("node-a", "node-b", "node-c"));
  ASSERT_EQ(d.dissenting.size(), 1u);
  EXPECT_EQ(d.dissenting[0].image_digest, image_of("rogue"));
  EXPECT_EQ(d.policy_digest, verifier_->policy().digest());
}

TEST_F(Quorum, ThreeHonestOneRogueRejectedWithFourUnderReject) {
  use_policy("threshold = 4\non_conflict = \"reject\"");
  import(honest_and_rogue(nodes_));
  Decision d = decision("v1");
  EXPECT_FALSE(d.accepted);
  EXPECT_THAT(d.reason, HasSubstr("conflict"));
  EXPECT_THAT(names(d.dissenting), ElementsAre("node-d"));
}

TEST_F(Quorum, ThreeHonestOneRogueUnderRejectIsBlockedByTheDissent) {
  use_policy("threshold = 3");
  import(honest_and_rogue(nodes_));
  EXPECT_FALSE(decision("v1").accepted);
}

TEST_F(Quorum, TwoHonestTwoColludingRoguesIsAConflictNamingBothSides) {
  use_policy("threshold = 2");
  import({attestation(node(0), "v1", "good"), attestation(node(1), "v1", "good"), attestation(node(2), "v1", "rogue"),
          attestation(node(3), "v1", "rogue")});
  Decision d = decision("v1");
  EXPECT_FALSE(d.accepted);
  EXPECT_THAT(d.reason, HasSubstr(image_of("good") + " (2: node-a, node-b)"));
  EXPECT_THAT(d.reason, HasSubstr(image_of("rogue") + " (2: node-c, node-d)"));
}

TEST_F(Quorum, EquivocatingNodeIsVoidAndReported) {
  use_policy("threshold = 3");
  import({attestation(node(0), "v1", "good"), attestation(node(1), "v1", "good"), attestation(node(2), "v1", "good"),
          attestation(node(3), "v1", "good"), attestation(node(3), "v1", "rogue", "", kSigned + 5)});
  Decision d = decision("v1");
  EXPECT_TRUE(d.accepted) << d.reason;
  EXPECT_THAT(d.equivocators, ElementsAre("node-d"));
  ASSERT_EQ(d.void_votes.size(), 2u);
  EXPECT_THAT(d.void_votes[0].reason, HasSubstr("equivocation"));
}

TEST_F(Quorum, RevokedKeyIsRejectedAtImport) {
  use_policy("threshold = 3", {{}, {}, {"", "", format_rfc3339(kSigned - 60)}});
  auto outcomes = import(
      {attestation(node(0), "v1", "good"), attestation(node(1), "v1", "good"), attestation(node(2), "v1", "good")});
  EXPECT_EQ(outcomes[2].kind, ImportOutcome::Kind::kRejected);
  EXPECT_TRUE(outcomes[2].reason.is_verification());
  EXPECT_THAT(outcomes[2].reason.message(), HasSubstr("revoked"));
  auto rejected = store_->rejections().value();
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_THAT(rejected[0].reason, HasSubstr("revoked"));
  Decision d = decision("v1");
  EXPECT_FALSE(d.accepted);
  EXPECT_THAT(d.missing, ElementsAre("node-c", "node-d"));
}

TEST_F(Quorum, KeyRevokedAfterImportVoidsTheVoteAtTheNextDecision) {
  use_policy("threshold = 3");
  import({attestation(node(0), "v1", "good"), attestation(node(1), "v1", "good"), attestation(node(2), "v1", "good")});
  EXPECT_TRUE(decision("v1").accepted);
  // The roster learns that node-c's key was compromised before it signed.
  use_policy("threshold = 3", {{}, {}, {"", "", format_rfc3339(kSigned - 60)}});
  Decision d = decision("v1");
  EXPECT_FALSE(d.accepted);
  ASSERT_EQ(d.void_votes.size(), 1u);
  EXPECT_THAT(d.void_votes[0].reason, HasSubstr("key revoked"));
}

TEST_F(Quorum, ExpiredKeyIsRejected) {
  use_policy("threshold = 2", {{"", format_rfc3339(kSigned - 1), ""}});
  auto outcomes = import({attestation(node(0), "v1", "good"), attestation(node(1), "v1", "good")});
  EXPECT_EQ(outcomes[0].kind, ImportOutcome::Kind::kRejected);
  EXPECT_THAT(outcomes[0].reason.message(), HasSubstr("expired"));
  EXPECT_EQ(outcomes[1].kind, ImportOutcome::Kind::kStored);
  EXPECT_FALSE(decision("v1").accepted);
}

TEST_F(Quorum, UnknownKeyIsRejected) {
  use_policy("threshold = 1");
  Node stranger = make_node("node-a");  // claims a roster id, with a key the roster does not know
  auto outcomes = import({attestation(stranger, "v1", "rogue")});
  EXPECT_EQ(outcomes[0].kind, ImportOutcome::Kind::kRejected);
  EXPECT_THAT(outcomes[0].reason.message(), HasSubstr("unknown key"));
  EXPECT_TRUE(store_->attestations().value().empty());
}

TEST_F(Quorum, TamperedEnvelopeIsRejected) {
  use_policy("threshold = 1");
  std::string envelope = attestation(node(0), "v1", "good");
  auto j = nlohmann::json::parse(envelope);
  std::string payload = base64_decode(j["payload"].get<std::string>()).value();
  auto at = payload.find(digest_hex(image_of("good")));
  ASSERT_NE(at, std::string::npos);
  payload.replace(at, 64, digest_hex(image_of("rogue")));
  j["payload"] = base64_encode(payload);
  auto outcomes = import({j.dump()});
  EXPECT_EQ(outcomes[0].kind, ImportOutcome::Kind::kRejected);
  EXPECT_THAT(outcomes[0].reason.message(), HasSubstr("bad signature"));
}

TEST_F(Quorum, DuplicateSubmissionsAreOneRowAndOneVote) {
  use_policy("threshold = 2");
  std::string a = attestation(node(0), "v1", "good");
  std::string bundle = attestation(node(0), "v1", "good", "", kSigned, attest::AttestFormat::kBundle);
  auto outcomes = import({a, a, bundle});
  EXPECT_EQ(outcomes[0].kind, ImportOutcome::Kind::kStored);
  EXPECT_EQ(outcomes[1].kind, ImportOutcome::Kind::kDuplicate);
  EXPECT_EQ(outcomes[2].kind, ImportOutcome::Kind::kDuplicate);  // the same envelope inside a bundle
  EXPECT_EQ(import({a})[0].kind, ImportOutcome::Kind::kDuplicate);
  // The same node attesting again later is a second row but still one vote.
  import({attestation(node(0), "v1", "good", "", kSigned + 60)});
  EXPECT_EQ(store_->attestations().value().size(), 2u);
  Decision d = decision("v1");
  EXPECT_FALSE(d.accepted);
  EXPECT_EQ(d.agreeing.size(), 1u);
}

// Threads take the attestations of a batch as they come (issue 17), yet each check lands in its attestation's
// slot: the outcomes, stored in that order, do not depend on how many threads ran or which got the CPU.
TEST_F(Quorum, ChecksComeBackInTheBatchOrderWhateverTheThreads) {
  use_policy("threshold = 1");
  std::vector<std::string> envelopes;
  std::vector<Incoming> batch;
  for (int i = 0; i < 40; ++i) {
    envelopes.push_back(i % 5 == 3 ? "not an envelope " + std::to_string(i)
                                   : attestation(node(static_cast<size_t>(i) % 4), "c" + std::to_string(i), "good"));
  }
  for (const auto& e : envelopes) batch.push_back({e, {}});
  auto summary = [](const std::vector<Checked>& checked) {
    std::vector<std::string> out;
    for (const auto& c : checked)
      out.push_back(c.ok() ? c.attestation->vote.subject.commit : "refused: " + c.status.message());
    return out;
  };
  const std::vector<std::string> one = summary(check_all(*verifier_, batch, 1));
  ASSERT_EQ(one.size(), envelopes.size());
  EXPECT_EQ(one[0], commit_of("c0"));
  EXPECT_THAT(one[3], HasSubstr("refused: "));
  EXPECT_EQ(one[39], commit_of("c39"));
  for (unsigned threads : {2u, 3u, 8u, 64u}) EXPECT_EQ(summary(check_all(*verifier_, batch, threads)), one) << threads;
}

TEST_F(Quorum, MatchContentAcceptsImagesSharingAConfigDigest) {
  use_policy("threshold = 3\nmatch = \"content\"");
  import({attestation(node(0), "v1", "gzip-image", "files"), attestation(node(1), "v1", "gzip-image", "files"),
          attestation(node(2), "v1", "zstd-image", "files")});
  Decision d = decision("v1");
  EXPECT_TRUE(d.accepted) << d.reason;
  EXPECT_EQ(d.digest, config_of("files"));
  EXPECT_EQ(d.image_digests.size(), 2u);
  auto by_image = answer(verifier_->policy(), votes(), {image_of("zstd-image"), "", ""}, kNow).value();
  EXPECT_TRUE(by_image.yes) << by_image.summary;
}

TEST_F(Quorum, RequiredNodeMissingRejects) {
  use_policy("threshold = 2\nrequired = [\"node-d\"]");
  import({attestation(node(0), "v1", "good"), attestation(node(1), "v1", "good"), attestation(node(2), "v1", "good")});
  Decision d = decision("v1");
  EXPECT_FALSE(d.accepted);
  EXPECT_THAT(d.reason, HasSubstr("required node 'node-d'"));
}

// Issue 17: a vote verified at import is not verified again in the same process (the Verifier remembers the
// columns it vouched for), while another process (here: a Verifier loaded anew) verifies every envelope.
TEST_F(Quorum, ImportedVotesAreNotVerifiedAgainByTheSameVerifier) {
  use_policy("threshold = 3\non_conflict = \"majority\"");
  import(honest_and_rogue(nodes_));
  {
    // Envelopes replaced behind the store's back, columns unchanged: only a new verification can tell.
    auto db = sqlite::Database::open(dir_ / "store.db", {});
    ASSERT_TRUE(db.ok()) << db.status().to_string();
    ASSERT_TRUE((*db)->exec("UPDATE attestations SET envelope = 'not an envelope'", "tamper").ok());
  }
  EXPECT_TRUE(decision("v1").accepted);  // a VerifiedVotes made after the import: nothing verified again
  EXPECT_TRUE(votes().take_distrusted().empty());
  use_policy("threshold = 3\non_conflict = \"majority\"");  // a new Verifier: as in another process
  EXPECT_FALSE(decision("v1").accepted);
  auto distrusted = votes().take_distrusted();
  ASSERT_EQ(distrusted.size(), 4u);
  EXPECT_THAT(distrusted[0].reason, HasSubstr("does not verify"));
}

// A verifier that runs for months remembers a bounded number of vouched votes, the latest: a vote vouched for
// before 2 x kVouchedGeneration others is verified again when its row is read (and a tampered envelope shows).
TEST_F(Quorum, AVerifierRemembersTheLatestVouchedVotesOnly) {
  use_policy("threshold = 3\non_conflict = \"majority\"");
  import(honest_and_rogue(nodes_));
  {
    auto db = sqlite::Database::open(dir_ / "store.db", {});
    ASSERT_TRUE(db.ok()) << db.status().to_string();
    ASSERT_TRUE((*db)->exec("UPDATE attestations SET envelope = 'not an envelope'", "tamper").ok());
  }
  EXPECT_TRUE(decision("v1").accepted);  // vouched at import: not verified again
  Vote other;
  other.node_id = "elsewhere";
  for (size_t i = 0; i < 2 * Verifier::kVouchedGeneration; ++i) {
    other.envelope_digest = "sha256:" + std::to_string(i);
    verifier_->vouch(other, 0);
  }
  EXPECT_LE(verifier_->vouched_count(), 2 * Verifier::kVouchedGeneration);
  EXPECT_TRUE(verifier_->vouched(other, 0));
  other.envelope_digest = "sha256:" + std::to_string(Verifier::kVouchedGeneration);
  EXPECT_TRUE(verifier_->vouched(other, 0));  // the generation before the latest is remembered too
  other.envelope_digest = "sha256:0";
  EXPECT_FALSE(verifier_->vouched(other, 0));
  EXPECT_FALSE(decision("v1").accepted);  // the imported votes were forgotten and verified again
  auto distrusted = votes().take_distrusted();
  ASSERT_EQ(distrusted.size(), 4u);
  EXPECT_THAT(distrusted[0].reason, HasSubstr("does not verify"));
}

// Issue 17: a restarted verifier asked about many subjects reads their votes together, verifying in one pass
// every row it has not vouched for (VerifiedVotes::votes_after_each): the votes of each subject, exactly what
// votes_after() gives for it, with a tampered row refused and reported once.
TEST_F(Quorum, VotesOfSeveralSubjectsAreReadAndVerifiedTogether) {
  use_policy("threshold = 3\non_conflict = \"majority\"");
  import(honest_and_rogue(nodes_));
  import({attestation(node(0), "v2", "good"), attestation(node(1), "v2", "good"), attestation(node(2), "v2", "good"),
          attestation(node(3), "v2", "rogue")});
  {
    auto db = sqlite::Database::open(dir_ / "store.db", {});
    ASSERT_TRUE(db.ok()) << db.status().to_string();
    ASSERT_TRUE((*db)
                    ->exec("UPDATE attestations SET envelope = 'not an envelope' WHERE id = (SELECT MAX(id) FROM "
                           "attestations)",
                           "tamper")
                    .ok());
  }
  use_policy("threshold = 3\non_conflict = \"majority\"");  // a new Verifier: as in a restarted process
  ASSERT_EQ(verifier_->vouched_count(), 0u);
  auto subjects = store_->subjects();
  ASSERT_TRUE(subjects.ok()) << subjects.status().to_string();
  ASSERT_EQ(subjects->size(), 2u);
  std::vector<int64_t> ids[2];
  int64_t last[2] = {0, 0};
  std::vector<VerifiedVotes::After> wanted{{(*subjects)[0], 0, &ids[0], &last[0]},
                                           {(*subjects)[1], 0, &ids[1], &last[1]}};
  auto got = votes().votes_after_each(wanted);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ(verifier_->vouched_count(), 7u);
  auto distrusted = votes().take_distrusted();
  ASSERT_EQ(distrusted.size(), 1u);
  EXPECT_THAT(distrusted[0].reason, HasSubstr("does not verify"));
  for (size_t k = 0; k < 2; ++k) {
    // What votes_after() gives for the subject alone (now from vouched rows: nothing is verified again).
    std::vector<int64_t> alone_ids;
    int64_t alone_last = 0;
    auto alone = votes().votes_after((*subjects)[k], 0, alone_ids, alone_last);
    ASSERT_TRUE(alone.ok()) << alone.status().to_string();
    EXPECT_EQ((*got)[k], *alone);
    EXPECT_EQ(ids[k], alone_ids);
    EXPECT_EQ(last[k], alone_last);
  }
  EXPECT_EQ((*got)[0].size() + (*got)[1].size(), 7u);
  EXPECT_EQ(std::max(last[0], last[1]), distrusted[0].id);  // the refused row was read, and is not read again
}

TEST_F(Quorum, ImageQuestionNamesTheCommit) {
  use_policy("threshold = 2");
  import({attestation(node(0), "v1", "good"), attestation(node(1), "v1", "good")});
  auto a = answer(verifier_->policy(), votes(), {image_of("good"), "", ""}, kNow).value();
  EXPECT_TRUE(a.yes);
  EXPECT_THAT(a.summary, HasSubstr(commit_of("v1")));
}

TEST(PolicyFile, RefusesPoliciesThatCannotBeMet) {
  ScratchDir dir;
  auto nodes = make_nodes({"a", "b"});
  EXPECT_THAT(Verifier::load(write_policy(dir.path(), "threshold = 3", nodes)).status().message(),
              HasSubstr("cannot be met"));
  EXPECT_THAT(Verifier::load(write_policy(dir.path(), "threshold = 0", nodes)).status().message(),
              HasSubstr("less than 1"));
  EXPECT_THAT(Verifier::load(write_policy(dir.path(), "threshold = 1\nrequired = [\"z\"]", nodes)).status().message(),
              HasSubstr("required node 'z'"));
  // The same key under two ids is one signer: k = 2 cannot be met.
  auto twice = nodes;
  twice[1].pair = twice[0].pair;
  auto st = Verifier::load(write_policy(dir.path(), "threshold = 2", twice)).status();
  EXPECT_TRUE(st.is_bad_input());
  EXPECT_THAT(st.message(), HasSubstr("1 distinct signer"));
  EXPECT_TRUE(Verifier::load(dir / "absent.toml").status().is_not_found());
}

// The quorum daemon's and the gate's configs name their policy files: a FIFO there held the daemon's start until
// someone wrote into it, as a FIFO named as a roster's key did.
TEST(PolicyFile, APolicyThatIsNotARegularFileIsRefusedUnopened) {
  ScratchDir dir;
  ASSERT_EQ(::mkfifo((dir / "policy.toml").c_str(), 0600), 0);
  auto loaded = quorate::testing::without_waiting_on_fifo(dir / "policy.toml",
                                                          [&] { return Verifier::load(dir / "policy.toml"); });
  EXPECT_TRUE(loaded.status().is_bad_input()) << (loaded.ok() ? "ok" : loaded.status().to_string());
  EXPECT_THAT(loaded.status().message(), HasSubstr("policy.toml is not a regular file (a FIFO)"));
}

TEST(PolicyFile, ReadsNodesFromARosterFile) {
  ScratchDir dir;
  auto nodes = make_nodes({"a", "b", "c"});
  std::filesystem::create_directories(dir / "keys");
  write_policy(dir / "keys", "", {nodes[1], nodes[2]});
  std::filesystem::rename(dir / "keys" / "policy.toml", dir / "keys" / "roster.toml");
  spit(dir / "a.pem", nodes[0].pair.public_pem);
  spit(dir / "policy.toml",
       "threshold = 3\nroster = \"keys/roster.toml\"\n[[nodes]]\nid = \"a\"\npublic_key = \"a.pem\"\n");
  auto v = Verifier::load(dir / "policy.toml");
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  EXPECT_THAT(v->policy().trust().voters(), ElementsAre("a", "b", "c"));
  EXPECT_TRUE(v->verify(attestation(nodes[2], "v1", "good")).ok());
}

// A writer importing real attestations, killed with SIGKILL mid-import: the store is intact, every row
// complete and verifiable again, and every batch all or nothing.
TEST(ImportCrash, KilledImporterLeavesTheStoreIntact) {
  ScratchDir dir;
  auto nodes = make_nodes({"n0", "n1", "n2"});
  auto policy = write_policy(dir.path(), "threshold = 2", nodes);
  Verifier verifier = Verifier::load(policy).value();
  std::vector<std::string> envelopes;
  for (int i = 0; i < 3000; ++i)
    envelopes.push_back(attestation(nodes[i % 3], "c" + std::to_string(i / 3), "img" + std::to_string(i / 3)));
  { Store::open(dir / "q.db").value(); }
  // The importer says when its third batch is stored; the kill follows 40 ms later, somewhere in the 97
  // batches to go (about 4 ms each on an idle machine, slower under load). A fixed sleep from the fork let a
  // fast machine finish all 100 before the kill.
  int started[2];
  ASSERT_EQ(::pipe(started), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(started[0]);
    auto store = Store::open(dir / "q.db");
    if (!store.ok()) ::_exit(3);
    for (size_t at = 0; at < envelopes.size(); at += 30) {
      std::span<const std::string> batch(envelopes.data() + at, 30);
      if (!import_attestations(**store, verifier, batch, kNow).ok()) ::_exit(4);
      if (at == 60 && ::write(started[1], "s", 1) != 1) ::_exit(5);
    }
    ::_exit(0);
  }
  ::close(started[1]);
  pollfd ready{started[0], POLLIN, 0};
  ASSERT_EQ(::poll(&ready, 1, 60'000), 1) << "the importer stored nothing within 60 s";
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  ::kill(pid, SIGKILL);
  ::close(started[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the importer finished before it was killed; status " << status;
  auto store = Store::open(dir / "q.db").value();
  ASSERT_TRUE(store->check_integrity().ok());
  auto rows = store->attestations().value();
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.size() % 30, 0u) << "a batch was torn";
  EXPECT_LT(rows.size(), envelopes.size());
  std::cout << rows.size() << " of " << envelopes.size() << " attestations stored before the kill\n";
  for (const auto& r : rows) {
    auto full = store->find_attestation(r.envelope_digest).value();
    ASSERT_TRUE(full.has_value());
    auto again = verifier.verify(full->envelope);
    ASSERT_TRUE(again.ok()) << again.status().to_string();
    EXPECT_EQ(again->vote, r.vote);
    EXPECT_EQ(again->started_on, r.started_on);
  }
  // The import picks up where it stopped: what was stored is a duplicate, the rest is new.
  auto outcomes = import_attestations(*store, verifier, envelopes, kNow).value();
  size_t dup = 0;
  for (const auto& o : outcomes) dup += o.kind == ImportOutcome::Kind::kDuplicate;
  EXPECT_EQ(dup, rows.size());
  EXPECT_EQ(store->attestations().value().size(), envelopes.size());
}

// examples/policy.toml, with keys generated where it expects them, loads as documented: the example cannot rot.
TEST(ExamplePolicy, LoadsWithItsKeysInPlace) {
  ScratchDir dir;
  std::filesystem::create_directories(dir / "keys");
  std::filesystem::copy_file(quorate::testing::source_dir() / "examples/policy.toml", dir / "policy.toml");
  for (const auto& n : make_nodes({"node-a", "node-b", "node-c", "node-d"})) {
    spit(dir / "keys" / (n.id + ".key.pem.pub.pem"), n.pair.public_pem);
  }
  auto loaded = Verifier::load(dir / "policy.toml");
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  const auto& rules = loaded->policy().rules();
  EXPECT_EQ(rules.threshold, 3);
  EXPECT_EQ(rules.max_age, int64_t{30} * 86400);
  EXPECT_EQ(rules.required, std::vector<std::string>{"node-a"});
}

}  // namespace
}  // namespace quorate::quorum
