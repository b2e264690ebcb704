// The store: schema and migrations, idempotent inserts, queries, decisions, and surviving a killed writer.
#include "quorate/quorum/store.h"

#include "quorate/attest/statement.h"
#include "quorate/core/encoding.h"
#include "quorate/core/sha256.h"

#include <nlohmann/json.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <thread>

#include "quorum/votes.h"
#include "support/test_util.h"

namespace quorate::quorum {
namespace {

using namespace quorate::quorum::testing;
using quorate::testing::run;
using quorate::testing::ScratchDir;
using quorate::testing::sh;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

StoredAttestation stored(const Vote& v, int64_t received_at = kNow) {
  StoredAttestation a;
  a.vote = v;
  a.envelope = "{\"envelope\":\"" + v.envelope_digest + "\"}";
  a.envelope_digest = v.envelope_digest;
  a.started_on = v.signed_at - 60;
  a.received_at = received_at;
  return a;
}

std::unique_ptr<Store> open_store(const std::filesystem::path& p) {
  auto s = Store::open(p);
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return std::move(s.value());
}

TEST(Store, CreatesTheCurrentSchemaInWalMode) {
  ScratchDir dir;
  auto store = open_store(dir / "q.db");
  EXPECT_EQ(store->schema_version().value(), Store::kSchemaVersion);
  auto r = run("sqlite3 " + sh((dir / "q.db").string()) + " 'PRAGMA journal_mode;' .tables");
  EXPECT_THAT(r.out, HasSubstr("wal"));
  EXPECT_THAT(r.out, HasSubstr("attestations"));
  EXPECT_THAT(r.out, HasSubstr("rejections"));
  EXPECT_THAT(r.out, HasSubstr("decisions"));
}

// An envelope (unsigned: the backfill only reads it) whose statement is made from a build result.
std::string envelope_of(const nlohmann::json& build_result) {
  auto statement = attest::statement_from_build_result(build_result.dump(), "node-a");
  EXPECT_TRUE(statement.ok()) << statement.status().to_string();
  return "{\"payload\":\"" + base64_encode(statement.value()) + "\"}";
}

nlohmann::json build_result_for_backfill(bool with_builder_image) {
  nlohmann::json r = {
      {"schema", "https://quorate.dev/build-result/v1"},
      {"canonical_form", 1},
      {"image",
       {{"name", "registry.example/app"},
        {"manifest_digest", digest("good")},
        {"config_digest", config("good")},
        {"diff_ids", nlohmann::json::array()}}},
      {"source",
       {{"uri", "https://git.example/app.git"}, {"commit", std::string(40, 'c')}, {"recipe_path", "recipe.toml"}}},
      {"base_images", nlohmann::json::array()},
      {"platform", {{"os", "linux"}, {"architecture", "amd64"}}},
      {"source_date_epoch", 1700000000},
      {"compressor", "gzip zlib 1.2.13 level 6"},
      {"started_on", "2026-09-20T23:59:00Z"},
      {"finished_on", "2026-09-21T00:00:00Z"}};
  if (with_builder_image) r["builder_image"] = {{"name", "example.org/builders/gcc"}, {"digest", digest("builder")}};
  return r;
}

// Takes a store file back to schema 7.
// Schema 9 added the publisher of each rejection; schema 8 the subject lookup tables.
constexpr const char* kUndoSchema9 = "DROP INDEX rejections_publisher; ALTER TABLE rejections DROP COLUMN publisher; ";
constexpr const char* kUndoSchema8 =
    "DROP TABLE image_subjects; DROP TABLE subject_rows; DROP TABLE subjects; "
    "CREATE INDEX attestations_subject ON attestations(commit_id, source_uri, recipe_path, source_date_epoch); "
    "CREATE INDEX attestations_image ON attestations(image_digest); ";

TEST(Store, MigratesOlderStoresKeepingTheirRows) {
  for (int from : {1, 2, 3, 4, 5, 6, 7, 8}) {
    ScratchDir dir;
    auto db = (dir / "q.db").string();
    {
      auto store = open_store(db);
      // Envelopes whose statements name their epoch, as every real one does, and no run environment, as those
      // signed before it existed: the backfill reads the epoch and derives the environment.
      StoredAttestation a = stored(vote("node-a", "good"));
      a.envelope = envelope_of(build_result_for_backfill(false));
      ASSERT_TRUE(store->add_attestation(a).ok());
      StoredAttestation b = stored(vote("node-b", "good"));
      b.envelope = envelope_of(build_result_for_backfill(true));
      ASSERT_TRUE(store->add_attestation(b).ok());
    }
    // Take the file back to the schema an older quorate left (versions 1 and 2 had a subject index led by the
    // repository; version 2 also a commit index; versions 1 to 3 no epoch columns; 1 to 4 no run environment;
    // 1 to 5 no decision revisions, and their decision index led by the repository).
    // 1 to 6 no build args columns; 1 to 7 indexes over every row's subject key and image instead of the
    // subjects, subject_rows and image_subjects tables.
    std::string back = kUndoSchema9;
    if (from < 8) back += kUndoSchema8;
    if (from < 7) {
      back +=
          "DROP INDEX attestations_unfilled; ALTER TABLE attestations DROP COLUMN build_args; "
          "ALTER TABLE decisions DROP COLUMN build_args; ";
    }
    if (from == 6) {
      back +=
          "CREATE INDEX attestations_unfilled ON attestations(id) WHERE source_date_epoch = -1 OR run_environment = "
          "''; ";
    } else if (from < 6) {
      back +=
          "DROP INDEX decisions_subject; "
          "ALTER TABLE decisions DROP COLUMN revision; ALTER TABLE decisions DROP COLUMN fingerprint; "
          "CREATE INDEX decisions_subject ON decisions(source_uri, commit_id, recipe_path); ";
    }
    if (from < 5) back += "ALTER TABLE attestations DROP COLUMN run_environment; ";
    if (from < 4) {
      back +=
          "DROP INDEX attestations_subject; "
          "ALTER TABLE attestations DROP COLUMN source_date_epoch; "
          "ALTER TABLE decisions DROP COLUMN source_date_epoch; " +
          std::string(from < 3
                          ? "CREATE INDEX attestations_subject ON attestations(source_uri, commit_id, recipe_path); "
                          : "CREATE INDEX attestations_subject ON attestations(commit_id, source_uri, recipe_path); ") +
          std::string(from == 2 ? "CREATE INDEX attestations_commit ON attestations(commit_id); " : "");
    }
    back += "PRAGMA user_version = " + std::to_string(from) + ";";
    auto r = run("sqlite3 " + sh(db) + " " + sh(back));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto store = open_store(db);
    EXPECT_EQ(store->schema_version().value(), Store::kSchemaVersion);
    auto rows = store->attestations().value();
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].vote.run_environment, "host") << "from schema " << from;
    EXPECT_EQ(rows[1].vote.run_environment, "image") << "from schema " << from;
    auto subjects = store->subjects_with_commit("c0ffee", "").value();
    ASSERT_EQ(subjects.size(), 1u);
    EXPECT_EQ(subjects[0].source_date_epoch, 1700000000);
    // Found by its image under the key it has now (before schema 4 the pair was made with epoch -1, then the
    // backfill changed the rows' key).
    EXPECT_THAT(store->subjects_with_image(digest("good")).value(), ElementsAre(subjects[0])) << "from " << from;
    auto indexes = run("sqlite3 " + sh(db) + " .schema").out;
    // No index over every row's key or image is left to update per insert.
    for (const char* gone : {"attestations_image", "attestations_subject", "attestations_commit"}) {
      EXPECT_THAT(indexes, ::testing::Not(HasSubstr(gone))) << "from " << from;
    }
  }
}

// Schema 6 to 7 (issue 14): existing rows read as "no build args", decisions too; a Containerfile row whose
// envelope names build args gets them from it (it was built with them), so it counts under its own subject.
TEST(Store, Schema6RowsBecomeSubjectsWithoutBuildArgs) {
  ScratchDir dir;
  auto db = (dir / "q.db").string();
  const std::string commit(40, 'c');
  {
    auto store = open_store(db);
    nlohmann::json recipe = build_result_for_backfill(false);
    nlohmann::json cf = build_result_for_backfill(true);
    cf["source"]["recipe_path"] = "app/Containerfile";
    cf["source"]["recipe_kind"] = "containerfile";
    cf["build_args"] = {{"FLAVOR", "spicy"}};
    nlohmann::json cf_none = cf;
    cf_none["build_args"] = nlohmann::json::object();
    int i = 0;
    for (const auto& [result, recipe_path] : {std::pair{recipe, "recipe.toml"}, std::pair{cf, "app/Containerfile"},
                                              std::pair{cf_none, "app/Containerfile"}}) {
      SubjectKey key{"https://git.example/app.git", commit, recipe_path, 1700000000};
      StoredAttestation a = stored(vote("node-" + std::to_string(i++), "good", kNow - 3600, "", key));
      a.envelope = envelope_of(result);
      ASSERT_TRUE(store->add_attestation(a).ok());
    }
    Decision d;
    d.subject = SubjectKey{"https://git.example/app.git", commit, "recipe.toml", 1700000000};
    d.policy_digest = "sha256:p";
    d.time = kNow;
    ASSERT_TRUE(store->add_decision(d, 3, "fp").ok());
  }
  // Back to what schema 6 left: no build_args columns, its own partial index, an index of the rows' images.
  auto r = run("sqlite3 " + sh(db) + " " +
               sh(std::string(kUndoSchema9) + kUndoSchema8 +
                  "DROP INDEX attestations_unfilled; ALTER TABLE attestations DROP COLUMN build_args; "
                  "ALTER TABLE decisions DROP COLUMN build_args; CREATE INDEX attestations_unfilled ON "
                  "attestations(id) WHERE source_date_epoch = -1 OR run_environment = ''; PRAGMA user_version = 6;"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto store = open_store(db);
  EXPECT_EQ(store->schema_version().value(), Store::kSchemaVersion);
  auto rows = store->attestations().value();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].vote.subject.build_args, "");
  EXPECT_EQ(rows[1].vote.subject.build_args, R"({"FLAVOR":"spicy"})");
  EXPECT_EQ(rows[2].vote.subject.build_args, "");
  auto subjects = store->subjects_with_commit(commit, "").value();
  ASSERT_EQ(subjects.size(), 3u);
  EXPECT_EQ(subjects[0].recipe_path, "app/Containerfile");
  EXPECT_EQ(subjects[0].build_args, "");
  EXPECT_EQ(subjects[1].build_args, R"({"FLAVOR":"spicy"})");
  EXPECT_EQ(subjects[2].recipe_path, "recipe.toml");
  EXPECT_EQ(store->rows(subjects[1]).value().size(), 1u);
  EXPECT_EQ(store->subjects_with_image(digest("good")).value(), subjects);
  // The old decision is the subject's without build args, with its revision.
  auto last = store->last_decision(subjects[2]).value();
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->subject.build_args, "");
  EXPECT_EQ(store->last_revision(subjects[2]).value()->revision, 3);
  EXPECT_EQ(store->decisions().value().at(0).subject.build_args, "");
  // Reopening does not scan again: nothing is left unfilled.
  auto unfilled = run("sqlite3 " + sh(db) + " " + sh("SELECT COUNT(*) FROM attestations WHERE build_args IS NULL;"));
  EXPECT_EQ(unfilled.out, "0\n");
}

// Two builds of one commit and recipe with different build args are two subjects: their rows, subject keys,
// decisions and revisions never mix.
TEST(Store, KeepsSubjectsWithDifferentBuildArgsApart) {
  ScratchDir dir;
  auto store = open_store(dir / "q.db");
  SubjectKey none = subject();
  SubjectKey spicy = subject();
  spicy.build_args = R"({"FLAVOR":"spicy"})";
  SubjectKey mild = subject();
  mild.build_args = R"({"FLAVOR":"mild"})";
  ASSERT_TRUE(store->add_attestation(stored(vote("node-a", "plain", kNow - 3600, "", none))).ok());
  ASSERT_TRUE(store->add_attestation(stored(vote("node-a", "hot", kNow - 3600, "", spicy))).ok());
  ASSERT_TRUE(store->add_attestation(stored(vote("node-b", "hot", kNow - 3600, "", spicy))).ok());
  ASSERT_TRUE(store->add_attestation(stored(vote("node-a", "soft", kNow - 3600, "", mild))).ok());
  EXPECT_THAT(store->subjects().value(), ElementsAre(none, mild, spicy));
  EXPECT_THAT(store->subjects_with_image(digest("hot")).value(), ElementsAre(spicy));
  auto rows = store->rows(spicy).value();
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& row : rows) EXPECT_EQ(row.vote.subject, spicy);
  ASSERT_EQ(store->rows(none).value().size(), 1u);
  EXPECT_EQ(store->rows(none).value()[0].vote.image_digest, digest("plain"));
  Decision d;
  d.subject = spicy;
  d.policy_digest = "sha256:p";
  ASSERT_TRUE(store->add_decision(d, 5, "fp-spicy").ok());
  EXPECT_FALSE(store->last_decision(none).value().has_value());
  EXPECT_FALSE(store->last_revision(mild).value().has_value());
  EXPECT_EQ(store->last_revision(spicy).value()->revision, 5);
  EXPECT_EQ(store->last_decision(spicy).value()->subject, spicy);
}

TEST(Store, RefusesAStoreFromANewerQuorate) {
  ScratchDir dir;
  auto db = (dir / "q.db").string();
  { open_store(db); }
  ASSERT_EQ(run("sqlite3 " + sh(db) + " 'PRAGMA user_version = 99;'").exit_code, 0);
  auto s = Store::open(db);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kUnsupported);
  EXPECT_THAT(s.status().message(), HasSubstr("99"));
}

// A row missing from the lookup tables of schema 8 is found by no lookup: the integrity check names it.
TEST(Store, IntegrityCheckFindsRowsNotFiledUnderTheirKey) {
  ScratchDir dir;
  auto db = (dir / "q.db").string();
  {
    auto store = open_store(db);
    ASSERT_TRUE(store->add_attestation(stored(vote("node-a", "good"))).ok());
    ASSERT_TRUE(store->add_attestation(stored(vote("node-b", "good"))).ok());
    ASSERT_TRUE(store->check_integrity().ok()) << store->check_integrity().to_string();
  }
  for (const char* tamper : {"DELETE FROM subject_rows WHERE attestation_id = 2", "DELETE FROM image_subjects",
                             "UPDATE attestations SET commit_id = 'beef' WHERE id = 2"}) {
    ScratchDir copy;
    auto bad = (copy / "q.db").string();
    std::filesystem::copy_file(db, bad);
    ASSERT_EQ(run("sqlite3 " + sh(bad) + " " + sh(tamper)).exit_code, 0);
    auto store = open_store(bad);
    auto st = store->check_integrity();
    ASSERT_FALSE(st.ok()) << tamper;
    EXPECT_THAT(st.message(), HasSubstr("not filed under their subject key and image")) << tamper;
  }
}

// The lookup tables are a cache: a row filed under another subject, or an image paired with a subject none of
// whose rows names it, is not returned for it.
TEST(Store, LookupsIgnoreRowsAndImagesFiledUnderAnotherKey) {
  ScratchDir dir;
  auto db = (dir / "q.db").string();
  {
    auto store = open_store(db);
    ASSERT_TRUE(store->add_attestation(stored(vote("node-a", "good"))).ok());
    ASSERT_TRUE(store->add_attestation(stored(vote("node-a", "other", kNow - 50, "", subject("beef")))).ok());
  }
  auto r = run("sqlite3 " + sh(db) + " " +
               sh("INSERT INTO subject_rows SELECT s.id, 2 FROM subjects s WHERE s.id = 1; "
                  "INSERT INTO image_subjects SELECT image_digest, 1 FROM attestations WHERE id = 2;"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto store = open_store(db);
  auto rows = store->rows(subject()).value();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].vote.image_digest, digest("good"));
  EXPECT_EQ(store->rows(subject(), 0).value().size(), 1u);
  EXPECT_THAT(store->subjects_with_image(digest("other")).value(), ElementsAre(subject("beef")));
  EXPECT_THAT(store->subjects_with_commit("c0ffee", "").value(), ElementsAre(subject()));
}

TEST(Store, TheSameEnvelopeTwiceIsOneRow) {
  ScratchDir dir;
  auto store = open_store(dir / "q.db");
  auto a = stored(vote("node-a", "good"));
  EXPECT_TRUE(store->add_attestation(a).value());
  EXPECT_FALSE(store->add_attestation(a).value());
  a.received_at += 100;
  EXPECT_FALSE(store->add_attestation(a).value());
  EXPECT_EQ(store->attestations().value().size(), 1u);
  Rejection rej{0, sha256_digest("junk"), "junk", "verification", "bad signature", kNow};
  EXPECT_TRUE(store->add_rejection(rej).value());
  EXPECT_FALSE(store->add_rejection(rej).value());
  EXPECT_EQ(store->rejections().value().size(), 1u);
}

// A node that sends garbage needs no signing key to make the verifier keep rejections: the store keeps the first
// 1,000 of each publisher (64 MiB at most), across reopening, and still every one without a publisher (a file
// an operator imports).
TEST(Store, KeepsABoundedNumberOfEachPublishersRejections) {
  ScratchDir dir;
  auto rejection = [](const std::string& publisher, int i, size_t bytes = 16) {
    Rejection r;
    r.envelope = std::string(bytes, 'x') + std::to_string(i);
    r.envelope_digest = sha256_digest(r.envelope + publisher);
    r.code = "verification";
    r.reason = "bad signature";
    r.received_at = kNow;
    r.publisher = publisher;
    return r;
  };
  const int cap = static_cast<int>(Store::kMaxRejectionsPerPublisher);
  {
    auto store = open_store(dir / "q.db");
    for (int i = 0; i < cap; ++i) ASSERT_TRUE(store->add_rejection(rejection("rogue", i)).value()) << i;
    EXPECT_FALSE(store->add_rejection(rejection("rogue", cap)).value());
    EXPECT_TRUE(store->add_rejection(rejection("honest", 0)).value());
    for (int i = 0; i < cap + 5; ++i) ASSERT_TRUE(store->add_rejection(rejection("", i)).value()) << i;
  }
  auto store = open_store(dir / "q.db");
  EXPECT_FALSE(store->add_rejection(rejection("rogue", cap + 1)).value()) << "the bound holds after a reopen";
  auto kept = store->rejections().value();
  EXPECT_EQ(kept.size(), static_cast<size_t>(cap + 1 + cap + 5));
  EXPECT_EQ(std::count_if(kept.begin(), kept.end(), [](const Rejection& r) { return r.publisher == "rogue"; }), cap);

  // And by bytes: 1 MiB envelopes stop at 64 MiB.
  const size_t mib = size_t{1} << 20;
  int big = 0;
  while (big < 100 && store->add_rejection(rejection("big", big, mib)).value()) ++big;
  EXPECT_EQ(big, 63) << "envelopes of 1 MiB and a few bytes: 63 fit in 64 MiB";
}

TEST(Store, VotesRoundTripAndQueriesFindSubjects) {
  ScratchDir dir;
  auto store = open_store(dir / "q.db");
  std::vector<Vote> votes = {
      vote("node-a", "good"), vote("node-b", "good"), vote("node-a", "other", kNow - 50, "", subject("beef")),
      vote("node-a", "good", kNow - 50, "", {"https://elsewhere/app.git", "c0ffee", "recipe.toml"})};
  for (const auto& v : votes) ASSERT_TRUE(store->add_attestation(stored(v)).ok());
  auto got = store->rows(subject()).value();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].vote, votes[0]);
  EXPECT_EQ(got[1].vote, votes[1]);
  EXPECT_EQ(store->envelope(got[0].id).value(), stored(votes[0]).envelope);
  EXPECT_TRUE(store->envelope(999).status().is_not_found());
  EXPECT_EQ(store->subjects().value().size(), 3u);
  EXPECT_THAT(store->subjects_with_image(digest("other")).value(), ElementsAre(subject("beef")));
  EXPECT_EQ(store->subjects_with_commit("c0ffee", "").value().size(), 2u);
  EXPECT_THAT(store->subjects_with_commit("c0ffee", subject().source_uri).value(), ElementsAre(subject()));
  EXPECT_EQ(store->all_rows().value().size(), 4u);
}

TEST(Store, FindsByDigestPrefix) {
  ScratchDir dir;
  auto store = open_store(dir / "q.db");
  auto a = stored(vote("node-a", "good"));
  ASSERT_TRUE(store->add_attestation(a).ok());
  auto found = store->find_attestation(a.envelope_digest.substr(7, 12)).value();
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->envelope, a.envelope);
  EXPECT_EQ(found->vote, a.vote);
  EXPECT_TRUE(store->find_attestation(a.envelope_digest).value().has_value());
  EXPECT_FALSE(store->find_attestation("sha256:0000").value().has_value());
  EXPECT_FALSE(store->find_attestation("'; DROP TABLE attestations; --").value().has_value());
}

TEST(Store, KeepsDecisionsWithTheirPolicyDigest) {
  ScratchDir dir;
  auto store = open_store(dir / "q.db");
  std::vector<Vote> votes = {vote("node-a", "good")};
  Policy p = policy(roster({"node-a"}), rules(1));
  Decision d = decide(p, subject(), votes, kNow);
  ASSERT_TRUE(store->add_decision(d).ok());
  auto all = store->decisions().value();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].policy_digest, p.digest());
  EXPECT_TRUE(all[0].accepted);
  EXPECT_EQ(all[0].digest, digest("good"));
  EXPECT_EQ(all[0].json, d.to_json().value());
}

TEST(Store, TransactionRollsBackOnError) {
  ScratchDir dir;
  auto store = open_store(dir / "q.db");
  Status st = store->transaction([&] {
    auto added = store->add_attestation(stored(vote("node-a", "good")));
    if (!added.ok()) return added.status();
    return Status::internal("give up");
  });
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(store->attestations().value().empty());
}

// A writer killed with SIGKILL in the middle of importing leaves a store that passes integrity_check, in which
// every row is complete, and which accepts further writes.
TEST(StoreCrash, KilledWriterLeavesTheStoreIntact) {
  ScratchDir dir;
  auto db = dir / "q.db";
  { open_store(db); }
  for (int attempt = 0; attempt < 3; ++attempt) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto s = Store::open(db);
      if (!s.ok()) ::_exit(3);
      for (int i = 0;; ++i) {
        // Single inserts and batches, so the kill lands inside both kinds of transaction.
        int batch = i % 2 ? 1 : 50;
        Status st = (*s)->transaction([&] {
          for (int j = 0; j < batch; ++j) {
            Vote v = vote("node-" + std::to_string(j), "img" + std::to_string(i), kNow - i, "",
                          subject("commit-" + std::to_string(attempt) + "-" + std::to_string(i)));
            auto added = (*s)->add_attestation(stored(v));
            if (!added.ok()) return added.status();
          }
          return Status();
        });
        if (!st.ok()) ::_exit(4);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + 100 * attempt));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped by itself: " << status;

    auto store = open_store(db);
    ASSERT_TRUE(store->check_integrity().ok()) << store->check_integrity().to_string();
    auto rows = store->attestations().value();
    EXPECT_GT(rows.size(), 0u);
    std::cout << "attempt " << attempt << ": " << rows.size() << " rows after the kill\n";
    for (const auto& a : rows) {
      auto full = store->find_attestation(a.envelope_digest).value();
      ASSERT_TRUE(full.has_value());
      EXPECT_EQ(full->envelope, "{\"envelope\":\"" + a.envelope_digest + "\"}");
      EXPECT_EQ(a.vote.envelope_digest.size(), 71u);
      EXPECT_EQ(a.vote.image_digest.size(), 71u);
      EXPECT_EQ(a.vote.config_digest.size(), 71u);
      EXPECT_EQ(a.vote.keyid.size(), 64u);
      EXPECT_FALSE(a.vote.node_id.empty());
      EXPECT_FALSE(a.vote.subject.commit.empty());
      EXPECT_EQ(a.received_at, kNow);
    }
    // Batches are all or nothing: every batch commit has its 50 rows.
    std::map<std::string, int> per_commit;
    for (const auto& a : rows) per_commit[a.vote.subject.commit]++;
    for (const auto& [commit, n] : per_commit) EXPECT_TRUE(n == 1 || n == 50) << commit << ": " << n;
    EXPECT_TRUE(
        store->add_attestation(stored(vote("node-x", "after", kNow, "", subject("after-" + std::to_string(attempt)))))
            .ok());
  }
}

// The gate's view of a store: read-only, never created, writes refused, the schema version checked.
TEST(StoreReadOnly, ReadsAnExistingStoreAndRefusesWritesAndMissingFiles) {
  ScratchDir dir;
  EXPECT_TRUE(Store::open_read_only(dir / "none.db").status().is_not_found());
  EXPECT_FALSE(std::filesystem::exists(dir / "none.db"));
  {
    auto rw = Store::open(dir / "store.db");
    ASSERT_TRUE(rw.ok()) << rw.status().to_string();
  }
  auto ro = Store::open_read_only(dir / "store.db");
  ASSERT_TRUE(ro.ok()) << ro.status().to_string();
  EXPECT_TRUE((*ro)->subjects().ok());
  EXPECT_FALSE((*ro)->add_decision(Decision{}).ok());
  quorate::testing::spit(dir / "garbage.db", std::string(4096, 'x'));
  auto garbage = Store::open_read_only(dir / "garbage.db");
  EXPECT_TRUE(!garbage.ok() || !(*garbage)->subjects().ok());
}

// Rows of ~3 KB envelopes (as the verifier stores them) for the checkpointer tests: row i of a run named `tag`.
StoredAttestation ckpt_row(const std::string& tag, int i) {
  Vote v = vote("node-" + std::to_string(i % 5), "img" + std::to_string(i), kNow - i, "",
                subject(tag + "-commit-" + std::to_string(i / 5)));
  StoredAttestation a = stored(v);
  a.envelope = "{\"envelope\":\"" + v.envelope_digest + "\",\"pad\":\"" + std::string(3000, 'p') + "\"}";
  return a;
}

// A long import (~3 pages of WAL per row, far more than kWalRestartPages in all) keeps the WAL bounded: the
// background thread checkpoints, the writer finishes the checkpoint so the WAL starts over, and a reader next to
// the writer sees every committed row. Closing the store joins the thread and removes the WAL.
TEST(StoreCheckpoint, BackgroundCheckpointerKeepsTheWalBoundedDuringALongImport) {
  ScratchDir dir;
  auto db = dir / "q.db";
  auto store = open_store(db);
  auto reader = Store::open_read_only(db);
  ASSERT_TRUE(reader.ok()) << reader.status().to_string();
  constexpr int kRows = 20000, kBatch = 500;
  for (int i = 0; i < kRows; i += kBatch) {
    Status st = store->transaction([&]() -> Status {
      for (int j = i; j < i + kBatch; ++j) {
        if (!QR_TRY(store->add_attestation(ckpt_row("bounded", j)))) return Status::internal("duplicate");
      }
      return Status();
    });
    ASSERT_TRUE(st.ok()) << st.to_string();
    auto last = (*reader)->find_attestation(ckpt_row("bounded", i + kBatch - 1).envelope_digest);
    ASSERT_TRUE(last.ok() && last->has_value()) << "row " << i + kBatch - 1 << " not visible to a reader";
  }
  auto stats = store->checkpoint_stats();
  std::cout << "largest WAL " << stats.largest_wal_pages << " pages; " << stats.background
            << " background checkpoints (" << stats.background_pages << " pages), " << stats.writer
            << " by the writer\n";
  EXPECT_GT(stats.background, 0);
  EXPECT_GT(stats.writer, 0);
  // Without the writer's part the WAL never starts over while the import runs (it reached ~60,000 pages).
  EXPECT_LT(stats.largest_wal_pages, 3 * Store::kWalRestartPages);
  EXPECT_LE(std::filesystem::file_size(db.string() + "-wal"),
            static_cast<uintmax_t>(3 * Store::kWalRestartPages) * (4096 + 24) + 32);
  EXPECT_EQ((*reader)->attestations().value().size(), static_cast<size_t>(kRows));
  reader->reset();
  store.reset();
  EXPECT_FALSE(std::filesystem::exists(db.string() + "-wal"));
  auto again = open_store(db);
  EXPECT_TRUE(again->check_integrity().ok());
  EXPECT_EQ(again->attestations().value().size(), static_cast<size_t>(kRows));
}

// A writer SIGKILLed in the middle of a long import (background and writer checkpoints running) loses nothing it
// acknowledged: the child reports each committed transaction's last row over a pipe only after COMMIT returned,
// and every reported row is in the reopened store.
TEST(StoreCheckpoint, KilledWriterKeepsEveryAcknowledgedRow) {
  ScratchDir dir;
  auto db = dir / "q.db";
  { open_store(db); }
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const std::string tag = "kill" + std::to_string(attempt);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      auto s = Store::open(db);
      if (!s.ok()) ::_exit(3);
      for (int i = 0;; i += 100) {
        Status st = (*s)->transaction([&]() -> Status {
          for (int j = i; j < i + 100; ++j) QR_TRY((*s)->add_attestation(ckpt_row(tag, j)));
          return Status();
        });
        if (!st.ok()) ::_exit(4);
        int32_t acked = i + 99;
        if (::write(fds[1], &acked, sizeof acked) != sizeof acked) ::_exit(5);
      }
    }
    ::close(fds[1]);
    struct Reaper {  // kills and reaps the writer when an assertion below returns early
      pid_t pid;
      ~Reaper() {
        if (pid > 0) {
          ::kill(pid, SIGKILL);
          ::waitpid(pid, nullptr, 0);
        }
      }
    } reaper{pid};
    // Kill once well past kWalRestartPages (the writer has finished checkpoints by then), at a different point
    // each attempt.
    const int32_t kill_after = 6000 + 1700 * attempt;
    int32_t acked = -1;
    while (acked < kill_after) {
      int32_t v;
      ASSERT_EQ(::read(fds[0], &v, sizeof v), static_cast<ssize_t>(sizeof v)) << "the writer stopped";
      acked = v;
    }
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    reaper.pid = 0;
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped by itself: " << status;
    int32_t v;  // acknowledgements written before the kill landed
    while (::read(fds[0], &v, sizeof v) == static_cast<ssize_t>(sizeof v)) acked = v;
    ::close(fds[0]);

    auto store = open_store(db);
    ASSERT_TRUE(store->check_integrity().ok()) << store->check_integrity().to_string();
    size_t found = 0;
    for (int j = 0; j <= acked; ++j) {
      auto a = store->find_attestation(ckpt_row(tag, j).envelope_digest);
      ASSERT_TRUE(a.ok());
      ASSERT_TRUE(a->has_value()) << "acknowledged row " << j << " of " << acked << " lost";
      EXPECT_EQ((*a)->envelope, ckpt_row(tag, j).envelope);
      ++found;
    }
    std::cout << "attempt " << attempt << ": " << found << " acknowledged rows, all there\n";
  }
}

}  // namespace
}  // namespace quorate::quorum
