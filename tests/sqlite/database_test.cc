// sqlite::Database: user_version migrations, a newer file refused, transactions rolled back, cached statements.
#include "quorate/sqlite/database.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "support/test_util.h"

namespace quorate::sqlite {
namespace {
using quorate::testing::ScratchDir;

constexpr const char* kMigrations[] = {
    "CREATE TABLE t(k TEXT PRIMARY KEY, v INTEGER NOT NULL);",
    "ALTER TABLE t ADD COLUMN w INTEGER NOT NULL DEFAULT 7;",
};

int64_t count(Database& db) {
  auto* s = db.statement("SELECT COUNT(*) FROM t").value();
  EXPECT_EQ(s->step(), SQLITE_ROW);
  int64_t n = s->integer(0);
  s->reset();
  return n;
}

TEST(DatabaseTest, MigrationsRunInOrderOnceAndSetTheVersion) {
  ScratchDir dir;
  {
    auto db = Database::open(dir / "a.db", {}).value();
    EXPECT_EQ(db->user_version().value(), 0);
    ASSERT_TRUE(db->migrate(std::span(kMigrations).first(1)).ok());
    EXPECT_EQ(db->user_version().value(), 1);
    ASSERT_TRUE(db->exec("INSERT INTO t(k, v) VALUES('a', 1)", "insert").ok());
  }
  auto db = Database::open(dir / "a.db", {}).value();
  ASSERT_TRUE(db->migrate(kMigrations).ok());
  ASSERT_TRUE(db->migrate(kMigrations).ok());  // nothing left to do
  EXPECT_EQ(db->user_version().value(), 2);
  auto* s = db->statement("SELECT v, w FROM t WHERE k = ?").value();
  s->bind(1, std::string("a"));
  ASSERT_EQ(s->step(), SQLITE_ROW);
  EXPECT_EQ(s->integer(0), 1);
  EXPECT_EQ(s->integer(1), 7);
}

TEST(DatabaseTest, AFileFromANewerProgramIsRefused) {
  ScratchDir dir;
  auto db = Database::open(dir / "a.db", {}).value();
  ASSERT_TRUE(db->exec("PRAGMA user_version = 9", "bump").ok());
  Status s = db->migrate(kMigrations);
  EXPECT_EQ(s.code(), Code::kUnsupported);
  EXPECT_NE(s.message().find("newer"), std::string::npos);
}

// A schema version no quorate writes: a negative one indexed past the migrations (-100000 crashed every command
// opening the store, and the daemon at restart; -5 ran leftover memory as SQL).
TEST(DatabaseTest, ANegativeSchemaVersionIsRefused) {
  ScratchDir dir;
  for (int64_t version : {-1, -5, -100000}) {
    auto path = dir / ("v" + std::to_string(-version) + ".db");
    auto db = Database::open(path, {}).value();
    ASSERT_TRUE(db->exec("PRAGMA user_version = " + std::to_string(version), "set").ok());
    Status s = db->migrate(kMigrations);
    EXPECT_TRUE(s.is_bad_input()) << s.to_string();
    EXPECT_NE(s.message().find("schema version " + std::to_string(version) + " is none quorate writes"),
              std::string::npos)
        << s.message();
    auto again = Database::open(path, {});  // opened anew for writing: refused before anything is written
    EXPECT_FALSE(again.ok());
    EXPECT_TRUE(again.status().is_bad_input()) << again.status().to_string();
  }
}

// Another program's database (a mistyped --store path) is refused and left as it was, journal mode included,
// where quorate's tables were added beside its own (and the file switched to WAL).
TEST(DatabaseTest, AnotherProgramsDatabaseIsLeftAlone) {
  ScratchDir dir;
  const std::string path = (dir / "other.db").string();
  auto raw = [&](const char* sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    std::string got;
    sqlite3_exec(
        db, sql,
        [](void* out, int, char** values, char**) {
          *static_cast<std::string*>(out) += values[0] ? values[0] : "";
          return 0;
        },
        &got, nullptr);
    sqlite3_close(db);
    return got;
  };
  raw("CREATE TABLE foo(x)");
  auto db = Database::open(path, {});
  ASSERT_FALSE(db.ok()) << "opened another program's database for writing";
  EXPECT_TRUE(db.status().is_bad_input()) << db.status().to_string();
  EXPECT_NE(db.status().message().find("1 table(s) of its own and no quorate schema version"), std::string::npos)
      << db.status().message();
  EXPECT_EQ(raw("SELECT group_concat(name) FROM sqlite_master WHERE type = 'table'"), "foo");
  EXPECT_EQ(raw("PRAGMA journal_mode"), "delete");
  EXPECT_EQ(raw("PRAGMA user_version"), "0");
}

TEST(DatabaseTest, AFailedTransactionLeavesNothing) {
  ScratchDir dir;
  auto db = Database::open(dir / "a.db", {}).value();
  ASSERT_TRUE(db->migrate(kMigrations).ok());
  Status s = db->transaction([&]() -> Status {
    QR_RETURN_IF_ERROR(db->exec("INSERT INTO t(k, v) VALUES('a', 1)", "insert"));
    return db->exec("INSERT INTO t(k, v) VALUES('a', 2)", "insert again");  // primary key conflict
  });
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("insert again"), std::string::npos);
  EXPECT_EQ(count(*db), 0);
  ASSERT_TRUE(db->transaction([&] { return db->exec("INSERT INTO t(k, v) VALUES('b', 1)", "insert"); }).ok());
  EXPECT_EQ(count(*db), 1);
}

TEST(DatabaseTest, CachedStatementsComeBackResetWithoutBindings) {
  ScratchDir dir;
  auto db = Database::open(dir / "a.db", {}).value();
  ASSERT_TRUE(db->migrate(kMigrations).ok());
  auto* insert = db->statement("INSERT INTO t(k, v) VALUES(?, ?)").value();
  const std::string key = "a";
  insert->bind(1, key);
  insert->bind(2, int64_t{5});
  ASSERT_TRUE(db->done(insert, "insert").ok());
  auto* again = db->statement("INSERT INTO t(k, v) VALUES(?, ?)").value();
  EXPECT_EQ(again, insert);
  EXPECT_FALSE(db->done(again, "insert without bindings").ok());  // v NULL: NOT NULL refuses it
  EXPECT_EQ(db->changes(), 0);
  EXPECT_FALSE(db->statement("SELECT nonsense FROM nowhere").ok());
}

// The commit hook replaces SQLite's automatic checkpoint: the WAL grows past 1000 pages until a checkpoint (here
// from a second connection) copies it; the next write transaction then starts the WAL over.
TEST(DatabaseTest, CommitHookSeesTheWalAndAPassiveCheckpointCopiesIt) {
  ScratchDir dir;
  auto db = Database::open(dir / "w.db", {}).value();
  ASSERT_TRUE(db->migrate(kMigrations).ok());
  std::vector<int> seen;
  db->on_wal_commit([&](int pages) { seen.push_back(pages); });
  const std::string pad(3000, 'x');
  for (int i = 0; i < 1500; ++i) {
    auto* s = db->statement("INSERT INTO t(k, v) VALUES(?, ?)").value();
    const std::string key = std::to_string(i) + pad;
    s->bind(1, key);
    s->bind(2, int64_t{i});
    ASSERT_TRUE(db->done(s, "insert").ok());
  }
  ASSERT_EQ(seen.size(), 1500u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_GT(seen.back(), 1500);  // no automatic checkpoint restarted it
  auto other = Database::open(dir / "w.db", {}).value();
  auto c = other->checkpoint_passive();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_FALSE(c->busy);
  EXPECT_EQ(c->wal_pages, seen.back());
  EXPECT_EQ(c->checkpointed_pages, c->wal_pages);
  ASSERT_TRUE(db->exec("INSERT INTO t(k, v) VALUES('after', 1)", "insert").ok());
  EXPECT_LT(seen.back(), 10);  // the WAL started over
  EXPECT_EQ(count(*other), 1501);
}

// A file someone edited: its views and triggers would run inside quorate's own statements (an endless view hung
// `quorate verify --store`; a trigger could delete what is stored). Every object must be what the migrations
// create; a file at an older version is checked against that version before its migrations run.
TEST(DatabaseTest, ASchemaObjectQuorateDoesNotWriteIsRefusedNotRun) {
  ScratchDir dir;
  struct Case {
    const char* sql;
    const char* named;
  } cases[] = {
      {"CREATE TRIGGER wipe AFTER INSERT ON t BEGIN DELETE FROM t; END;", "trigger wipe is not quorate's"},
      {"CREATE VIEW endless AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c;",
       "view endless is not quorate's"},
      {"CREATE INDEX t_v ON t(v);", "index t_v is not quorate's"},
      {"DROP TABLE t; CREATE TABLE t(k TEXT PRIMARY KEY, v INTEGER NOT NULL, w INTEGER NOT NULL DEFAULT 7, "
       "x AS (length(k)));",
       "table t differs from quorate's definition"},
      {"DROP TABLE t; CREATE VIEW t(k, v, w) AS SELECT 'a', 1, 2;", "view t is not quorate's"},
  };
  int i = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.sql);
    const auto path = dir / ("edited" + std::to_string(i++) + ".db");
    {
      auto db = Database::open(path, {}).value();
      ASSERT_TRUE(db->migrate(kMigrations).ok());
      ASSERT_TRUE(db->exec(c.sql, "edit").ok());
    }
    auto db = Database::open(path, {}).value();
    Status s = db->migrate(kMigrations);
    EXPECT_TRUE(s.is_bad_input()) << s.to_string();
    EXPECT_NE(s.message().find(c.named), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("not the schema quorate writes"), std::string::npos) << s.message();
  }
  // Whitespace is not a difference.
  {
    auto db = Database::open(dir / "spaced.db", {}).value();
    ASSERT_TRUE(
        db->exec("CREATE TABLE t(k TEXT PRIMARY KEY,\n   v INTEGER NOT NULL);  PRAGMA user_version = 1;", "t").ok());
    EXPECT_TRUE(db->migrate(kMigrations).ok());
  }
  // A trigger in a file at version 1 is refused before migration 2 could fire it.
  const auto old = dir / "old.db";
  {
    auto db = Database::open(old, {}).value();
    ASSERT_TRUE(db->migrate(std::span(kMigrations).first(1)).ok());
    ASSERT_TRUE(db->exec("INSERT INTO t(k, v) VALUES('a', 1); CREATE TABLE log(x); CREATE TRIGGER t_log AFTER UPDATE "
                         "ON t BEGIN INSERT INTO log VALUES(1); END;",
                         "edit")
                    .ok());
  }
  auto db = Database::open(old, {}).value();
  Status s = db->migrate(kMigrations);
  EXPECT_TRUE(s.is_bad_input()) << s.to_string();
  EXPECT_EQ(db->user_version().value(), 1);  // no migration ran
}

}  // namespace
}  // namespace quorate::sqlite
