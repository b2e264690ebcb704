// SQLite in one place: a database file opened durably (WAL, synchronous=FULL, a busy timeout), prepared
// statements owned and cached, schema migrations keyed on PRAGMA user_version, transactions.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "quorate/core/status.h"

namespace quorate::sqlite {

enum class Threading {
  kSerialized,   // SQLITE_OPEN_FULLMUTEX: the connection may be used from several threads (SQLite locks)
  kMultiThread,  // SQLITE_OPEN_NOMUTEX: one thread at a time, the caller's to ensure
};

struct OpenOptions {
  int busy_timeout_ms = 5000;  // how long to wait for another connection's write lock before failing
  Threading threading = Threading::kSerialized;
  std::string extra_pragmas;  // run after "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
  // Opened with SQLITE_OPEN_READONLY and PRAGMA query_only: never created, never written, journal mode left as
  // the file has it (a reader next to a daemon writing the file in WAL mode).
  bool read_only = false;
  // Tables a file of schema version 0 may hold: one written before its schema was versioned, which the caller
  // adopts. Any other table at version 0 makes the file another program's, refused at open.
  std::vector<std::string> unversioned_tables;
};

// One prepared statement, finalized on destruction. Not thread-safe.
class Statement {
 public:
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  // Text and blobs are borrowed (SQLITE_STATIC): they must outlive the step that reads them, and the
  // statement is reset (bindings cleared) before its next use, so SQLite never reads them later.
  void bind(int i, std::string_view s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
  }
  void bind_blob(int i, std::string_view s) {
    sqlite3_bind_blob(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
  }
  void bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step() { return sqlite3_step(stmt_); }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  // Column i of the current row as bytes (text or blob; "" for NULL) or as an integer.
  std::string text(int i) const {
    auto p = static_cast<const char*>(sqlite3_column_blob(stmt_, i));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i))) : std::string();
  }
  int64_t integer(int i) const { return sqlite3_column_int64(stmt_, i); }

 private:
  sqlite3_stmt* stmt_;
};

// An open database file. Errors are io statuses "<path>: <what>: <SQLite's message>". The statement cache is
// not thread-safe: with several threads, the caller serializes every call (a mutex around the Database).
class Database {
 public:
  // Opens or creates `path`, sets the busy timeout, WAL and synchronous=FULL (a commit is on disk when it
  // returns) and the extra pragmas. With options.read_only: opens an existing file for reading only. Opened for
  // writing, a file quorate did not write (a negative schema version; version 0 with tables of its own) is
  // bad_input, before anything is written to it.
  static Result<std::unique_ptr<Database>> open(const std::filesystem::path& path, const OpenOptions& options);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  const std::string& path() const { return path_; }
  Status error(const std::string& what) const;
  // Runs SQL that returns no rows (several statements allowed).
  Status exec(const std::string& sql, const std::string& what);

  // The cached prepared statement for `sql`, reset with its bindings cleared, owned by the Database.
  Result<Statement*> statement(const std::string& sql);
  // Steps a statement that returns no rows, then resets it; error(what) unless it is done.
  Status done(Statement* s, const std::string& what);
  // Runs `body` between BEGIN IMMEDIATE and COMMIT; rolls back when the body or the commit fails.
  Status transaction(const std::function<Status()>& body);

  // Brings the schema to version migrations.size(): migrations[i] takes PRAGMA user_version i to i + 1, in
  // one transaction with the version bump. Never edit a released migration; append one. unsupported when the
  // file's version is newer than this program knows; bad_input when it is not a file quorate writes.
  Status migrate(std::span<const char* const> migrations);
  // bad_input naming the first table, index, view or trigger that differs from what `migrations` create on an
  // empty database (compared by type, name, table and SQL text, whitespace runs read as one space): a file
  // someone edited, whose views or triggers would run inside quorate's queries. migrate() ends with it; a
  // reader opening a file read-only calls it after checking the version.
  Status check_schema(std::span<const char* const> migrations);
  Result<int64_t> user_version();

  // After every commit of this connection, hook(pages in the WAL) runs on the committing thread
  // (sqlite3_wal_hook). Setting a hook turns SQLite's automatic checkpoint (every 1000 pages, inside COMMIT) off
  // for this connection: the hook decides when to checkpoint. The hook must not throw.
  void on_wal_commit(std::function<void(int wal_pages)> hook);
  // One PASSIVE checkpoint (sqlite3_wal_checkpoint_v2): copies what it can of the WAL into the database file
  // without waiting for readers or writers. busy when another connection was checkpointing. When everything was
  // copied, the next write transaction starts the WAL over from its beginning.
  struct Checkpoint {
    bool busy = false;
    int wal_pages = 0;           // frames in the WAL
    int checkpointed_pages = 0;  // of them, now copied into the database file
  };
  Result<Checkpoint> checkpoint_passive();

  int64_t changes() const { return sqlite3_changes(db_); }
  int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

 private:
  explicit Database(std::string path) : path_(std::move(path)) {}
  // bad_input naming the file when it is not one quorate writes: a negative schema version, or version 0 with
  // tables of its own (another program's database).
  Status check_written_by_quorate();
  // Runs migrations[version..] (each in a transaction with its version bump).
  Status apply(std::span<const char* const> migrations, int64_t version);
  // (type, name) -> (table, SQL with each whitespace run read as one space) of every object but SQLite's own.
  using Schema = std::map<std::pair<std::string, std::string>, std::pair<std::string, std::string>>;
  Result<Schema> schema();
  std::string path_;
  std::vector<std::string> unversioned_tables_;
  sqlite3* db_ = nullptr;
  std::map<std::string, std::unique_ptr<Statement>> cache_;
  std::function<void(int)> wal_hook_;
};

}  // namespace quorate::sqlite
