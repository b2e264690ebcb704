// QuorumJudge, the verifier daemon's judge, over real signed attestations, the real store and engine: batches
// stored once, rejections with a typed reason, signer must be the publisher, decisions found by image and by
// commit, records and distrust surviving a reopened store, and the same decisions as `quorate verify`'s path.
#include "quorate/quorumd/quorum_judge.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <nlohmann/json.hpp>
#include <set>

#include "quorate/core/sha256.h"
#include "quorate/core/time.h"
#include "quorate/quorum/query.h"
#include "quorum/signed.h"
#include "support/test_util.h"

namespace quorate::quorum {
namespace {

namespace pb = wire::pb;
using namespace quorate::quorum::testing;

constexpr int64_t kNow = kSigned + 3600;

struct Fixture {
  quorate::testing::ScratchDir dir;
  std::vector<Node> nodes = make_nodes({"a", "b", "c", "r"});

  std::shared_ptr<const Verifier> verifier(const std::string& header, const std::vector<NodeWindow>& windows = {},
                                           std::vector<Node> roster = {}) {
    auto loaded = Verifier::load(write_policy(dir.path(), header, roster.empty() ? nodes : roster, windows));
    EXPECT_TRUE(loaded.ok()) << loaded.status().to_string();
    return std::make_shared<const Verifier>(std::move(loaded).value());
  }
  std::unique_ptr<QuorumJudge> judge(std::shared_ptr<const Verifier> v, const std::string& db = "store.db") {
    auto store = Store::open(dir / db);
    EXPECT_TRUE(store.ok()) << store.status().to_string();
    return std::make_unique<QuorumJudge>(
        std::move(store).value(), std::move(v), [] { return kNow * 1000; }, 2);
  }
  std::vector<Judge::Submission> honest_and_rogue(const std::string& commit) {
    return {{"a", attestation(nodes[0], commit, "good")},
            {"b", attestation(nodes[1], commit, "good")},
            {"c", attestation(nodes[2], commit, "good")},
            {"r", attestation(nodes[3], commit, "evil")}};
  }
};

pb::SubjectKey key(const std::string& commit_word) {
  pb::SubjectKey k;
  k.set_repo(kRepo);
  k.set_commit(commit_of(commit_word));
  k.set_recipe_path("quorate.toml");
  k.set_source_date_epoch(1700000000);  // what the test build results (quorum/signed.h) were built with
  return k;
}

TEST(QuorumJudge, ThreeHonestOneRogueAcceptedUnderMajorityWithTheRogueNamed) {
  Fixture f;
  auto judge = f.judge(f.verifier("threshold = 3\non_conflict = \"majority\""));
  auto out = judge->ingest(f.honest_and_rogue("c1"));
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  for (const auto& o : *out) EXPECT_EQ(o.kind, Judge::Outcome::Kind::kStored) << o.reason;
  auto d = judge->decide(key("c1"));
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->accepted()) << d->reason();
  EXPECT_EQ(d->digest(), image_of("good"));
  EXPECT_EQ(d->agreeing_size(), 3);
  ASSERT_EQ(d->dissenters_size(), 1);
  EXPECT_EQ(d->dissenters(0).node_id(), "r");
  EXPECT_EQ(d->dissenters(0).digest(), image_of("evil"));
  EXPECT_FALSE(d->decision_json().empty());
}

// Build args are part of the key on the wire too (issue 14): two sets for one commit and recipe are two subjects,
// each decided on its own votes; mixed, a and b would equivocate and neither would reach 3.
TEST(QuorumJudge, BuildArgsMakeTwoSubjectsOnTheWire) {
  Fixture f;
  auto judge = f.judge(f.verifier("threshold = 3\non_conflict = \"reject\""));
  const nlohmann::json spicy = {{"FLAVOR", "spicy"}};
  auto out = judge->ingest({{"a", attestation_with_args(f.nodes[0], "c1", "plain", nlohmann::json::object())},
                            {"b", attestation_with_args(f.nodes[1], "c1", "plain", nlohmann::json::object())},
                            {"c", attestation_with_args(f.nodes[2], "c1", "plain", nlohmann::json::object())},
                            {"a", attestation_with_args(f.nodes[0], "c1", "hot", spicy)},
                            {"b", attestation_with_args(f.nodes[1], "c1", "hot", spicy)},
                            {"r", attestation_with_args(f.nodes[3], "c1", "hot", spicy)}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  auto subjects = judge->subjects().value();
  ASSERT_EQ(subjects.size(), 2u);
  EXPECT_EQ(subjects[0].build_args(), "");
  EXPECT_EQ(subjects[1].build_args(), R"({"FLAVOR":"spicy"})");
  auto none = judge->decide(subjects[0]).value();
  EXPECT_TRUE(none.accepted()) << none.reason();
  EXPECT_EQ(none.digest(), image_of("plain"));
  EXPECT_EQ(none.subject().build_args(), "");
  auto hot = judge->decide(subjects[1]).value();
  EXPECT_TRUE(hot.accepted()) << hot.reason();
  EXPECT_EQ(hot.digest(), image_of("hot"));
  EXPECT_EQ(hot.subject().build_args(), R"({"FLAVOR":"spicy"})");
  EXPECT_EQ(nlohmann::json::parse(hot.decision_json())["subject"]["build_args"], spicy);
  // Recorded under its own key: the other set has no revision.
  hot.set_revision(1);
  ASSERT_TRUE(judge->record({hot}).ok());
  EXPECT_TRUE(judge->last_revision(subjects[1]).value().has_value());
  EXPECT_FALSE(judge->last_revision(subjects[0]).value().has_value());
  // A query by commit answers both sets, each under its key.
  auto found = judge->find_by_subject(key("c1")).value();
  ASSERT_EQ(found.size(), 0u);  // key("c1") names quorate.toml; these were Containerfile builds
  pb::SubjectKey cf = key("c1");
  cf.set_recipe_path("Containerfile");
  found = judge->find_by_subject(cf).value();
  ASSERT_EQ(found.size(), 2u);
}

// record() takes the decisions that changed among those decide() made since the last record(); the judge keeps
// none of the others (a verifier answering queries with nothing arriving held one per subject asked).
TEST(QuorumJudge, RecordForgetsTheDecisionsItWasNotGiven) {
  Fixture f;
  auto judge = f.judge(f.verifier("threshold = 3\non_conflict = \"majority\""));
  auto batch = f.honest_and_rogue("c1");
  for (auto& s : f.honest_and_rogue("c2")) batch.push_back(std::move(s));
  ASSERT_TRUE(judge->ingest(batch).ok());
  auto d1 = judge->decide(key("c1")).value();
  auto d2 = judge->decide(key("c2")).value();
  d2.set_revision(1);
  ASSERT_TRUE(judge->record({d2}).ok());
  d1.set_revision(1);
  auto late = judge->record({d1});
  ASSERT_FALSE(late.ok());
  EXPECT_NE(late.message().find("no decision made"), std::string::npos) << late.to_string();
  // Decided again, it is recorded; a record() of nothing forgets too.
  ASSERT_TRUE(judge->record({judge->decide(key("c1")).value()}).ok());
  auto d3 = judge->decide(key("c1")).value();
  ASSERT_TRUE(judge->record({}).ok());
  EXPECT_FALSE(judge->record({d3}).ok());
}

TEST(QuorumJudge, FourRequiredUnderRejectIsRejected) {
  Fixture f;
  auto judge = f.judge(f.verifier("threshold = 4"));
  ASSERT_TRUE(judge->ingest(f.honest_and_rogue("c1")).ok());
  auto d = judge->decide(key("c1"));
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->accepted());
  EXPECT_EQ(d->dissenters_size(), 1);
}

TEST(QuorumJudge, DuplicatesForgeriesUnknownKeysAndMisattributionAreSortedOut) {
  Fixture f;
  auto judge = f.judge(f.verifier("threshold = 1"));
  std::string good = attestation(f.nodes[0], "c1", "good");
  std::string forged = attestation(f.nodes[1], "c1", "good");
  forged[forged.find("\"sig\":\"") + 8] ^= 1;
  Node stranger = make_node("x");
  auto out = judge->ingest({{"a", good},
                            {"a", good},                                      // replay
                            {"b", forged},                                    // forged
                            {"x", attestation(stranger, "c1", "good")},       // unknown signer
                            {"r", attestation(f.nodes[0], "c1", "good2")}});  // r publishes a's envelope
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[0].kind, Judge::Outcome::Kind::kStored);
  EXPECT_EQ((*out)[1].kind, Judge::Outcome::Kind::kDuplicate);
  EXPECT_EQ((*out)[2].kind, Judge::Outcome::Kind::kRejected);
  EXPECT_TRUE((*out)[2].reason == "bad signature" || (*out)[2].reason == "malformed") << (*out)[2].reason;
  EXPECT_EQ((*out)[3].reason, "unknown key");
  EXPECT_EQ((*out)[4].reason, "signer is not the publishing node");
}

TEST(QuorumJudge, QueriesAndRecordsSurviveReopening) {
  Fixture f;
  auto v = f.verifier("threshold = 3\non_conflict = \"majority\"");
  {
    auto judge = f.judge(v);
    ASSERT_TRUE(judge->ingest(f.honest_and_rogue("c1")).ok());
    auto d = judge->decide(key("c1"));
    ASSERT_TRUE(judge->record({*d}).ok());
  }
  auto judge = f.judge(v);
  auto subjects = judge->subjects();
  ASSERT_TRUE(subjects.ok());
  ASSERT_EQ(subjects->size(), 1u);
  EXPECT_EQ((*subjects)[0].commit(), commit_of("c1"));
  auto by_image = judge->find_by_image(image_of("good"));
  ASSERT_TRUE(by_image.ok());
  ASSERT_EQ(by_image->size(), 1u);
  EXPECT_TRUE((*by_image)[0].accepted());
  pb::SubjectKey any;
  any.set_commit(commit_of("c1"));
  auto by_commit = judge->find_by_subject(any);
  ASSERT_TRUE(by_commit.ok());
  EXPECT_EQ(by_commit->size(), 1u);
  EXPECT_TRUE(judge->take_distrusted().empty());
  auto store = Store::open(f.dir / "store.db");
  EXPECT_EQ((*store)->decisions()->size(), 1u);
}

// Issue 17: what the daemon records per decision stays small: each ballot names the store row of its
// attestation instead of copying it, and the row carries the revision and fingerprint it was published with.
TEST(QuorumJudge, RecordedDecisionsNameTheirAttestationsByRow) {
  Fixture f;
  auto judge = f.judge(f.verifier("threshold = 3\non_conflict = \"majority\""));
  ASSERT_TRUE(judge->ingest(f.honest_and_rogue("c1")).ok());
  auto d = judge->decide(key("c1"));
  ASSERT_TRUE(d.ok());
  d->set_revision(7);
  ASSERT_TRUE(judge->record({*d}).ok());
  auto store = Store::open(f.dir / "store.db");
  ASSERT_TRUE(store.ok());
  auto recorded = (*store)->decisions();
  ASSERT_TRUE(recorded.ok());
  ASSERT_EQ(recorded->size(), 1u);
  const auto& row = (*recorded)[0];
  EXPECT_EQ(row.revision, 7);
  EXPECT_EQ(row.fingerprint, decision_fingerprint(*d));
  EXPECT_LT(row.json.size(), d->decision_json().size() / 2) << row.json;
  auto j = nlohmann::json::parse(row.json, nullptr, false);
  ASSERT_TRUE(j.is_object()) << row.json;
  std::set<int64_t> want, dissent;
  auto rows = (*store)->attestations();
  ASSERT_TRUE(rows.ok());
  for (const auto& a : *rows) (a.vote.node_id == "r" ? dissent : want).insert(a.id);
  std::set<int64_t> agreeing, dissenting;
  for (const auto& x : j["agreeing"]) agreeing.insert(x.is_number_integer() ? x.get<int64_t>() : -1);
  for (const auto& x : j["dissenting"]) dissenting.insert(x.is_number_integer() ? x.get<int64_t>() : -1);
  EXPECT_EQ(agreeing, want);
  EXPECT_EQ(dissenting, dissent);
  EXPECT_EQ(j["accepted"], true);
  EXPECT_TRUE(judge->is_recorded(*d).value());
}

// Issue 11, item 6: a decision made but never recorded (the verifier killed between storing a batch and
// recording its decisions) is told apart after a restart, so the daemon records it at start.
TEST(QuorumJudge, ADecisionNeverRecordedIsFoundAfterReopening) {
  Fixture f;
  auto v = f.verifier("threshold = 3\non_conflict = \"majority\"");
  {
    auto judge = f.judge(v);
    ASSERT_TRUE(judge->ingest(f.honest_and_rogue("c1")).ok());
    ASSERT_TRUE(judge->decide(key("c1")).ok());  // decided, then "killed" before record()
  }
  {
    auto judge = f.judge(v);
    auto d = judge->decide(key("c1"));
    ASSERT_TRUE(d.ok());
    EXPECT_FALSE(judge->is_recorded(*d).value());
    ASSERT_TRUE(judge->record({*d}).ok());
    EXPECT_TRUE(judge->is_recorded(*d).value());
  }
  auto judge = f.judge(v);
  auto d = judge->decide(key("c1"));  // made at the same clock: only its time could differ, and time is ignored
  EXPECT_TRUE(judge->is_recorded(*d).value());
  ASSERT_TRUE(judge->ingest({{"c", attestation(f.nodes[2], "c1", "evil")}}).ok());  // c equivocates: it changes
  EXPECT_FALSE(judge->is_recorded(*judge->decide(key("c1"))).value());
}

void sql(const std::filesystem::path& db, const std::string& statement) {
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(h, statement.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(h);
}

// Issue 11, item 2, for the daemon: after a restart on a tampered store, the rogue digest is not accepted and
// the tampered rows are reported.
TEST(QuorumJudge, ARestartedJudgeDoesNotTrustTamperedColumns) {
  Fixture f;
  auto v = f.verifier("threshold = 3\non_conflict = \"majority\"");
  ASSERT_TRUE(f.judge(v)->ingest(f.honest_and_rogue("c1")).ok());
  sql(f.dir / "store.db",
      "UPDATE attestations SET image_digest = '" + image_of("evil") + "' WHERE node_id IN ('a', 'b')");
  auto judge = f.judge(v);
  auto by_image = judge->find_by_image(image_of("evil"));
  ASSERT_TRUE(by_image.ok());
  for (const auto& d : *by_image) EXPECT_FALSE(d.accepted() && d.digest() == image_of("evil")) << d.reason();
  auto distrusted = judge->take_distrusted();
  ASSERT_EQ(distrusted.size(), 2u);
  EXPECT_NE(distrusted[0].reason.find("columns differ"), std::string::npos) << distrusted[0].reason;
}

// Issue 17: a restarted judge prepares the queries waiting for it (their subjects' votes read and verified in one
// pass); its answers, its decisions and the tampered rows it reports are those of a judge that did not prepare.
TEST(QuorumJudge, PreparedQueriesAreAnsweredAsUnpreparedOnes) {
  Fixture f;
  const std::string header = "threshold = 3\non_conflict = \"majority\"";
  {
    auto first = f.judge(f.verifier(header));
    for (const char* c : {"c1", "c2", "c3"}) ASSERT_TRUE(first->ingest(f.honest_and_rogue(c)).ok());
  }
  sql(f.dir / "store.db", "UPDATE attestations SET image_digest = '" + image_of("evil") +
                              "' WHERE node_id = 'a' AND commit_id = '" + commit_of("c2") + "'");
  std::vector<pb::Query> queries(5);
  *queries[0].mutable_subject() = key("c1");
  *queries[1].mutable_subject() = key("c2");
  *queries[2].mutable_subject() = key("c3");
  queries[3].set_image_digest(image_of("evil"));
  *queries[4].mutable_subject() = key("never built");
  auto answers = [&](bool prepare) {
    auto judge = f.judge(f.verifier(header));  // a new Verifier: nothing vouched for, as after a restart
    if (prepare) judge->prepare(queries);
    std::vector<std::string> out;
    for (const auto& q : queries) {
      auto got = q.what_case() == pb::Query::kImageDigest ? judge->find_by_image(q.image_digest())
                                                          : judge->find_by_subject(q.subject());
      EXPECT_TRUE(got.ok()) << got.status().to_string();
      out.push_back(std::to_string(got.ok() ? got->size() : 0));
      if (got.ok()) {
        for (const auto& d : *got) out.push_back(d.decision_json());
      }
    }
    for (const char* c : {"c1", "c2", "c3"}) {
      auto d = judge->decide(key(c));
      EXPECT_TRUE(d.ok()) << d.status().to_string();
      if (d.ok()) out.push_back(decision_fingerprint(*d));
    }
    for (const auto& r : judge->take_distrusted()) out.push_back(std::to_string(r.id) + " " + r.reason);
    return out;
  };
  const std::vector<std::string> prepared = answers(true);
  EXPECT_EQ(prepared, answers(false));
  EXPECT_NE(std::find_if(prepared.begin(), prepared.end(),
                         [](const std::string& x) { return x.find("columns differ") != std::string::npos; }),
            prepared.end())
      << "the tampered row was not reported";
}

// A query about an image attested for many commits (a hostile client's, or a repository whose commits do not
// change the image) prepares at most kPreparedSubjects of them: the rest are read by the answer, one at a time.
TEST(QuorumJudge, PreparingAnImageOfManySubjectsIsBounded) {
  Fixture f;
  const std::string header = "threshold = 1";
  const size_t subjects = QuorumJudge::kPreparedSubjects + 6;
  {
    auto first = f.judge(f.verifier(header));
    std::vector<Judge::Submission> batch;
    for (size_t i = 0; i < subjects; ++i)
      batch.push_back({"a", attestation(f.nodes[0], "c" + std::to_string(i), "good")});
    ASSERT_TRUE(first->ingest(batch).ok());
  }
  std::vector<pb::Query> queries(2);
  queries[0].set_image_digest(image_of("good"));
  queries[1].set_image_digest(image_of("good"));
  auto fresh = f.verifier(header);  // nothing vouched for, as after a restart
  auto judge = f.judge(fresh);
  judge->prepare(queries);
  EXPECT_EQ(fresh->vouched_count(), QuorumJudge::kPreparedSubjects);
  auto prepared = judge->find_by_image(image_of("good"));
  ASSERT_TRUE(prepared.ok()) << prepared.status().to_string();
  EXPECT_EQ(fresh->vouched_count(), subjects);
  auto unprepared = f.judge(f.verifier(header))->find_by_image(image_of("good"));
  ASSERT_TRUE(unprepared.ok()) << unprepared.status().to_string();
  ASSERT_EQ(prepared->size(), subjects);
  ASSERT_EQ(unprepared->size(), subjects);
  for (size_t i = 0; i < subjects; ++i) EXPECT_EQ((*prepared)[i].decision_json(), (*unprepared)[i].decision_json());
}

// One rule for whether a vote counts: the daemon's judge and `quorate verify`'s path (import + VerifiedVotes +
// answer) reach identical decisions under rosters with a revoked key, an expired key, and one key under two ids.
TEST(QuorumJudge, SameDecisionsAsTheVerifyPathUnderSeveralRosters) {
  Fixture f;
  Node twin = f.nodes[2];
  twin.id = "c-alias";  // node c's key listed a second time, under another id
  struct Roster {
    std::string name;
    std::vector<NodeWindow> windows;
    std::vector<Node> nodes;
  };
  std::string before = format_rfc3339(kSigned - 10), after = format_rfc3339(kSigned + 10);
  std::vector<Roster> rosters = {
      {"plain", {}, {}},
      {"a revoked before signing", {{"", "", before}}, {}},
      {"b expired before signing", {{}, {"", before, ""}}, {}},
      {"b revoked after signing", {{}, {"", "", after}}, {}},
      {"one key under two ids", {}, {f.nodes[0], f.nodes[1], f.nodes[2], f.nodes[3], twin}},
      {"the alias revoked", {{}, {}, {}, {}, {"", "", before}}, {f.nodes[0], f.nodes[1], f.nodes[2], f.nodes[3], twin}},
  };
  std::vector<std::string> envelopes;
  for (const auto& s : f.honest_and_rogue("c1")) envelopes.push_back(s.envelope);
  envelopes.push_back(attestation(twin, "c1", "good"));  // signed as the alias with c's key
  for (size_t i = 0; i < rosters.size(); ++i) {
    SCOPED_TRACE(rosters[i].name);
    auto v = f.verifier("threshold = 2\non_conflict = \"majority\"", rosters[i].windows, rosters[i].nodes);
    auto judge = f.judge(v, "judge-" + std::to_string(i) + ".db");
    std::vector<Judge::Submission> subs;
    for (const auto& e : envelopes) subs.push_back({"", e});
    // The publisher check aside (the files path has none), both paths see the same bytes.
    std::vector<Incoming> incoming;
    for (const auto& e : envelopes) incoming.push_back({e, {}});
    auto store = Store::open(f.dir / ("verify-" + std::to_string(i) + ".db")).value();
    ASSERT_TRUE(import_attestations(*store, *v, incoming, kNow).ok());
    VerifiedVotes votes(*store, *v);
    auto from_verify = answer(v->policy(), votes, {"", commit_of("c1"), ""}, kNow);
    ASSERT_TRUE(from_verify.ok());
    // The judge ingests each envelope as published by the node it names.
    for (size_t j = 0; j < envelopes.size(); ++j) subs[j].node_id = j < 4 ? f.nodes[j].id : twin.id;
    ASSERT_TRUE(judge->ingest(subs).ok());
    auto from_judge = judge->decide(key("c1"));
    ASSERT_TRUE(from_judge.ok());
    ASSERT_EQ(from_verify->decisions.size(), 1u);
    EXPECT_EQ(from_judge->decision_json(), from_verify->decisions[0].to_json().value());
  }
}

// Issue 17: a query about a subject whose votes the judge keeps (decided lately, a voter missing) is answered
// from those votes, not the store's; the answer is exactly the store's, under several rosters and policies, after
// each vote arrives, by commit and by image. And decide() right after such a query records what it found.
TEST(QuorumJudge, QueriesFromTheKeptVotesAnswerAsTheStoreDoes) {
  Fixture f;
  Node twin = f.nodes[2];
  twin.id = "c-alias";
  std::string before = format_rfc3339(kSigned - 10), after = format_rfc3339(kSigned + 10);
  struct Case {
    std::string name, header;
    std::vector<NodeWindow> windows;
    std::vector<Node> nodes;
  };
  const std::string majority = "threshold = 2\non_conflict = \"majority\"";
  std::vector<Case> cases = {
      {"plain, majority", majority, {}, {}},
      {"three required, reject", "threshold = 3\non_conflict = \"reject\"", {}, {}},
      {"a revoked before signing", majority, {{"", "", before}}, {}},
      {"b revoked after signing", majority, {{}, {"", "", after}}, {}},
      {"one key under two ids", majority, {}, {f.nodes[0], f.nodes[1], f.nodes[2], f.nodes[3], twin}},
  };
  // In arrival order: c (stored under every roster), the other honest two, an equivocation by r, the alias,
  // and r's first vote last.
  std::vector<Judge::Submission> arrivals = {
      {"c", attestation(f.nodes[2], "c1", "good")}, {"a", attestation(f.nodes[0], "c1", "good")},
      {"b", attestation(f.nodes[1], "c1", "good")}, {"r", attestation(f.nodes[3], "c1", "evil2")},
      {"c-alias", attestation(twin, "c1", "good")}, {"r", attestation(f.nodes[3], "c1", "evil")}};
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    auto v = f.verifier(cases[i].header, cases[i].windows, cases[i].nodes);
    const std::string db = "kept-" + std::to_string(i) + ".db";
    auto judge = f.judge(v, db);
    auto reader = Store::open(f.dir / db);  // the same store, read as `quorate verify` would
    ASSERT_TRUE(reader.ok()) << reader.status().to_string();
    VerifiedVotes from_store(**reader, *v);
    for (size_t n = 0; n < arrivals.size(); ++n) {
      SCOPED_TRACE("after " + std::to_string(n + 1) + " votes");
      ASSERT_TRUE(judge->ingest({arrivals[n]}).ok());
      if (n == 0) {
        ASSERT_TRUE(judge->decide(key("c1")).ok());  // the votes are kept from now on
      }
      auto expected = answer(v->policy(), from_store, {"", commit_of("c1"), ""}, kNow);
      ASSERT_TRUE(expected.ok()) << expected.status().to_string();
      ASSERT_EQ(expected->decisions.size(), 1u);
      const std::string want = expected->decisions[0].to_json().value();
      auto by_commit = judge->find_by_subject(key("c1"));
      ASSERT_TRUE(by_commit.ok()) << by_commit.status().to_string();
      ASSERT_EQ(by_commit->size(), 1u);
      EXPECT_EQ(by_commit->front().decision_json(), want);
      // decide() after the query: the same decision (taken from the query, not made twice).
      auto decided = judge->decide(key("c1"));
      ASSERT_TRUE(decided.ok());
      EXPECT_EQ(decided->decision_json(), want);
      EXPECT_EQ(decision_fingerprint(*decided), decision_fingerprint(by_commit->front()));
      for (const std::string image : {"good", "evil", "evil2"}) {
        auto want_image = answer(v->policy(), from_store, {image_of(image), "", ""}, kNow);
        ASSERT_TRUE(want_image.ok());
        auto got_image = judge->find_by_image(image_of(image));
        ASSERT_TRUE(got_image.ok());
        ASSERT_EQ(got_image->size(), want_image->decisions.size()) << image;
        for (size_t k = 0; k < got_image->size(); ++k)
          EXPECT_EQ((*got_image)[k].decision_json(), want_image->decisions[k].to_json().value()) << image;
      }
    }
  }
}

// Issue 17: a query about a subject with nothing stored since its last decision is answered from the judge's
// memory (the record keeps the time it was made); a vote stored for it makes the next answer a fresh decision.
TEST(QuorumJudge, QueriesAreAnsweredFromTheLastDecisionUntilAVoteArrives) {
  Fixture f;
  auto clock = std::make_shared<int64_t>(kNow);
  auto store = Store::open(f.dir / "store.db");
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  QuorumJudge judge(
      std::move(store).value(), f.verifier("threshold = 3\non_conflict = \"majority\""),
      [clock] { return *clock * 1000; }, 2);
  auto time_of = [](const pb::Decision& d) { return nlohmann::json::parse(d.decision_json())["time"]; };
  auto only = [&](const std::string& commit_word) {
    auto found = judge.find_by_subject(key(commit_word));
    EXPECT_TRUE(found.ok()) << found.status().to_string();
    EXPECT_EQ(found.ok() ? found->size() : 0u, 1u);
    return found.ok() && !found->empty() ? found->front() : pb::Decision();
  };
  ASSERT_TRUE(judge.ingest(f.honest_and_rogue("c1")).ok());
  auto made = judge.decide(key("c1"));
  ASSERT_TRUE(made.ok());
  *clock = kNow + 100;
  pb::Decision remembered = only("c1");
  EXPECT_EQ(time_of(remembered), format_rfc3339(kNow));
  EXPECT_EQ(decision_fingerprint(remembered), decision_fingerprint(*made));
  // r equivocates: stored, so the subject's memory is gone and the answer is decided now.
  ASSERT_TRUE(judge.ingest({{"r", attestation(f.nodes[3], "c1", "evil2")}}).ok());
  pb::Decision fresh = only("c1");
  EXPECT_EQ(time_of(fresh), format_rfc3339(kNow + 100));
  EXPECT_NE(decision_fingerprint(fresh), decision_fingerprint(*made));
  // That answer is remembered in turn.
  *clock = kNow + 200;
  EXPECT_EQ(time_of(only("c1")), format_rfc3339(kNow + 100));
}

// Issue 17: deciding a subject again reads only the rows stored since (the judge keeps the verified votes of
// subjects whose decision misses a voter). Whoever stored them (this judge or another writer of the store),
// each decision equals the one a fresh judge makes over every row, and its record names every row.
TEST(QuorumJudge, DecidingAgainCountsEveryVoteStoredSince) {
  Fixture f;
  const std::string header = "threshold = 3\non_conflict = \"majority\"";
  auto judge = f.judge(f.verifier(header));
  auto other = f.judge(f.verifier(header));  // another writer of the same store
  auto fresh_json = [&] {
    auto d = f.judge(f.verifier(header))->decide(key("c1"));
    EXPECT_TRUE(d.ok());
    return d.ok() ? d->decision_json() : std::string();
  };
  auto subs = f.honest_and_rogue("c1");
  ASSERT_TRUE(judge->ingest({subs[0]}).ok());
  auto d1 = judge->decide(key("c1"));
  ASSERT_TRUE(d1.ok());
  EXPECT_EQ(d1->agreeing_size(), 1);
  ASSERT_TRUE(judge->ingest({subs[1], subs[0]}).ok());  // b, and a again (a duplicate: no row)
  ASSERT_TRUE(other->ingest({subs[2]}).ok());           // c, by the other writer
  auto d2 = judge->decide(key("c1"));
  ASSERT_TRUE(d2.ok());
  EXPECT_EQ(d2->agreeing_size(), 3) << d2->reason();
  EXPECT_TRUE(d2->accepted());
  EXPECT_EQ(d2->decision_json(), fresh_json());
  ASSERT_TRUE(judge->ingest({subs[3]}).ok());  // r: nobody is missing now
  auto d3 = judge->decide(key("c1"));
  ASSERT_TRUE(d3.ok());
  EXPECT_EQ(d3->dissenters_size(), 1);
  EXPECT_EQ(d3->missing_size(), 0);
  EXPECT_EQ(d3->decision_json(), fresh_json());
  // Decided again with nothing new (read whole again: a complete subject left the cache): the same.
  auto d4 = judge->decide(key("c1"));
  ASSERT_TRUE(d4.ok());
  EXPECT_EQ(d4->decision_json(), d3->decision_json());
  d3->set_revision(1);
  ASSERT_TRUE(judge->record({*d3}).ok());
  auto store = Store::open(f.dir / "store.db");
  ASSERT_TRUE(store.ok());
  auto rows = (*store)->decisions();
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  auto record = nlohmann::json::parse(rows->front().json);
  EXPECT_EQ(record["agreeing"].size(), 3u);
  EXPECT_EQ(record["dissenting"].size(), 1u);
  for (const auto& r : record["agreeing"]) EXPECT_TRUE(r.is_number_integer()) << record.dump();
}

}  // namespace
}  // namespace quorate::quorum
