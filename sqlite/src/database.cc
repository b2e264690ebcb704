// Database: durable open, the statement cache, user_version migrations and transactions over SQLite.
#include "quorate/sqlite/database.h"

#include <algorithm>

namespace quorate::sqlite {
namespace {

std::string collapse_whitespace(const std::string& sql) {
  std::string out;
  for (char c : sql) {
    const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r';
    if (!space) {
      out += c;
    } else if (!out.empty() && out.back() != ' ') {
      out += ' ';
    }
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

Result<std::unique_ptr<Database>> Database::open(const std::filesystem::path& path, const OpenOptions& options) {
  std::unique_ptr<Database> db(new Database(path.string()));
  db->unversioned_tables_ = options.unversioned_tables;
  const int threading = options.threading == Threading::kSerialized ? SQLITE_OPEN_FULLMUTEX : SQLITE_OPEN_NOMUTEX;
  const int mode = options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  if (sqlite3_open_v2(db->path_.c_str(), &db->db_, mode | threading, nullptr) != SQLITE_OK) {
    return db->db_ ? db->error("open") : Status::io(db->path_ + ": open: out of memory");
  }
  sqlite3_busy_timeout(db->db_, options.busy_timeout_ms);
  // Defence in depth under check_schema(): the schema cannot be written through PRAGMAs, and what a file's
  // schema defines runs no function with side effects.
  sqlite3_db_config(db->db_, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(db->db_, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  if (options.read_only) {
    QR_RETURN_IF_ERROR(db->exec("PRAGMA query_only=ON; " + options.extra_pragmas, "configure"));
    return db;
  }
  // Before anything is written (journal_mode=WAL is kept in the file): a file quorate did not write stays as it
  // was.
  QR_RETURN_IF_ERROR(db->check_written_by_quorate());
  QR_RETURN_IF_ERROR(
      db->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; " + options.extra_pragmas, "configure"));
  return db;
}

Status Database::check_written_by_quorate() {
  const int64_t version = QR_TRY(user_version());
  // No version quorate writes: migrating from it indexed past the migrations (a version of -100000 crashed
  // every command opening the file, and the daemon at restart).
  if (version < 0) {
    return Status::bad_input(path_ + ": schema version " + std::to_string(version) +
                             " is none quorate writes: not a quorate file, or a damaged one");
  }
  // Version 0 with tables of its own: another program's database (a mistyped path), which the first migration
  // would have filled with quorate's tables.
  if (version == 0) {
    Statement* tables = QR_TRY(statement("SELECT name FROM sqlite_master WHERE type = 'table'"));
    int64_t n = 0;
    while (tables->step() == SQLITE_ROW) {
      n += std::find(unversioned_tables_.begin(), unversioned_tables_.end(), tables->text(0)) ==
           unversioned_tables_.end();
    }
    tables->reset();
    if (n > 0) {
      return Status::bad_input(path_ + ": an SQLite database with " + std::to_string(n) +
                               " table(s) of its own and no quorate schema version: not a quorate file; nothing "
                               "was changed");
    }
  }
  return Status();
}

Database::~Database() {
  cache_.clear();  // every statement is finalized before the connection closes
  if (db_) {
    if (wal_hook_) sqlite3_wal_hook(db_, nullptr, nullptr);
    sqlite3_close(db_);
  }
}

Status Database::error(const std::string& what) const {
  return Status::io(path_ + ": " + what + ": " + sqlite3_errmsg(db_));
}

Status Database::exec(const std::string& sql, const std::string& what) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    return Status::io(path_ + ": " + what + ": " + msg);
  }
  return Status();
}

Result<Statement*> Database::statement(const std::string& sql) {
  auto& slot = cache_[sql];
  if (!slot) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
      sqlite3_finalize(stmt);
      cache_.erase(sql);
      return error("prepare " + sql);
    }
    slot = std::make_unique<Statement>(stmt);
  }
  slot->reset();
  return slot.get();
}

Status Database::done(Statement* s, const std::string& what) {
  int rc = s->step();
  Status status = rc == SQLITE_DONE ? Status() : error(what);
  s->reset();
  return status;
}

Status Database::transaction(const std::function<Status()>& body) {
  QR_RETURN_IF_ERROR(exec("BEGIN IMMEDIATE", "begin"));
  Status st = body();
  if (st.ok()) st = exec("COMMIT", "commit");
  if (!st.ok()) (void)exec("ROLLBACK", "roll back");
  return st;
}

void Database::on_wal_commit(std::function<void(int wal_pages)> hook) {
  wal_hook_ = std::move(hook);
  if (!wal_hook_) {
    sqlite3_wal_autocheckpoint(db_, 1000);  // SQLite's default
    return;
  }
  sqlite3_wal_hook(
      db_,
      [](void* self, sqlite3*, const char*, int pages) -> int {
        static_cast<Database*>(self)->wal_hook_(pages);
        return SQLITE_OK;  // the commit has happened: an error here would report it as failed
      },
      this);
}

Result<Database::Checkpoint> Database::checkpoint_passive() {
  Checkpoint c;
  int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &c.wal_pages, &c.checkpointed_pages);
  if (rc == SQLITE_BUSY) {
    c.busy = true;
    return c;
  }
  if (rc != SQLITE_OK) return error("checkpoint");
  return c;
}

Result<int64_t> Database::user_version() {
  Statement* v = QR_TRY(statement("PRAGMA user_version"));
  if (v->step() != SQLITE_ROW) return error("read schema version");
  int64_t version = v->integer(0);
  v->reset();
  return version;
}

Status Database::migrate(std::span<const char* const> migrations) {
  const auto latest = static_cast<int64_t>(migrations.size());
  const int64_t version = QR_TRY(user_version());
  if (version > latest) {
    return Status::unsupported(path_ + ": store schema version " + std::to_string(version) +
                               " is newer than this quorate's " + std::to_string(latest));
  }
  QR_RETURN_IF_ERROR(check_written_by_quorate());
  // A trigger or view in a file at an older version would otherwise run inside the migrations' statements.
  if (version > 0) QR_RETURN_IF_ERROR(check_schema(migrations.first(static_cast<size_t>(version))));
  QR_RETURN_IF_ERROR(apply(migrations, version));
  return check_schema(migrations);
}

Status Database::apply(std::span<const char* const> migrations, int64_t version) {
  const auto latest = static_cast<int64_t>(migrations.size());
  for (int64_t i = version; i < latest; ++i) {
    QR_RETURN_IF_ERROR(transaction([&] {
      std::string sql =
          std::string(migrations[static_cast<size_t>(i)]) + "\nPRAGMA user_version = " + std::to_string(i + 1) + ";";
      return exec(sql, "migrate to schema version " + std::to_string(i + 1));
    }));
  }
  return Status();
}

Result<Database::Schema> Database::schema() {
  Statement* s = QR_TRY(
      statement("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"));
  Schema out;
  int rc;
  while ((rc = s->step()) == SQLITE_ROW) {
    out[{s->text(0), s->text(1)}] = {s->text(2), collapse_whitespace(s->text(3))};
  }
  s->reset();
  if (rc != SQLITE_DONE) return error("read the schema");
  return out;
}

Status Database::check_schema(std::span<const char* const> migrations) {
  OpenOptions options;
  options.threading = Threading::kMultiThread;
  auto fresh = QR_TRY(open(":memory:", options));
  QR_RETURN_IF_ERROR(fresh->apply(migrations, 0));
  const Schema expected = QR_TRY(fresh->schema());
  const Schema actual = QR_TRY(schema());
  auto refuse = [&](const std::pair<std::string, std::string>& object, const char* what) {
    return Status::bad_input(path_ + ": " + object.first + " " + object.second + " " + what +
                             ": not the schema quorate writes (a file edited by hand, or damaged); nothing was read "
                             "from it");
  };
  for (const auto& [object, definition] : actual) {
    auto it = expected.find(object);
    if (it == expected.end()) return refuse(object, "is not quorate's");
    if (it->second != definition) return refuse(object, "differs from quorate's definition");
  }
  for (const auto& [object, definition] : expected) {
    if (!actual.contains(object)) return refuse(object, "is missing");
  }
  return Status();
}

}  // namespace quorate::sqlite
