// NodeStore over SQLite (the sqlite module: WAL, synchronous=FULL): sequence assigned inside the insert transaction.
#include "quorate/node/store.h"

#include <algorithm>
#include <limits>
#include <mutex>
#include <random>

#include "quorate/sqlite/database.h"

namespace quorate::node {
namespace {

// Each migration takes the schema from version i to i + 1 (sqlite::Database::migrate). Never edit a released
// migration; append a new one.
constexpr const char* kMigrations[] = {
    // 1: attestations, numbered without gaps.
    R"sql(
CREATE TABLE IF NOT EXISTS attestations (
  sequence INTEGER PRIMARY KEY,
  request_id TEXT NOT NULL,
  image_digest TEXT NOT NULL,
  envelope BLOB NOT NULL,
  stored_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS attestations_request ON attestations(request_id);
)sql",
    // 2: incarnations.
    R"sql(
CREATE TABLE IF NOT EXISTS incarnations (
  rowid INTEGER PRIMARY KEY AUTOINCREMENT,
  id INTEGER NOT NULL,
  first_sequence INTEGER NOT NULL);
)sql",
};

StoredAttestation row(const sqlite::Statement& st) {
  return {static_cast<uint64_t>(st.integer(0)), st.text(1), st.text(2), st.text(3)};
}

}  // namespace

struct NodeStore::Impl {
  std::mutex mu;  // the Database is used by the control loop and the build worker
  std::unique_ptr<sqlite::Database> db;

  // The sequence the next attestation gets: one past the largest stored.
  Result<uint64_t> next_sequence() {
    auto* max = QR_TRY(db->statement("SELECT COALESCE(MAX(sequence), 0) FROM attestations"));
    if (max->step() != SQLITE_ROW) return db->error("read last sequence");
    auto next = static_cast<uint64_t>(max->integer(0)) + 1;
    max->reset();
    return next;
  }
};

NodeStore::NodeStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NodeStore::~NodeStore() = default;

Result<std::unique_ptr<NodeStore>> NodeStore::open(const std::filesystem::path& path) {
  auto impl = std::make_unique<Impl>();
  sqlite::OpenOptions options;
  options.unversioned_tables = {"attestations", "incarnations"};  // the migrations adopt them (IF NOT EXISTS)
  impl->db = QR_TRY(sqlite::Database::open(path, options));
  QR_RETURN_IF_ERROR(impl->db->migrate(kMigrations));
  return std::unique_ptr<NodeStore>(new NodeStore(std::move(impl)));
}

Result<uint64_t> NodeStore::append(const std::string& request_id, const std::string& image_digest,
                                   const std::string& envelope, int64_t stored_at_unix) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  uint64_t next = 0;
  QR_RETURN_IF_ERROR(impl_->db->transaction([&]() -> Status {
    next = QR_TRY(impl_->next_sequence());
    auto* ins = QR_TRY(impl_->db->statement(
        "INSERT INTO attestations(sequence, request_id, image_digest, envelope, stored_at) VALUES(?,?,?,?,?)"));
    ins->bind(1, static_cast<int64_t>(next));
    ins->bind(2, request_id);
    ins->bind(3, image_digest);
    ins->bind_blob(4, envelope);
    ins->bind(5, stored_at_unix);
    return impl_->db->done(ins, "insert attestation");
  }));
  return next;
}

Result<std::vector<StoredAttestation>> NodeStore::since(uint64_t since, size_t max_count) {
  // Sequences are SQLite integers (below 2^63): nothing follows a larger `since`, which cast to int64_t would
  // have read as negative, asking for the history from its start.
  if (since > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::vector<StoredAttestation>();
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto* st = QR_TRY(
      impl_->db->statement("SELECT sequence, request_id, image_digest, envelope FROM attestations WHERE sequence > ? "
                           "ORDER BY sequence LIMIT ?"));
  st->bind(1, static_cast<int64_t>(since));
  st->bind(2, static_cast<int64_t>(max_count));
  std::vector<StoredAttestation> out;
  int rc;
  while ((rc = st->step()) == SQLITE_ROW) out.push_back(row(*st));
  st->reset();
  if (rc != SQLITE_DONE) return impl_->db->error("query history");
  return out;
}

Result<uint64_t> NodeStore::last_sequence() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return QR_TRY(impl_->next_sequence()) - 1;
}

Result<Incarnation> NodeStore::begin_incarnation() {
  std::random_device rd;
  Incarnation inc;
  while (inc.id == 0) inc.id = (static_cast<uint64_t>(rd()) << 32) ^ static_cast<uint64_t>(rd());
  std::lock_guard<std::mutex> lock(impl_->mu);
  QR_RETURN_IF_ERROR(impl_->db->transaction([&]() -> Status {
    inc.first_sequence = QR_TRY(impl_->next_sequence());
    auto* ins = QR_TRY(impl_->db->statement("INSERT INTO incarnations(id, first_sequence) VALUES(?, ?)"));
    ins->bind(1, static_cast<int64_t>(inc.id));
    ins->bind(2, static_cast<int64_t>(inc.first_sequence));
    return impl_->db->done(ins, "insert incarnation");
  }));
  return inc;
}

Result<std::vector<Incarnation>> NodeStore::lineage(size_t max_count) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto* st = QR_TRY(impl_->db->statement("SELECT id, first_sequence FROM incarnations ORDER BY rowid DESC LIMIT ?"));
  st->bind(1, static_cast<int64_t>(max_count));
  std::vector<Incarnation> out;
  int rc;
  while ((rc = st->step()) == SQLITE_ROW) {
    out.push_back({static_cast<uint64_t>(st->integer(0)), static_cast<uint64_t>(st->integer(1))});
  }
  st->reset();
  if (rc != SQLITE_DONE) return impl_->db->error("query incarnations");
  std::reverse(out.begin(), out.end());
  return out;
}

Result<std::optional<StoredAttestation>> NodeStore::find_request(const std::string& request_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto* st = QR_TRY(
      impl_->db->statement("SELECT sequence, request_id, image_digest, envelope FROM attestations WHERE request_id = ? "
                           "ORDER BY sequence DESC LIMIT 1"));
  st->bind(1, request_id);
  int rc = st->step();
  std::optional<StoredAttestation> found;
  if (rc == SQLITE_ROW) found = row(*st);
  st->reset();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return impl_->db->error("query request");
  return found;
}

}  // namespace quorate::node
