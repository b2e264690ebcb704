// `quorate verify` and `quorate store` as a user runs them: output, exit statuses 0/1/2, the store they leave.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "quorum/signed.h"

namespace quorate::quorum {
namespace {

using namespace quorate::quorum::testing;
using quorate::testing::run;
using quorate::testing::ScratchDir;
using quorate::testing::sh;
using quorate::testing::spit;
using ::testing::HasSubstr;
using ::testing::Not;

using quorate::testing::quorate_bin;

const std::string kNowArg = " --now " + format_rfc3339(kSigned + 3600);

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    policy_ = write_policy(dir_.path(), "threshold = 3\non_conflict = \"majority\"", nodes_);
    db_ = (dir_ / "store.db").string();
  }
  std::string file(const std::string& name, const std::string& bytes) {
    spit(dir_ / name, bytes);
    return sh((dir_ / name).string());
  }
  std::string q(const std::string& args) { return quorate_bin() + " " + args; }

  ScratchDir dir_;
  std::vector<Node> nodes_ = make_nodes({"node-a", "node-b", "node-c", "node-d"});
  std::filesystem::path policy_;
  std::string db_;
};

TEST_F(Cli, ImportListShowAndVerifyFromTheStore) {
  std::string files = file("a.json", attestation(nodes_[0], "v1", "good")) + " " +
                      file("b.json", attestation(nodes_[1], "v1", "good", "", kSigned, attest::AttestFormat::kBundle)) +
                      " " + file("c.json", attestation(nodes_[2], "v1", "good")) + " " +
                      file("d.json", attestation(nodes_[3], "v1", "rogue")) + " " + file("junk.json", "{\"not\":1}");
  auto imported = run(q("store import --policy " + sh(policy_.string()) + " " + sh(db_) + " " + files + kNowArg));
  EXPECT_EQ(imported.exit_code, 1) << imported.out;  // junk.json was rejected (and stored as a rejection)
  EXPECT_THAT(imported.out, HasSubstr("a.json: stored sha256:"));
  EXPECT_THAT(imported.out, HasSubstr("junk.json: rejected"));
  auto again =
      run(q("store import --policy " + sh(policy_.string()) + " " + sh(db_) + " " + sh((dir_ / "a.json").string())));
  EXPECT_EQ(again.exit_code, 0) << again.out;
  EXPECT_THAT(again.out, HasSubstr("a.json: duplicate"));

  auto list = run(q("store list " + sh(db_)));
  EXPECT_EQ(list.exit_code, 0) << list.out;
  EXPECT_EQ(std::count(list.out.begin(), list.out.end(), '\n'), 5) << list.out;
  EXPECT_THAT(list.out, HasSubstr("rejection"));

  auto accepted = run(
      q("verify --policy " + sh(policy_.string()) + " --store " + sh(db_) + " --image " + image_of("good") + kNowArg));
  EXPECT_EQ(accepted.exit_code, 0) << accepted.out;
  EXPECT_THAT(accepted.out, HasSubstr("ACCEPTED " + std::string(kRepo) + "@" + commit_of("v1")));
  EXPECT_THAT(accepted.out, HasSubstr("dissent: node-d " + image_of("rogue")));
  auto rogue = run(
      q("verify --policy " + sh(policy_.string()) + " --store " + sh(db_) + " --image " + image_of("rogue") + kNowArg));
  EXPECT_EQ(rogue.exit_code, 1) << rogue.out;
  EXPECT_THAT(rogue.out, HasSubstr("is not accepted"));

  auto by_commit = run(q("verify --json --policy " + sh(policy_.string()) + " --store " + sh(db_) + " --commit " +
                         commit_of("v1") + " --repo " + kRepo + kNowArg));
  EXPECT_EQ(by_commit.exit_code, 0) << by_commit.out;
  auto j = nlohmann::json::parse(by_commit.out.substr(0, by_commit.out.find('\n')));
  EXPECT_EQ(j["digest"], image_of("good"));
  EXPECT_EQ(j["time"], format_rfc3339(kSigned + 3600));

  // Decisions are recorded; show finds an attestation by a digest prefix.
  auto listed = run(q("store list --json " + sh(db_)));
  EXPECT_THAT(listed.out, HasSubstr("\"kind\":\"decision\""));
  auto digest = imported.out.substr(imported.out.find("stored sha256:") + 14, 12);
  auto shown = run(q("store show " + sh(db_) + " " + digest));
  EXPECT_EQ(shown.exit_code, 0) << shown.out;
  EXPECT_THAT(shown.out, HasSubstr("\"payloadType\":\"application/vnd.in-toto+json\""));
  EXPECT_EQ(run(q("store show " + sh(db_) + " 00000000")).exit_code, 2);
}

// Exit 1 when any file is rejected, naming every rejected one; 0 only when each was stored or a duplicate.
TEST_F(Cli, ImportExitsOneWhenAnyFileIsRejected) {
  std::string junk = file("junk.json", "{\"not\":1}") + " " + file("rogue.json", "not even json");
  auto rejected = run(q("store import --policy " + sh(policy_.string()) + " " + sh(db_) + " " + junk + kNowArg));
  EXPECT_EQ(rejected.exit_code, 1) << rejected.out;
  EXPECT_THAT(rejected.out, HasSubstr("2 of 2 files rejected: "));
  EXPECT_THAT(rejected.out, HasSubstr("junk.json, "));
  EXPECT_THAT(rejected.out, HasSubstr("rogue.json\n"));

  std::string good = file("a.json", attestation(nodes_[0], "v1", "good"));
  auto stored = run(q("store import --policy " + sh(policy_.string()) + " " + sh(db_) + " " + good + kNowArg));
  EXPECT_EQ(stored.exit_code, 0) << stored.out;
  auto duplicate = run(q("store import --policy " + sh(policy_.string()) + " " + sh(db_) + " " + good + kNowArg));
  EXPECT_EQ(duplicate.exit_code, 0) << duplicate.out;
  EXPECT_THAT(duplicate.out, HasSubstr("a.json: duplicate"));
}

// `store check`: a store file is hostile input like any other. Clean: exit 0. A row whose columns lie about its
// envelope, or whose envelope no longer verifies: exit 1, each row named with why. A row no lookup finds (not
// filed under its subject): the file fails its integrity check, exit 2. The file is never written.
TEST_F(Cli, StoreCheckNamesTheRowsTheirEnvelopesDoNotSupport) {
  std::string files = file("a.json", attestation(nodes_[0], "v1", "good")) + " " +
                      file("b.json", attestation(nodes_[1], "v1", "good")) + " " +
                      file("c.json", attestation(nodes_[2], "v2", "good"));
  ASSERT_EQ(run(q("store import --policy " + sh(policy_.string()) + " " + sh(db_) + " " + files + kNowArg)).exit_code,
            0);
  const std::string policy = " --policy " + sh(policy_.string()) + " ";
  auto clean = run(q("store check" + policy + sh(db_)));
  EXPECT_EQ(clean.exit_code, 0) << clean.out;
  EXPECT_THAT(clean.out, HasSubstr("integrity ok, 2 subject(s), 3 attestation row(s): every envelope verifies"));
  auto file_only = run(q("store check " + sh(db_)));
  EXPECT_EQ(file_only.exit_code, 0) << file_only.out;
  EXPECT_THAT(file_only.out, HasSubstr("envelopes not checked (give --policy"));

  auto tampered = [&](const std::string& sql) {
    const std::string copy = (dir_ / "tampered.db").string();
    std::filesystem::copy_file(db_, copy, std::filesystem::copy_options::overwrite_existing);
    EXPECT_EQ(run("sqlite3 " + sh(copy) + " " + sh(sql)).exit_code, 0) << sql;
    const auto before = quorate::testing::slurp(copy);
    auto r = run(q("store check" + policy + sh(copy)));
    EXPECT_EQ(quorate::testing::slurp(copy), before) << "store check wrote the file";
    return r;
  };
  auto lying = tampered("UPDATE attestations SET node_id = 'node-c' WHERE node_id = 'node-a'");
  EXPECT_EQ(lying.exit_code, 1) << lying.out;
  EXPECT_THAT(lying.out, HasSubstr("attestation row 1 (sha256:"));
  EXPECT_THAT(lying.out, HasSubstr("its columns differ from what its envelope says"));
  EXPECT_THAT(lying.out, HasSubstr("1 attestation row(s) not supported by their envelope"));
  auto garbled = tampered("UPDATE attestations SET envelope = 'not an envelope' WHERE id = 3");
  EXPECT_EQ(garbled.exit_code, 1) << garbled.out;
  EXPECT_THAT(garbled.out, HasSubstr("attestation row 3 (sha256:"));
  EXPECT_THAT(garbled.out, HasSubstr("its envelope does not verify"));
  EXPECT_THAT(garbled.out, Not(HasSubstr("attestation row 1 ")));
  auto unfiled = tampered("DELETE FROM subject_rows WHERE attestation_id = 2");
  EXPECT_EQ(unfiled.exit_code, 2) << unfiled.out;
  EXPECT_THAT(unfiled.out, HasSubstr("not filed under their subject key and image"));
  EXPECT_EQ(run(q("store check " + sh((dir_ / "absent.db").string()))).exit_code, 2);
  // Not a store at all: refused as bad input naming the file, not a crash.
  spit(dir_ / "garbage.db", std::string(8192, '\x5a'));
  auto garbage = run(q("store check" + policy + sh((dir_ / "garbage.db").string())));
  EXPECT_EQ(garbage.exit_code, 2) << garbage.out;
  EXPECT_THAT(garbage.out, HasSubstr("garbage.db"));
}

TEST_F(Cli, VerifyFilesWithoutAStore) {
  std::string files = file("a.json", attestation(nodes_[0], "v1", "good")) + " " +
                      file("b.json", attestation(nodes_[1], "v1", "good")) + " " +
                      file("c.json", attestation(nodes_[2], "v1", "good"));
  auto r = run(q("verify --policy " + sh(policy_.string()) + " " + files + kNowArg));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("1 of 1 subject key(s) accepted"));
  auto two =
      run(q("verify --policy " + sh(policy_.string()) + " " + file("a2.json", attestation(nodes_[0], "v1", "good")) +
            " " + file("b2.json", attestation(nodes_[1], "v1", "good")) + kNowArg));
  EXPECT_EQ(two.exit_code, 1) << two.out;
  EXPECT_THAT(two.out, HasSubstr("only 2 of the required 3"));
  auto forged = run(q("verify --policy " + sh(policy_.string()) + " " +
                      file("x.json", attestation(make_node("node-a"), "v1", "rogue")) + kNowArg));
  EXPECT_EQ(forged.exit_code, 1) << forged.out;
  EXPECT_THAT(forged.out, HasSubstr("refused"));
}

// A node id is the policy's text, which may have come from elsewhere: `verify --json` writes each decision with
// DEL and the C1 controls escaped (\u009b), the same JSON value, as every other JSON listing does. It wrote the
// bytes as they were, and a terminal may obey U+009B as CSI.
TEST_F(Cli, VerifyJsonEscapesTheControlsANodeIdHolds) {
  ScratchDir dir;
  auto nodes =
      make_nodes({"n\xc2\x9b"
                  "2J"});
  auto policy = write_policy(dir.path(), "threshold = 1", nodes);
  auto r = run(q("verify --json --policy " + sh(policy.string()) + " " +
                 file("c1.json", attestation(nodes[0], "v1", "good")) + kNowArg));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("n\\u009b2J"));
  EXPECT_THAT(r.out, Not(HasSubstr("\xc2\x9b")));
}

// Build args are part of the subject key (issue 14): `quorate verify` asks about one set, none without
// --build-arg, and counts only the votes built with exactly that set. Mixed, nodes a and b would equivocate
// (two digests for one subject) and neither question would reach the threshold of 3.
TEST_F(Cli, VerifyCountsOnlyVotesWithTheAskedBuildArgs) {
  const nlohmann::json spicy = {{"FLAVOR", "spicy"}};
  std::string files;
  for (int i : {0, 1, 2})
    files +=
        file("none" + std::to_string(i), attestation_with_args(nodes_[i], "v1", "plain", nlohmann::json::object())) +
        " ";
  for (int i : {0, 1, 3})
    files += file("hot" + std::to_string(i), attestation_with_args(nodes_[i], "v1", "hot", spicy)) + " ";
  const std::string verify = "verify --policy " + sh(policy_.string()) + " --commit " + commit_of("v1") + kNowArg;

  auto without = run(q(verify + " " + files));
  EXPECT_EQ(without.exit_code, 0) << without.out;
  EXPECT_THAT(without.out,
              HasSubstr("ACCEPTED " + std::string(kRepo) + "@" + commit_of("v1") + ":Containerfile@1700000000\n"));
  EXPECT_THAT(without.out, HasSubstr("1 of 1 subject key(s) accepted"));
  EXPECT_THAT(without.out, ::testing::Not(HasSubstr(image_of("hot"))));

  auto with = run(q(verify + " --build-arg FLAVOR=spicy " + files));
  EXPECT_EQ(with.exit_code, 0) << with.out;
  EXPECT_THAT(with.out, HasSubstr(":Containerfile@1700000000 with build args {\"FLAVOR\":\"spicy\"}"));
  EXPECT_THAT(with.out, HasSubstr("digest: " + image_of("hot")));
  EXPECT_THAT(with.out, ::testing::Not(HasSubstr(image_of("plain"))));

  auto other = run(q(verify + " --build-arg FLAVOR=mild " + files));
  EXPECT_EQ(other.exit_code, 1) << other.out;
  EXPECT_THAT(other.out,
              HasSubstr("nothing attested for commit " + commit_of("v1") + " with build args {\"FLAVOR\":\"mild\"}"));
  auto twice = run(q(verify + " --build-arg A=1 --build-arg A=2 " + files));
  EXPECT_EQ(twice.exit_code, 2) << twice.out;
  EXPECT_THAT(twice.out, HasSubstr("--build-arg A given twice"));

  // The same from a store, by image and commit: the spicy image is not accepted for a question without build
  // args. By image alone (the gate's question) it is, under the build args it was attested with.
  auto imported = run(q("store import --policy " + sh(policy_.string()) + " " + sh(db_) + " " + files + kNowArg));
  ASSERT_EQ(imported.exit_code, 0) << imported.out;
  const std::string from_store = "verify --policy " + sh(policy_.string()) + " --store " + sh(db_) + kNowArg;
  auto hot_without = run(q(from_store + " --image " + image_of("hot") + " --commit " + commit_of("v1")));
  EXPECT_EQ(hot_without.exit_code, 1) << hot_without.out;
  EXPECT_THAT(hot_without.out, HasSubstr("without build args"));
  auto hot_alone = run(q(from_store + " --image " + image_of("hot")));
  EXPECT_EQ(hot_alone.exit_code, 0) << hot_alone.out;
  EXPECT_THAT(hot_alone.out, HasSubstr("with build args {\"FLAVOR\":\"spicy\"}"));
  auto hot_with = run(q(from_store + " --image " + image_of("hot") + " --build-arg FLAVOR=spicy"));
  EXPECT_EQ(hot_with.exit_code, 0) << hot_with.out;
  auto plain = run(q(from_store + " --commit " + commit_of("v1")));
  EXPECT_EQ(plain.exit_code, 0) << plain.out;
  EXPECT_THAT(plain.out, HasSubstr("digest: " + image_of("plain")));
}

TEST_F(Cli, BadInputExitsTwo) {
  auto unmeetable = write_policy(dir_.path(), "threshold = 9", nodes_);
  EXPECT_EQ(run(q("verify --policy " + sh(unmeetable.string()) + " --store " + sh(db_))).exit_code, 2);
  policy_ = write_policy(dir_.path(), "threshold = 1", nodes_);
  EXPECT_EQ(
      run(q("verify --policy " + sh(policy_.string()) + " --store " + sh((dir_ / "absent.db").string()))).exit_code, 2);
  EXPECT_EQ(run(q("verify --policy " + sh(policy_.string()))).exit_code, 2);
  EXPECT_EQ(run(q("verify --policy " + sh(policy_.string()) + " --store " + sh(db_) + " --image sha256:zz")).exit_code,
            2);
  EXPECT_EQ(run(q("verify --policy " + sh(policy_.string()) + " --store " + sh(db_) + " --now yesterday")).exit_code,
            2);
}

}  // namespace
}  // namespace quorate::quorum
