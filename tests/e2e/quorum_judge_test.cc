// QuorumJudge over the real quorum store and engine (envelope verification faked): batches stored once,
// rejections recorded with a countable reason, signer must be the publisher, decisions found by image and
// by commit and recorded, everything still there after reopening the store.
#include "quorate/quorum/quorum_judge.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <set>

#include "quorate/core/sha256.h"
#include "support/test_util.h"

namespace quorate::quorum {
namespace {

namespace pb = wire::pb;

std::string keyid(const std::string& node) { return sha256_hex("key:" + node); }
std::string image(const std::string& name) { return sha256_digest("image:" + name); }
constexpr int64_t kNow = 1'800'000'000;

// Envelopes in these tests are JSON claims; "forged" ones fail as a bad signature would.
Result<VerifiedEnvelope> fake_verify(const std::string& envelope, const std::set<std::string>& roster) {
  auto j = nlohmann::json::parse(envelope, nullptr, false);
  if (j.is_discarded()) return Status::bad_input("envelope is not JSON");
  if (j.value("forged", false)) return Status::verification("bad signature on envelope");
  std::string node = j["node"];
  if (!roster.count(node)) return Status::verification("unknown key " + keyid(node));
  VerifiedEnvelope v;
  v.vote.node_id = node;
  v.vote.keyid = keyid(node);
  v.vote.subject = {"file:///repo.git", j["commit"], "quorate.toml"};
  v.vote.image_digest = image(j["image"]);
  v.vote.config_digest = sha256_digest("config:" + j["image"].get<std::string>());
  v.vote.signed_at = kNow - 60;
  v.vote.envelope_digest = sha256_digest(envelope);
  v.started_on = kNow - 120;
  return v;
}

std::string envelope(const std::string& node, const std::string& commit, const std::string& img, bool forged = false) {
  return nlohmann::json({{"node", node}, {"commit", commit}, {"image", img}, {"forged", forged}}).dump();
}

Policy make_policy(int64_t k, ConflictMode conflict) {
  std::vector<TrustedKey> keys;
  for (const char* n : {"a", "b", "c", "r"}) keys.push_back({n, keyid(n), std::nullopt, std::nullopt, std::nullopt});
  QuorumRules rules;
  rules.threshold = k;
  rules.on_conflict = conflict;
  return Policy::create(rules, Trust::create(keys).value()).value();
}

std::unique_ptr<QuorumJudge> open_judge(const std::filesystem::path& db, int64_t k, ConflictMode conflict) {
  auto store = Store::open(db);
  EXPECT_TRUE(store.ok()) << store.status().to_string();
  std::set<std::string> roster = {"a", "b", "c", "r"};
  return std::make_unique<QuorumJudge>(
      std::move(store.value()), make_policy(k, conflict),
      [roster](const std::string& e) { return fake_verify(e, roster); }, [] { return kNow * 1000; });
}

std::vector<Judge::Submission> honest_and_rogue(const std::string& commit) {
  return {{"a", envelope("a", commit, "good")}, {"b", envelope("b", commit, "good")},
          {"c", envelope("c", commit, "good")}, {"r", envelope("r", commit, "evil")}};
}

pb::SubjectKey key(const std::string& commit) {
  pb::SubjectKey k;
  k.set_repo("file:///repo.git");
  k.set_commit(commit);
  k.set_recipe_path("quorate.toml");
  return k;
}

TEST(QuorumJudge, ThreeHonestOneRogueAcceptedUnderMajorityWithTheRogueNamed) {
  testing::ScratchDir dir;
  auto judge = open_judge(dir / "store.db", 3, ConflictMode::kMajority);
  auto out = judge->ingest(honest_and_rogue("c1"));
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  for (const auto& o : *out) EXPECT_EQ(o.kind, Judge::Outcome::Kind::kStored);
  auto d = judge->decide(key("c1"));
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->accepted()) << d->reason();
  EXPECT_EQ(d->digest(), image("good"));
  EXPECT_EQ(d->agreeing_size(), 3);
  ASSERT_EQ(d->dissenters_size(), 1);
  EXPECT_EQ(d->dissenters(0).node_id(), "r");
  EXPECT_EQ(d->dissenters(0).digest(), image("evil"));
  EXPECT_FALSE(d->decision_json().empty());
}

TEST(QuorumJudge, FourRequiredUnderRejectIsRejected) {
  testing::ScratchDir dir;
  auto judge = open_judge(dir / "store.db", 4, ConflictMode::kReject);
  ASSERT_TRUE(judge->ingest(honest_and_rogue("c1")).ok());
  auto d = judge->decide(key("c1"));
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->accepted());
  EXPECT_EQ(d->dissenters_size(), 1);
}

TEST(QuorumJudge, DuplicatesForgeriesUnknownKeysAndMisattributionAreSortedOut) {
  testing::ScratchDir dir;
  auto judge = open_judge(dir / "store.db", 1, ConflictMode::kReject);
  auto out = judge->ingest({{"a", envelope("a", "c1", "good")},
                            {"a", envelope("a", "c1", "good")},         // replay
                            {"b", envelope("b", "c1", "good", true)},   // forged
                            {"x", envelope("x", "c1", "good")},         // unknown signer
                            {"r", envelope("a", "c1", "good2")}});      // r publishes a's envelope
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[0].kind, Judge::Outcome::Kind::kStored);
  EXPECT_EQ((*out)[1].kind, Judge::Outcome::Kind::kDuplicate);
  EXPECT_EQ((*out)[2].kind, Judge::Outcome::Kind::kRejected);
  EXPECT_EQ((*out)[2].reason, "bad signature");
  EXPECT_EQ((*out)[3].reason, "unknown key");
  EXPECT_EQ((*out)[4].reason, "signer is not the publishing node");
}

TEST(QuorumJudge, QueriesAndRecordsSurviveReopening) {
  testing::ScratchDir dir;
  {
    auto judge = open_judge(dir / "store.db", 3, ConflictMode::kMajority);
    ASSERT_TRUE(judge->ingest(honest_and_rogue("c1")).ok());
    auto d = judge->decide(key("c1"));
    ASSERT_TRUE(judge->record({*d}).ok());
  }
  auto judge = open_judge(dir / "store.db", 3, ConflictMode::kMajority);
  auto subjects = judge->subjects();
  ASSERT_TRUE(subjects.ok());
  ASSERT_EQ(subjects->size(), 1u);
  EXPECT_EQ((*subjects)[0].commit(), "c1");
  auto by_image = judge->find_by_image(image("good"));
  ASSERT_TRUE(by_image.ok());
  ASSERT_EQ(by_image->size(), 1u);
  EXPECT_TRUE((*by_image)[0].accepted());
  pb::SubjectKey any;
  any.set_commit("c1");
  auto by_commit = judge->find_by_subject(any);
  ASSERT_TRUE(by_commit.ok());
  EXPECT_EQ(by_commit->size(), 1u);
  auto store = Store::open(dir / "store.db");
  EXPECT_EQ((*store)->decisions()->size(), 1u);
}

TEST(QuorumJudge, RejectionCategoriesAreShortNames) {
  EXPECT_EQ(rejection_category(Status::verification("key abc: revoked at 2026-01-01")), "revoked");
  EXPECT_EQ(rejection_category(Status::bad_input("not JSON")), "bad input");
}

}  // namespace
}  // namespace quorate::quorum
