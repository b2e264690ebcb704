// NodeStore over SQLite: WAL, synchronous=FULL, sequence assigned inside the insert transaction.
#include "quorate/node/store.h"

#include <sqlite3.h>

#include <algorithm>
#include <mutex>
#include <random>

namespace quorate::node {
namespace {

constexpr int kSchemaVersion = 2;  // 2: incarnations

// One prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return stmt_; }
  void bind_text(int i, const std::string& s) { sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT); }
  void bind_blob(int i, const std::string& s) { sqlite3_bind_blob(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT); }
  void bind_int(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  int step() { return sqlite3_step(stmt_); }
  std::string column_text(int i) {
    auto p = reinterpret_cast<const char*>(sqlite3_column_blob(stmt_, i));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i))) : std::string();
  }
  int64_t column_int(int i) { return sqlite3_column_int64(stmt_, i); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

}  // namespace

struct NodeStore::Impl {
  std::mutex mu;
  sqlite3* db = nullptr;
  std::string path;

  ~Impl() {
    if (db) sqlite3_close(db);
  }
  Status error(const std::string& what) { return Status::io(path + ": " + what + ": " + sqlite3_errmsg(db)); }
  Status exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown";
      sqlite3_free(err);
      return Status::io(path + ": " + msg);
    }
    return Status();
  }
  StoredAttestation row(Stmt& st) {
    return {static_cast<uint64_t>(st.column_int(0)), st.column_text(1), st.column_text(2), st.column_text(3)};
  }
};

NodeStore::NodeStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NodeStore::~NodeStore() = default;

Result<std::unique_ptr<NodeStore>> NodeStore::open(const std::filesystem::path& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path.string();
  if (sqlite3_open_v2(impl->path.c_str(), &impl->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    return impl->error("open");
  }
  sqlite3_busy_timeout(impl->db, 5000);
  QR_RETURN_IF_ERROR(impl->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"));
  Stmt version(impl->db, "PRAGMA user_version");
  if (!version.ok() || version.step() != SQLITE_ROW) return impl->error("read schema version");
  int64_t v = version.column_int(0);
  if (v > kSchemaVersion) {
    return Status::unsupported(impl->path + ": store schema version " + std::to_string(v) + " is newer than " +
                               std::to_string(kSchemaVersion));
  }
  if (v < 1) {
    QR_RETURN_IF_ERROR(impl->exec(
        "BEGIN IMMEDIATE;"
        "CREATE TABLE IF NOT EXISTS attestations ("
        "  sequence INTEGER PRIMARY KEY,"
        "  request_id TEXT NOT NULL,"
        "  image_digest TEXT NOT NULL,"
        "  envelope BLOB NOT NULL,"
        "  stored_at INTEGER NOT NULL);"
        "CREATE INDEX IF NOT EXISTS attestations_request ON attestations(request_id);"
        "PRAGMA user_version = 1;"
        "COMMIT;"));
  }
  if (v < 2) {
    QR_RETURN_IF_ERROR(impl->exec(
        "BEGIN IMMEDIATE;"
        "CREATE TABLE IF NOT EXISTS incarnations ("
        "  rowid INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  id INTEGER NOT NULL,"
        "  first_sequence INTEGER NOT NULL);"
        "PRAGMA user_version = 2;"
        "COMMIT;"));
  }
  return std::unique_ptr<NodeStore>(new NodeStore(std::move(impl)));
}

Result<uint64_t> NodeStore::append(const std::string& request_id, const std::string& image_digest,
                                   const std::string& envelope, int64_t stored_at_unix) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  QR_RETURN_IF_ERROR(impl_->exec("BEGIN IMMEDIATE"));
  uint64_t next = 0;
  {
    Stmt max(impl_->db, "SELECT COALESCE(MAX(sequence), 0) FROM attestations");
    if (!max.ok() || max.step() != SQLITE_ROW) {
      (void)impl_->exec("ROLLBACK");
      return impl_->error("read last sequence");
    }
    next = static_cast<uint64_t>(max.column_int(0)) + 1;
    Stmt ins(impl_->db,
             "INSERT INTO attestations(sequence, request_id, image_digest, envelope, stored_at) VALUES(?,?,?,?,?)");
    ins.bind_int(1, static_cast<int64_t>(next));
    ins.bind_text(2, request_id);
    ins.bind_text(3, image_digest);
    ins.bind_blob(4, envelope);
    ins.bind_int(5, stored_at_unix);
    if (!ins.ok() || ins.step() != SQLITE_DONE) {
      Status s = impl_->error("insert attestation");
      (void)impl_->exec("ROLLBACK");
      return s;
    }
  }
  QR_RETURN_IF_ERROR(impl_->exec("COMMIT"));
  return next;
}

Result<std::vector<StoredAttestation>> NodeStore::since(uint64_t since, size_t max_count) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Stmt st(impl_->db,
          "SELECT sequence, request_id, image_digest, envelope FROM attestations WHERE sequence > ? "
          "ORDER BY sequence LIMIT ?");
  if (!st.ok()) return impl_->error("query history");
  st.bind_int(1, static_cast<int64_t>(since));
  st.bind_int(2, static_cast<int64_t>(max_count));
  std::vector<StoredAttestation> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) out.push_back(impl_->row(st));
  if (rc != SQLITE_DONE) return impl_->error("query history");
  return out;
}

Result<uint64_t> NodeStore::last_sequence() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Stmt st(impl_->db, "SELECT COALESCE(MAX(sequence), 0) FROM attestations");
  if (!st.ok() || st.step() != SQLITE_ROW) return impl_->error("read last sequence");
  return static_cast<uint64_t>(st.column_int(0));
}

Result<Incarnation> NodeStore::begin_incarnation() {
  std::random_device rd;
  Incarnation inc;
  while (inc.id == 0) inc.id = (static_cast<uint64_t>(rd()) << 32) ^ static_cast<uint64_t>(rd());
  std::lock_guard<std::mutex> lock(impl_->mu);
  QR_RETURN_IF_ERROR(impl_->exec("BEGIN IMMEDIATE"));
  {
    Stmt max(impl_->db, "SELECT COALESCE(MAX(sequence), 0) FROM attestations");
    if (!max.ok() || max.step() != SQLITE_ROW) {
      Status s = impl_->error("read last sequence");
      (void)impl_->exec("ROLLBACK");
      return s;
    }
    inc.first_sequence = static_cast<uint64_t>(max.column_int(0)) + 1;
    Stmt ins(impl_->db, "INSERT INTO incarnations(id, first_sequence) VALUES(?, ?)");
    ins.bind_int(1, static_cast<int64_t>(inc.id));
    ins.bind_int(2, static_cast<int64_t>(inc.first_sequence));
    if (!ins.ok() || ins.step() != SQLITE_DONE) {
      Status s = impl_->error("insert incarnation");
      (void)impl_->exec("ROLLBACK");
      return s;
    }
  }
  QR_RETURN_IF_ERROR(impl_->exec("COMMIT"));
  return inc;
}

Result<std::vector<Incarnation>> NodeStore::lineage(size_t max_count) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Stmt st(impl_->db, "SELECT id, first_sequence FROM incarnations ORDER BY rowid DESC LIMIT ?");
  if (!st.ok()) return impl_->error("query incarnations");
  st.bind_int(1, static_cast<int64_t>(max_count));
  std::vector<Incarnation> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    out.push_back({static_cast<uint64_t>(st.column_int(0)), static_cast<uint64_t>(st.column_int(1))});
  }
  if (rc != SQLITE_DONE) return impl_->error("query incarnations");
  std::reverse(out.begin(), out.end());
  return out;
}

Result<std::optional<StoredAttestation>> NodeStore::find_request(const std::string& request_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Stmt st(impl_->db,
          "SELECT sequence, request_id, image_digest, envelope FROM attestations WHERE request_id = ? "
          "ORDER BY sequence DESC LIMIT 1");
  if (!st.ok()) return impl_->error("query request");
  st.bind_text(1, request_id);
  int rc = st.step();
  if (rc == SQLITE_ROW) return std::optional<StoredAttestation>(impl_->row(st));
  if (rc != SQLITE_DONE) return impl_->error("query request");
  return std::optional<StoredAttestation>();
}

}  // namespace quorate::node
