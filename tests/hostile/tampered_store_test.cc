// A tampered store at the release gate (issue 11, item 2): `quorate verify --store` on an edited copy of the
// verifier's store.db must decide from envelopes it verifies itself, never from the rows' columns.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "quorum/signed.h"

namespace quorate::hostile {
namespace {

using namespace quorate::quorum::testing;
using quorate::testing::quorate_bin;
using quorate::testing::run;
using quorate::testing::sh;
using quorate::testing::spit;
using ::testing::HasSubstr;

const std::string kNowArg = " --now " + format_rfc3339(kSigned + 3600);

class TamperedStore : public ::testing::Test {
 protected:
  void SetUp() override {
    policy_ = sh(write_policy(dir_.path(), "threshold = 3\non_conflict = \"majority\"", nodes_).string());
    db_ = sh((dir_ / "store.db").string());
    std::string files;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      auto f = dir_ / ("att-" + std::to_string(i) + ".json");
      spit(f, attestation(nodes_[i], "v1", i < 3 ? "good" : "rogue"));
      files += " " + sh(f.string());
    }
    auto imported = run(quorate_bin() + " store import --policy " + policy_ + " " + db_ + files);
    ASSERT_EQ(imported.exit_code, 0) << imported.out;
  }
  void sql(const std::string& statement) {
    auto r = run("sqlite3 " + db_ + " " + sh(statement));
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  quorate::testing::CommandResult verify(const std::string& image) {
    return run(quorate_bin() + " verify --policy " + policy_ + " --store " + db_ + " --image " + image + kNowArg);
  }

  quorate::testing::ScratchDir dir_;
  std::vector<Node> nodes_ = make_nodes({"node-a", "node-b", "node-c", "node-r"});
  std::string policy_, db_;
};

TEST_F(TamperedStore, AnUntouchedStoreAcceptsTheHonestImage) {
  auto r = verify(image_of("good"));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("ignored")));
}

// The attack as found: one UPDATE made a rogue digest ACCEPTED.
TEST_F(TamperedStore, EditedDigestColumnsDoNotMakeARogueImageAccepted) {
  sql("UPDATE attestations SET image_digest = '" + image_of("rogue") + "'");
  auto r = verify(image_of("rogue"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr(image_of("rogue") + " is not accepted"));
  EXPECT_THAT(r.out, HasSubstr("ignored: its columns differ from what its envelope says"));
}

// Under `run_environment = "pinned"`, host-built votes do not count; editing the column does not change that.
TEST_F(TamperedStore, AnEditedRunEnvironmentDoesNotMakeHostVotesCount) {
  std::filesystem::create_directories(dir_ / "pinned");
  auto pinned = sh(
      write_policy(dir_ / "pinned", "threshold = 3\non_conflict = \"majority\"\nrun_environment = \"pinned\"", nodes_)
          .string());
  auto verify_pinned = [&] {
    return run(quorate_bin() + " verify --policy " + pinned + " --store " + db_ + " --image " + image_of("good") +
               kNowArg);
  };
  auto before = verify_pinned();
  EXPECT_EQ(before.exit_code, 1) << before.out;
  EXPECT_THAT(before.out, HasSubstr("host toolchain"));
  sql("UPDATE attestations SET run_environment = 'image'");
  auto after = verify_pinned();
  EXPECT_EQ(after.exit_code, 1) << after.out;
  EXPECT_THAT(after.out, HasSubstr("ignored: its columns differ from what its envelope says"));
}

TEST_F(TamperedStore, RowsWhoseEnvelopeIsNotAnEnvelopeDoNotCount) {
  // Three forged rows claiming the rogue digest, by three roster nodes, with no valid envelope behind them.
  for (const char* node : {"node-a", "node-b", "node-c"}) {
    sql(std::string(
            "INSERT INTO attestations(envelope_digest, envelope, node_id, keyid, source_uri, commit_id, "
            "recipe_path, image_digest, config_digest, started_on, finished_on, received_at, source_date_epoch) "
            "SELECT 'sha256:forged-") +
        node + "', 'not an envelope', '" + node +
        "', keyid, source_uri, commit_id, "
        "recipe_path, image_digest, config_digest, started_on, finished_on, received_at, source_date_epoch "
        "FROM attestations WHERE node_id = 'node-r'");
  }
  // Rows not filed under their subject (table subject_rows) are not even looked at.
  auto unfiled = verify(image_of("rogue"));
  EXPECT_EQ(unfiled.exit_code, 1) << unfiled.out;
  EXPECT_THAT(unfiled.out, HasSubstr(image_of("rogue") + " is not accepted"));
  // A forger who files them too: read, and ignored.
  sql("INSERT INTO subject_rows SELECT (SELECT r.subject_id FROM subject_rows r JOIN attestations a ON "
      "a.id = r.attestation_id WHERE a.node_id = 'node-r'), id FROM attestations WHERE envelope_digest LIKE "
      "'sha256:forged-%'");
  auto r = verify(image_of("rogue"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr(image_of("rogue") + " is not accepted"));
  EXPECT_THAT(r.out, HasSubstr("ignored: its envelope does not verify"));
}

TEST_F(TamperedStore, ASwappedEnvelopeIsCaughtByItsColumns) {
  // node-a's row made to carry the rogue's envelope: the envelope verifies, but as node-r's vote.
  sql("UPDATE attestations SET envelope = (SELECT envelope FROM attestations WHERE node_id = 'node-r') "
      "WHERE node_id = 'node-a'");
  auto r = verify(image_of("good"));
  EXPECT_EQ(r.exit_code, 1) << r.out;  // node-b and node-c alone are below the threshold of 3
  EXPECT_THAT(r.out, HasSubstr("ignored: its columns differ"));
}

// A view or trigger added to the store runs inside quorate's own queries: an endless view hung `quorate verify`
// (killed after 20 s), a trigger would run with every insert. Each command refuses the file, naming the object.
TEST_F(TamperedStore, AViewOrTriggerInTheStoreIsRefusedNotRun) {
  sql("DROP TABLE image_subjects; CREATE VIEW image_subjects(image_digest, subject_id) AS WITH RECURSIVE "
      "c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT (SELECT image_digest FROM attestations LIMIT 1), x "
      "FROM c");
  auto r = run("timeout 60 " + quorate_bin() + " verify --policy " + policy_ + " --store " + db_ + " --image " +
               image_of("good") + kNowArg);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("view image_subjects is not quorate's: not the schema quorate writes"));
  auto listed = run("timeout 60 " + quorate_bin() + " store list " + db_);
  EXPECT_EQ(listed.exit_code, 2) << listed.out;
  EXPECT_THAT(listed.out, HasSubstr("view image_subjects is not quorate's"));
}

// A row's envelope digest is its name in `store list`, which showed 16 hex digits from after "sha256:": one
// edited to something shorter ended the listing with "internal error: unexpected exception:
// basic_string::substr" (exit 2). It is listed as it is, masked.
TEST_F(TamperedStore, AnEditedEnvelopeDigestIsListedAsItIs) {
  sql("UPDATE attestations SET envelope_digest = 'x' WHERE node_id = 'node-a'");
  sql("INSERT INTO rejections(envelope_digest, envelope, code, reason, received_at) "
      "VALUES('y\x1b', 'not an envelope', 'bad_input', 'edited', 0)");
  auto r = run(quorate_bin() + " store list " + db_);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("attestation x node-a "));
  EXPECT_THAT(r.out, HasSubstr("rejection   y? bad_input: edited"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("internal error")));
}

TEST_F(TamperedStore, ATriggerIsRefusedBeforeAnImportCouldFireIt) {
  sql("CREATE TRIGGER wipe AFTER INSERT ON attestations BEGIN DELETE FROM attestations; END");
  auto f = dir_ / "again.json";
  spit(f, attestation(nodes_[0], "v2", "good"));
  auto r = run("timeout 60 " + quorate_bin() + " store import --policy " + policy_ + " " + db_ + " " + sh(f.string()));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("trigger wipe is not quorate's"));
  auto rows = run("sqlite3 " + db_ + " 'SELECT COUNT(*) FROM attestations'");
  EXPECT_EQ(rows.out, "4\n");
}

}  // namespace
}  // namespace quorate::hostile
