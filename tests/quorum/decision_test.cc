// The quorum engine: thresholds, conflicts, equivocation, key validity, duplicates, match modes, determinism.
#include "quorate/quorum/decision.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "quorum/votes.h"

namespace quorate::quorum {
namespace {

using namespace quorate::quorum::testing;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const std::vector<std::string> kFour = {"node-a", "node-b", "node-c", "node-d"};

std::vector<Vote> three_honest_one_rogue() {
  return {vote("node-a", "good"), vote("node-b", "good"), vote("node-c", "good"), vote("node-d", "rogue")};
}

TEST(Decide, ThreeHonestOneRogueAcceptedWithThreeUnderMajority) {
  auto votes = three_honest_one_rogue();
  Decision d = decide(policy(roster(kFour), rules(3, ConflictMode::kMajority)), subject(), votes, kNow);
  EXPECT_TRUE(d.accepted) << d.reason;
  EXPECT_EQ(d.digest, digest("good"));
  EXPECT_THAT(names_of(d.agreeing), ElementsAre("node-a", "node-b", "node-c"));
  ASSERT_EQ(d.dissenting.size(), 1u);
  EXPECT_EQ(d.dissenting[0].node, "node-d");
  EXPECT_EQ(d.dissenting[0].image_digest, digest("rogue"));
}

// The subject and reasons are what attestations said: the text for people masks them, line by line.
TEST(Decide, TextMasksWhatAttestationsSaid) {
  Decision d;
  d.subject.source_uri = "https://example.org/\x1b[2J";
  d.subject.commit = "c";
  d.subject.recipe_path = "r\nACCEPTED x";
  d.reason =
      "because \xc2\x9b"
      "1m";
  const std::string text = d.to_text();
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_EQ(text.find("\xc2\x9b"), std::string::npos) << text;
  EXPECT_THAT(text, HasSubstr("REJECTED https://example.org/?[2J@c:r?ACCEPTED x@0\n"));
  EXPECT_THAT(text, HasSubstr("  reason: because ?1m\n"));
}

TEST(Decide, ThreeHonestOneRogueRejectedWithFourUnderReject) {
  auto votes = three_honest_one_rogue();
  Decision d = decide(policy(roster(kFour), rules(4)), subject(), votes, kNow);
  EXPECT_FALSE(d.accepted);
  EXPECT_TRUE(d.digest.empty());
  EXPECT_THAT(d.reason, HasSubstr("conflict"));
  EXPECT_THAT(d.reason, HasSubstr(digest("rogue")));
}

TEST(Decide, RejectModeLetsAnyDissentBlockEvenWhenThresholdIsMet) {
  auto votes = three_honest_one_rogue();
  Decision d = decide(policy(roster(kFour), rules(3)), subject(), votes, kNow);
  EXPECT_FALSE(d.accepted);
  EXPECT_THAT(d.reason, HasSubstr("conflict"));
  EXPECT_THAT(names_of(d.agreeing), ElementsAre("node-a", "node-b", "node-c"));
  EXPECT_THAT(names_of(d.dissenting), ElementsAre("node-d"));
}

TEST(Decide, ThreeHonestAloneAcceptedWithThreeUnderReject) {
  std::vector<Vote> votes = {vote("node-a", "good"), vote("node-b", "good"), vote("node-c", "good")};
  Decision d = decide(policy(roster(kFour), rules(3)), subject(), votes, kNow);
  EXPECT_TRUE(d.accepted) << d.reason;
  EXPECT_THAT(d.missing, ElementsAre("node-d"));
}

TEST(Decide, TwoHonestTwoColludingRoguesIsAConflictNamingBothSides) {
  std::vector<Vote> votes = {vote("node-a", "good"), vote("node-b", "good"), vote("node-c", "rogue"),
                             vote("node-d", "rogue")};
  for (auto mode : {ConflictMode::kReject, ConflictMode::kMajority}) {
    Decision d = decide(policy(roster(kFour), rules(2, mode)), subject(), votes, kNow);
    EXPECT_FALSE(d.accepted);
    EXPECT_THAT(d.reason, HasSubstr("conflict"));
    EXPECT_THAT(d.reason, HasSubstr(digest("good") + " (2: node-a, node-b)"));
    EXPECT_THAT(d.reason, HasSubstr(digest("rogue") + " (2: node-c, node-d)"));
    EXPECT_EQ(d.agreeing.size() + d.dissenting.size(), 4u);
  }
}

TEST(Decide, MajorityBelowThresholdIsRejected) {
  std::vector<Vote> votes = {vote("node-a", "good"), vote("node-b", "good"), vote("node-c", "rogue")};
  Decision d = decide(policy(roster(kFour), rules(3, ConflictMode::kMajority)), subject(), votes, kNow);
  EXPECT_FALSE(d.accepted);
  EXPECT_THAT(d.reason, HasSubstr("only 2 of the required 3"));
}

TEST(Decide, EquivocatorsVotesAreVoidAndReported) {
  std::vector<Vote> votes = {vote("node-a", "good"), vote("node-b", "good"), vote("node-c", "good"),
                             vote("node-d", "good"), vote("node-d", "rogue")};
  Decision d = decide(policy(roster(kFour), rules(3)), subject(), votes, kNow);
  EXPECT_TRUE(d.accepted) << d.reason;
  EXPECT_THAT(d.equivocators, ElementsAre("node-d"));
  ASSERT_EQ(d.void_votes.size(), 2u);
  for (const auto& v : d.void_votes) EXPECT_THAT(v.reason, HasSubstr("equivocation"));
  EXPECT_THAT(names_of(d.agreeing), ElementsAre("node-a", "node-b", "node-c"));
  EXPECT_THAT(d.missing, IsEmpty());
}

TEST(Decide, AnEquivocatorCannotMakeUpTheThreshold) {
  std::vector<Vote> votes = {vote("node-a", "good"), vote("node-b", "good"), vote("node-c", "good"),
                             vote("node-c", "rogue")};
  Decision d = decide(policy(roster(kFour), rules(3)), subject(), votes, kNow);
  EXPECT_FALSE(d.accepted);
  EXPECT_THAT(d.equivocators, ElementsAre("node-c"));
}

TEST(Decide, RevokedKeyCountsOnlyBeforeItsRevocation) {
  auto keys = roster({"node-a", "node-b", "node-c"});
  keys[2].revoked_at = kNow - 7200;
  Policy p = policy(keys, rules(3));
  std::vector<Vote> after = {vote("node-a", "good"), vote("node-b", "good"), vote("node-c", "good", kNow - 3600)};
  Decision d = decide(p, subject(), after, kNow);
  EXPECT_FALSE(d.accepted);
  ASSERT_EQ(d.void_votes.size(), 1u);
  EXPECT_EQ(d.void_votes[0].node_id, "node-c");
  EXPECT_THAT(d.void_votes[0].reason, HasSubstr("key revoked"));
  std::vector<Vote> before = {vote("node-a", "good"), vote("node-b", "good"), vote("node-c", "good", kNow - 9000)};
  EXPECT_TRUE(decide(p, subject(), before, kNow).accepted);
}

TEST(Decide, ExpiredAndNotYetValidKeysDoNotCount) {
  auto keys = roster({"node-a", "node-b", "node-c"});
  keys[1].not_after = kNow - 7200;
  keys[2].not_before = kNow - 60;
  std::vector<Vote> votes = {vote("node-a", "good"), vote("node-b", "good"), vote("node-c", "good")};
  Decision d = decide(policy(keys, rules(2)), subject(), votes, kNow);
  EXPECT_FALSE(d.accepted);
  ASSERT_EQ(d.void_votes.size(), 2u);
  std::vector<std::string> reasons = {d.void_votes[0].reason, d.void_votes[1].reason};
  EXPECT_THAT(reasons, ::testing::UnorderedElementsAre(HasSubstr("key expired"), HasSubstr("key not yet valid")));
  EXPECT_THAT(d.missing, ElementsAre("node-b", "node-c"));
}

TEST(Decide, UnknownKeyIsVoid) {
  std::vector<Vote> votes = {vote("node-a", "good"), vote("node-b", "good"), vote("mallory", "good"),
                             vote("node-c", "good", kNow - 60, "", subject(), "mallory")};
  Decision d = decide(policy(roster({"node-a", "node-b", "node-c"}), rules(3)), subject(), votes, kNow);
  EXPECT_FALSE(d.accepted);
  ASSERT_EQ(d.void_votes.size(), 2u);
  for (const auto& v : d.void_votes) EXPECT_EQ(v.reason, "unknown key");
}

TEST(Decide, AKeyCannotVoteForAnotherNode) {
  // node-a's key signing a statement that claims to come from node-b is not node-b's vote.
  std::vector<Vote> votes = {vote("node-a", "good"), vote("node-b", "good", kNow - 60, "", subject(), "node-a")};
  Decision d = decide(policy(roster({"node-a", "node-b"}), rules(2)), subject(), votes, kNow);
  EXPECT_FALSE(d.accepted);
  ASSERT_EQ(d.void_votes.size(), 1u);
  EXPECT_THAT(d.void_votes[0].reason, HasSubstr("not to the claimed node 'node-b'"));
}

TEST(Decide, DuplicateSubmissionsCountOnce) {
  std::vector<Vote> votes = {vote("node-a", "good"), vote("node-a", "good"), vote("node-a", "good", kNow - 10)};
  Decision d = decide(policy(roster({"node-a", "node-b"}), rules(2)), subject(), votes, kNow);
  EXPECT_FALSE(d.accepted);
  EXPECT_THAT(d.reason, HasSubstr("only 1 of the required 2"));
  ASSERT_EQ(d.agreeing.size(), 1u);
  EXPECT_EQ(d.agreeing[0].signed_at, kNow - 10);  // the newest one represents the voter
  ASSERT_EQ(d.void_votes.size(), 1u);
  EXPECT_THAT(d.void_votes[0].reason, HasSubstr("duplicate"));
}

TEST(Decide, OneKeyUnderTwoNodeIdsCountsOnce) {
  auto keys = roster({"node-a", "node-b"});
  keys.push_back({"node-a2", keyid("node-a"), std::nullopt, std::nullopt, std::nullopt});
  // Two distinct signers: k=2 is meetable, k=3 is not.
  EXPECT_FALSE(Policy::create(rules(3), Trust::create(keys).value()).ok());
  std::vector<Vote> votes = {vote("node-a", "good"), vote("node-a2", "good", kNow - 60, "", subject(), "node-a")};
  Decision d = decide(policy(keys, rules(2)), subject(), votes, kNow);
  EXPECT_FALSE(d.accepted);
  EXPECT_THAT(names_of(d.agreeing), ElementsAre("node-a"));
  EXPECT_THAT(d.missing, ElementsAre("node-b"));
}

TEST(Decide, ANodeIdWithTwoKeysCountsOnce) {
  auto keys = roster({"node-a", "node-b"});
  keys.push_back({"node-a", keyid("node-a-second"), std::nullopt, std::nullopt, std::nullopt});
  std::vector<Vote> votes = {vote("node-a", "good"), vote("node-a", "good", kNow - 60, "", subject(), "node-a-second")};
  Decision d = decide(policy(keys, rules(2)), subject(), votes, kNow);
  EXPECT_FALSE(d.accepted);
  EXPECT_EQ(d.agreeing.size(), 1u);
}

TEST(Decide, MatchContentAcceptsImagesSharingAConfigDigest) {
  std::vector<Vote> votes = {vote("node-a", "gzip", kNow - 60, "files"), vote("node-b", "gzip", kNow - 60, "files"),
                             vote("node-c", "zstd", kNow - 60, "files")};
  Decision d =
      decide(policy(roster({"node-a", "node-b", "node-c"}), rules(3, ConflictMode::kReject, MatchMode::kContent)),
             subject(), votes, kNow);
  EXPECT_TRUE(d.accepted) << d.reason;
  EXPECT_EQ(d.digest, config("files"));
  std::vector<std::string> images = {digest("gzip"), digest("zstd")};
  std::sort(images.begin(), images.end());
  EXPECT_EQ(d.image_digests, images);
  // The same votes under match=image are a conflict.
  Decision strict = decide(policy(roster({"node-a", "node-b", "node-c"}), rules(3)), subject(), votes, kNow);
  EXPECT_FALSE(strict.accepted);
  EXPECT_THAT(strict.reason, HasSubstr("conflict"));
}

TEST(Decide, RequiredNodeMissingRejects) {
  QuorumRules r = rules(2);
  r.required = {"node-c"};
  std::vector<Vote> votes = {vote("node-a", "good"), vote("node-b", "good")};
  Policy p = policy(roster({"node-a", "node-b", "node-c"}), r);
  Decision d = decide(p, subject(), votes, kNow);
  EXPECT_FALSE(d.accepted);
  EXPECT_THAT(d.reason, HasSubstr("required node 'node-c'"));
  EXPECT_THAT(d.missing, ElementsAre("node-c"));
  votes.push_back(vote("node-c", "good"));
  EXPECT_TRUE(decide(p, subject(), votes, kNow).accepted);
}

TEST(Decide, MaxAgeVoidsOldVotes) {
  QuorumRules r = rules(2);
  r.max_age = 86400;
  std::vector<Vote> votes = {vote("node-a", "good"), vote("node-b", "good", kNow - 2 * 86400)};
  Decision d = decide(policy(roster({"node-a", "node-b"}), r), subject(), votes, kNow);
  EXPECT_FALSE(d.accepted);
  ASSERT_EQ(d.void_votes.size(), 1u);
  EXPECT_THAT(d.void_votes[0].reason, HasSubstr("too old"));
}

TEST(Decide, PinnedRunEnvironmentVoidsHostVotes) {
  std::vector<Vote> votes = {vote("node-a", "good"), vote("node-b", "good"), vote("node-c", "good")};
  votes[0].run_environment = "image";
  votes[1].run_environment = "none";
  votes[2].run_environment = "host";
  QuorumRules r = rules(3);
  EXPECT_TRUE(decide(policy(roster({"node-a", "node-b", "node-c"}), r), subject(), votes, kNow).accepted);
  r.pinned_run_environment = true;
  Decision d = decide(policy(roster({"node-a", "node-b", "node-c"}), r), subject(), votes, kNow);
  EXPECT_FALSE(d.accepted);
  ASSERT_EQ(d.void_votes.size(), 1u);
  EXPECT_EQ(d.void_votes[0].node_id, "node-c");
  EXPECT_THAT(d.void_votes[0].reason, HasSubstr("host toolchain"));
  EXPECT_THAT(names_of(d.agreeing), ElementsAre("node-a", "node-b"));
}

TEST(Decide, PinnedRunEnvironmentChangesThePolicyDigestOnlyWhenSet) {
  QuorumRules r = rules(1);
  std::string any = policy(roster({"node-a"}), r).digest();
  r.pinned_run_environment = true;
  auto pinned = policy(roster({"node-a"}), r);
  EXPECT_NE(pinned.digest(), any);
  EXPECT_THAT(pinned.canonical_json(), HasSubstr("\"run_environment\":\"pinned\""));
  EXPECT_THAT(policy(roster({"node-a"}), rules(1)).canonical_json(), ::testing::Not(HasSubstr("run_environment")));
}

TEST(Decide, VotesForOtherSubjectsAreIgnored) {
  std::vector<Vote> votes = {vote("node-a", "good"), vote("node-b", "good", kNow - 60, "", subject("other"))};
  Decision d = decide(policy(roster({"node-a", "node-b"}), rules(1)), subject(), votes, kNow);
  EXPECT_TRUE(d.accepted);
  EXPECT_THAT(names_of(d.agreeing), ElementsAre("node-a"));
}

TEST(Decide, NoVotesIsRejected) {
  Decision d = decide(policy(roster({"node-a"}), rules(1)), subject(), {}, kNow);
  EXPECT_FALSE(d.accepted);
  EXPECT_THAT(d.reason, HasSubstr("no valid votes"));
  EXPECT_THAT(d.missing, ElementsAre("node-a"));
}

TEST(Decide, JsonIsCanonical) {
  std::vector<Vote> votes = {vote("node-a", "good", 1'700'000'000)};
  Decision d = decide(policy(roster({"node-a"}), rules(1)), subject(), votes, kNow);
  std::string json = d.to_json().value();
  EXPECT_EQ(nlohmann::json::parse(json).dump(), json);  // sorted keys, no whitespace
  EXPECT_EQ(json.rfind("{\"accepted\":true,\"agreeing\":[{\"config_digest\":", 0), 0u) << json;
  EXPECT_THAT(json, HasSubstr("\"signed_at\":\"2023-11-14T22:13:20Z\""));
  EXPECT_THAT(json, HasSubstr("\"time\":\"2027-01-15T08:00:00Z\""));
  EXPECT_THAT(json, HasSubstr("\"subject\":{\"commit\":\"c0ffee\",\"recipe_path\":\"recipe.toml\",\"source_date_"
                              "epoch\":0,\"source_uri\":"));
}

// The bytes of a decision with several ballots of each kind, build args and a reason that needs escapes: the
// direct writer of to_json() and the nlohmann reference both give exactly these (issue 17: the record is
// canonical and fingerprinted; making it cheaper must not move one byte).
Decision pinned_decision() {
  auto ballot = [](std::string node, std::string dg, std::string img, std::string cfg, std::string key, int64_t at,
                   std::string env) { return Ballot{node, dg, img, cfg, key, at, env}; };
  Decision d;
  d.subject = {"https://example.org/app.git", "c0ffee", "Containerfile", 1'700'000'000, R"({"A":"1","B":"x y"})"};
  d.accepted = true;
  d.digest = "sha256:aa";
  d.image_digests = {"sha256:aa", "sha256:ab"};
  d.agreeing = {ballot("node-a", "sha256:aa", "sha256:aa", "sha256:ca", "k-a", 1'700'000'000, "sha256:e1"),
                ballot("node-b", "sha256:aa", "sha256:ab", "sha256:cb", "k-b", 1'700'000'001, "sha256:e2"),
                ballot("node-c", "sha256:aa", "sha256:aa", "sha256:cc", "k-c", 1'700'000'002, "sha256:e3")};
  d.dissenting = {ballot("node-d", "sha256:dd", "sha256:dd", "sha256:cd", "k-d", 1'700'000'003, "sha256:e4"),
                  ballot("node-e", "sha256:ee", "sha256:ee", "sha256:ce", "k-e", 1'700'000'004, "sha256:e5")};
  d.void_votes = {
      {"node-f", "k-f", "sha256:ff", "sha256:cf", "sha256:e6", "unknown key"},
      {"node-g", "k-g", "sha256:gg", "sha256:cg", "sha256:e7", "equivocation: 'node-g' signed \"a\"\\b\n\t\x01\x7f/"}};
  d.missing = {"node-h", "node-i"};
  d.equivocators = {"node-g"};
  d.reason = "3 of 9 nodes agree on sha256:aa";
  d.policy_digest = "sha256:p0";
  d.time = kNow;
  return d;
}

const std::string kPinnedDecisionJson =
    R"({"accepted":true,"agreeing":[{"config_digest":"sha256:ca","digest":"sha256:aa","envelope_digest":"sha256:e1",)"
    R"("image_digest":"sha256:aa","keyid":"k-a","node":"node-a","signed_at":"2023-11-14T22:13:20Z"},)"
    R"({"config_digest":"sha256:cb","digest":"sha256:aa","envelope_digest":"sha256:e2","image_digest":"sha256:ab",)"
    R"("keyid":"k-b","node":"node-b","signed_at":"2023-11-14T22:13:21Z"},{"config_digest":"sha256:cc",)"
    R"("digest":"sha256:aa","envelope_digest":"sha256:e3","image_digest":"sha256:aa","keyid":"k-c","node":"node-c",)"
    R"("signed_at":"2023-11-14T22:13:22Z"}],"digest":"sha256:aa","dissenting":[{"config_digest":"sha256:cd",)"
    R"("digest":"sha256:dd","envelope_digest":"sha256:e4","image_digest":"sha256:dd","keyid":"k-d","node":"node-d",)"
    R"("signed_at":"2023-11-14T22:13:23Z"},{"config_digest":"sha256:ce","digest":"sha256:ee",)"
    R"("envelope_digest":"sha256:e5","image_digest":"sha256:ee","keyid":"k-e","node":"node-e",)"
    R"("signed_at":"2023-11-14T22:13:24Z"}],"equivocators":["node-g"],"image_digests":["sha256:aa","sha256:ab"],)"
    R"("missing":["node-h","node-i"],"policy_digest":"sha256:p0","reason":"3 of 9 nodes agree on sha256:aa",)"
    R"("subject":{"build_args":{"A":"1","B":"x y"},"commit":"c0ffee","recipe_path":"Containerfile",)"
    R"("source_date_epoch":1700000000,"source_uri":"https://example.org/app.git"},"time":"2027-01-15T08:00:00Z",)"
    R"("void_votes":[{"config_digest":"sha256:cf","envelope_digest":"sha256:e6","image_digest":"sha256:ff",)"
    R"("keyid":"k-f","node_id":"node-f","reason":"unknown key"},{"config_digest":"sha256:cg",)"
    R"("envelope_digest":"sha256:e7","image_digest":"sha256:gg","keyid":"k-g","node_id":"node-g",)"
    R"("reason":"equivocation: 'node-g' signed \"a\"\\b\n\t\u0001)"
    "\x7f"
    R"(/"}]})";

TEST(DecisionJson, BytesOfADecisionWithSeveralBallotsArePinned) {
  Decision d = pinned_decision();
  EXPECT_EQ(decision_reference_json(d).value(), kPinnedDecisionJson);
  EXPECT_EQ(d.to_json().value(), kPinnedDecisionJson);
  d.subject.build_args.clear();  // no build_args member at all then
  const std::string without = d.to_json().value();
  EXPECT_EQ(without, decision_reference_json(d).value());
  EXPECT_THAT(without, HasSubstr(R"("subject":{"commit":"c0ffee",)"));
}

// Whatever the strings hold (every control byte, quotes, non-ASCII, invalid UTF-8), to_json() gives the
// reference's bytes or its error.
TEST(DecisionJson, DirectWriterEqualsTheReference) {
  std::vector<std::string> texts = {"",
                                    "plain",
                                    "caf\xc3\xa9",
                                    "\xff\xfe",
                                    "\"\\/",
                                    "a\x1f"
                                    "b",
                                    "\x7f"};
  for (int c = 0; c < 0x20; ++c) texts.push_back(std::string("x") + static_cast<char>(c) + "y");
  for (const auto& t : texts) {
    for (int field = 0; field < 6; ++field) {
      Decision d = pinned_decision();
      switch (field) {
        case 0:
          d.reason = t;
          break;
        case 1:
          d.agreeing[1].node = t;
          break;
        case 2:
          d.void_votes[0].reason = t;
          break;
        case 3:
          d.subject.source_uri = t;
          break;
        case 4:
          d.missing.push_back(t);
          break;
        case 5:
          d.dissenting[0].keyid = t;
          break;
      }
      auto fast = d.to_json();
      auto reference = decision_reference_json(d);
      ASSERT_EQ(fast.ok(), reference.ok())
          << "field " << field << " text "
          << nlohmann::json(t).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
      if (fast.ok()) {
        EXPECT_EQ(*fast, *reference) << "field " << field;
      } else {
        EXPECT_EQ(fast.status().to_string(), reference.status().to_string());
      }
    }
  }
  // Decisions the engine makes, from the random vote sets below.
  std::vector<std::string> nodes = {"n0", "n1", "n2"};
  std::vector<Vote> votes = {vote("n0", "good"), vote("n1", "rogue"), vote("n2", "good"), vote("zz", "good")};
  Decision d = decide(policy(roster(nodes), rules(2, ConflictMode::kMajority)), subject(), votes, kNow);
  EXPECT_EQ(d.to_json().value(), decision_reference_json(d).value());
}

// Random vote sets: honest, rogue, equivocating, unknown, revoked, duplicated, stale. Whatever the arrival
// order, the decision bytes are the same.
TEST(DecideProperty, OrderDoesNotMatter) {
  std::vector<std::string> nodes = {"n0", "n1", "n2", "n3", "n4", "n5", "n6"};
  auto keys = roster(nodes);
  keys[5].revoked_at = kNow - 5000;
  keys[6].not_after = kNow - 5000;
  const std::vector<std::string> images = {"x", "y", "z"};
  Rng rng(20261123);
  for (int round = 0; round < 300; ++round) {
    QuorumRules r =
        rules(1 + static_cast<int64_t>(rng.below(4)), rng.below(2) ? ConflictMode::kMajority : ConflictMode::kReject,
              rng.below(2) ? MatchMode::kContent : MatchMode::kImage);
    if (rng.below(2)) r.max_age = 8000;
    if (rng.below(3) == 0) r.required = {nodes[rng.below(nodes.size())]};
    Policy p = policy(keys, r);
    std::vector<Vote> votes;
    size_t n = rng.below(14);
    for (size_t i = 0; i < n; ++i) {
      std::string node = rng.below(8) == 0 ? "stranger" : nodes[rng.below(nodes.size())];
      std::string image = images[rng.below(images.size())];
      std::string content = rng.below(2) ? "same" : image;
      int64_t t = kNow - static_cast<int64_t>(rng.below(10000));
      votes.push_back(vote(node, image, t, content));
      if (rng.below(4) == 0) votes.push_back(votes.back());
    }
    std::string expected = decide(p, subject(), votes, kNow).to_json().value();
    for (int s = 0; s < 8; ++s) {
      shuffle(votes, rng);
      ASSERT_EQ(decide(p, subject(), votes, kNow).to_json().value(), expected) << "round " << round;
    }
  }
}

}  // namespace
}  // namespace quorate::quorum
