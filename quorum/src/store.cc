// Store over SQLite (the sqlite module: WAL + synchronous=FULL, user_version migrations, cached statements).
#include "quorate/quorum/store.h"

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "quorate/attest/statement.h"
#include "quorate/core/build_args.h"
#include "quorate/core/encoding.h"
#include "quorate/core/json.h"
#include "quorate/sqlite/database.h"

namespace quorate::quorum {
namespace {

// Each migration takes the schema from version i to i + 1, inside one transaction with the version bump.
// Never edit a released migration; append a new one.
constexpr const char* kMigrations[] = {
    // 1: attestations, rejections, decisions.
    R"sql(
CREATE TABLE attestations(
  id INTEGER PRIMARY KEY,
  envelope_digest TEXT NOT NULL UNIQUE,
  envelope BLOB NOT NULL,
  node_id TEXT NOT NULL,
  keyid TEXT NOT NULL,
  source_uri TEXT NOT NULL,
  commit_id TEXT NOT NULL,
  recipe_path TEXT NOT NULL,
  image_digest TEXT NOT NULL,
  config_digest TEXT NOT NULL,
  started_on INTEGER NOT NULL,
  finished_on INTEGER NOT NULL,
  received_at INTEGER NOT NULL);
CREATE INDEX attestations_subject ON attestations(source_uri, commit_id, recipe_path);
CREATE INDEX attestations_image ON attestations(image_digest);
CREATE TABLE rejections(
  id INTEGER PRIMARY KEY,
  envelope_digest TEXT NOT NULL UNIQUE,
  envelope BLOB NOT NULL,
  code TEXT NOT NULL,
  reason TEXT NOT NULL,
  received_at INTEGER NOT NULL);
CREATE TABLE decisions(
  id INTEGER PRIMARY KEY,
  source_uri TEXT NOT NULL,
  commit_id TEXT NOT NULL,
  recipe_path TEXT NOT NULL,
  policy_digest TEXT NOT NULL,
  accepted INTEGER NOT NULL,
  digest TEXT NOT NULL,
  decision TEXT NOT NULL,
  decided_at INTEGER NOT NULL);
CREATE INDEX decisions_subject ON decisions(source_uri, commit_id, recipe_path);
)sql",
    // 2: "what was accepted for this commit?" looks up by commit alone, without the repository.
    R"sql(
CREATE INDEX attestations_commit ON attestations(commit_id);
)sql",
    // 3: one index serves both lookups when the commit leads it; an index fewer to update per insert.
    R"sql(
DROP INDEX attestations_commit;
DROP INDEX attestations_subject;
CREATE INDEX attestations_subject ON attestations(commit_id, source_uri, recipe_path);
)sql",
    // 4: the SOURCE_DATE_EPOCH is part of the subject key (two honest requests with different epochs are two
    // subjects, not equivocation). Rows of older stores are filled from their envelopes by backfill_epochs();
    // -1 marks a row not filled yet. The column is a cache like the others: VerifiedVotes checks it.
    R"sql(
ALTER TABLE attestations ADD COLUMN source_date_epoch INTEGER NOT NULL DEFAULT -1;
ALTER TABLE decisions ADD COLUMN source_date_epoch INTEGER NOT NULL DEFAULT -1;
DROP INDEX attestations_subject;
CREATE INDEX attestations_subject ON attestations(commit_id, source_uri, recipe_path, source_date_epoch);
)sql",
    // 5: where the vote's run steps executed ("image", "host", "none"; a policy may refuse "host"). '' marks a
    // row not filled yet (backfill()).
    R"sql(
ALTER TABLE attestations ADD COLUMN run_environment TEXT NOT NULL DEFAULT '';
)sql",
    // 6: a decision's revision as published (strictly increasing per subject key, across restarts) and the
    // fingerprint of its content (what makes two decisions the same for publishing; '' when not known), so a
    // restarted verifier continues from them instead of re-deciding every subject. The partial index finds
    // rows still to be backfilled without scanning the table (and its envelopes) at every open.
    R"sql(
ALTER TABLE decisions ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE decisions ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
DROP INDEX decisions_subject;
CREATE INDEX decisions_subject ON decisions(commit_id, source_uri, recipe_path, source_date_epoch);
CREATE INDEX attestations_unfilled ON attestations(id) WHERE source_date_epoch = -1 OR run_environment = '';
)sql",
    // 7: a Containerfile's build args are part of the subject key: their canonical text (core/build_args.h),
    // '' when there are none. Existing rows are "no build args", except those of a Containerfile recipe path,
    // which may carry some: NULL marks them for backfill() from their envelopes. Decisions made before keep
    // '' (they were made over every build arg set at once). The subject indexes stay: their prefix finds a
    // subject's few rows, which the build_args term then filters.
    R"sql(
ALTER TABLE attestations ADD COLUMN build_args TEXT DEFAULT '';
ALTER TABLE decisions ADD COLUMN build_args TEXT NOT NULL DEFAULT '';
UPDATE attestations SET build_args = NULL WHERE recipe_path LIKE '%Containerfile' OR recipe_path LIKE '%Dockerfile';
DROP INDEX attestations_unfilled;
CREATE INDEX attestations_unfilled ON attestations(id)
  WHERE source_date_epoch = -1 OR run_environment = '' OR build_args IS NULL;
)sql",
    // 8: the subject and image lookups go through small tables instead of indexes over every attestation row
    // (issue 17). Those indexes were led by a commit id and an image digest, so each insert dirtied a random leaf
    // of each (a 4 KiB page written to the WAL and again to the database: at 50 nodes most of what a store
    // wrote). A subject key gets a number when first seen (`subjects`); the rows of a subject are listed under
    // that number (`subject_rows`), so the inserts of a batch land on the few leaves of the subjects being
    // rebuilt now; the images named for a subject are listed once per pair (`image_subjects`), so nearly every
    // insert finds its pair there and writes nothing. Like the other columns these are a cache: every lookup
    // checks the rows' own key columns, so a row whose key changed (backfill()) is found under its new key only.
    R"sql(
CREATE TABLE subjects(
  id INTEGER PRIMARY KEY,
  commit_id TEXT NOT NULL,
  source_uri TEXT NOT NULL,
  recipe_path TEXT NOT NULL,
  source_date_epoch INTEGER NOT NULL,
  build_args TEXT NOT NULL,
  UNIQUE(commit_id, source_uri, recipe_path, source_date_epoch, build_args));
CREATE TABLE subject_rows(
  subject_id INTEGER NOT NULL,
  attestation_id INTEGER NOT NULL,
  PRIMARY KEY(subject_id, attestation_id)) WITHOUT ROWID;
CREATE TABLE image_subjects(
  image_digest TEXT NOT NULL,
  subject_id INTEGER NOT NULL,
  PRIMARY KEY(image_digest, subject_id)) WITHOUT ROWID;
INSERT OR IGNORE INTO subjects(commit_id, source_uri, recipe_path, source_date_epoch, build_args)
  SELECT commit_id, source_uri, recipe_path, source_date_epoch, IFNULL(build_args, '') FROM attestations ORDER BY id;
INSERT INTO subject_rows
  SELECT s.id, a.id FROM attestations a JOIN subjects s ON s.commit_id = a.commit_id AND s.source_uri = a.source_uri
    AND s.recipe_path = a.recipe_path AND s.source_date_epoch = a.source_date_epoch
    AND s.build_args = IFNULL(a.build_args, '');
INSERT OR IGNORE INTO image_subjects
  SELECT a.image_digest, r.subject_id FROM subject_rows r JOIN attestations a ON a.id = r.attestation_id;
DROP INDEX attestations_subject;
DROP INDEX attestations_image;
)sql",
    // 9: the node a rejected attestation came from ('' when it was imported from a file), so that what one node
    // can make the store keep is bounded (Store::kMaxRejectionsPerPublisher, kMaxRejectionBytesPerPublisher).
    R"sql(
ALTER TABLE rejections ADD COLUMN publisher TEXT NOT NULL DEFAULT '';
CREATE INDEX rejections_publisher ON rejections(publisher);
)sql",
};
static_assert(std::size(kMigrations) == Store::kSchemaVersion);

using Stmt = sqlite::Statement;

constexpr const char* kAttestationColumns =
    "id, envelope_digest, node_id, keyid, source_uri, commit_id, recipe_path, image_digest, config_digest, "
    "started_on, finished_on, received_at, source_date_epoch, run_environment, build_args";

StoredAttestation attestation_row(Stmt& s) {
  StoredAttestation a;
  a.id = s.integer(0);
  a.envelope_digest = s.text(1);
  a.vote.envelope_digest = a.envelope_digest;
  a.vote.node_id = s.text(2);
  a.vote.keyid = s.text(3);
  a.vote.subject = {s.text(4), s.text(5), s.text(6)};
  a.vote.image_digest = s.text(7);
  a.vote.config_digest = s.text(8);
  a.started_on = s.integer(9);
  a.vote.signed_at = s.integer(10);
  a.received_at = s.integer(11);
  a.vote.subject.source_date_epoch = s.integer(12);
  a.vote.run_environment = s.text(13);
  a.vote.subject.build_args = s.text(14);  // NULL (not backfilled: envelope unreadable) reads as ''
  return a;
}

Rejection rejection_row(Stmt& s) {
  return {s.integer(0), s.text(1), {}, s.text(2), s.text(3), s.integer(4), s.text(5)};
}

// The lower bound of the digests a "sha256:" id or a bare hex prefix names; the upper bound is that plus "~"
// (above every hex digit), so the lookup is a range scan of the unique index.
std::optional<std::string> id_prefix(const std::string& id) {
  std::string hex = id.rfind("sha256:", 0) == 0 ? id.substr(7) : id;
  if (hex.size() < 4 || hex.size() > 64) return std::nullopt;
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  return "sha256:" + hex;
}

// The statement an envelope carries, unverified; nullopt when it cannot be read.
std::optional<attest::Statement> statement_of_envelope(const std::string& envelope) {
  auto env = parse_untrusted_json(envelope);
  if (!env.is_object() || !env["payload"].is_string()) return std::nullopt;
  auto payload = base64_decode(env["payload"].get<std::string>());
  if (!payload.ok()) return std::nullopt;
  auto statement = attest::parse_statement(*payload);
  if (!statement.ok()) return std::nullopt;
  return std::move(statement).value();
}

// The background checkpointer: a thread with its own connection that runs a PASSIVE checkpoint each time the
// writer wakes it, unless the writer has held it (to finish the checkpoint itself). Its errors wait in error_
// until the writer takes them (Store::transaction returns them).
class StoreCheckpointer {
 public:
  static Result<std::unique_ptr<StoreCheckpointer>> start(const std::filesystem::path& path,
                                                          const sqlite::OpenOptions& options) {
    std::unique_ptr<StoreCheckpointer> c(new StoreCheckpointer());
    c->db_ = QR_TRY(sqlite::Database::open(path, options));
    c->thread_ = std::thread([p = c.get()] { p->run(); });
    return c;
  }
  ~StoreCheckpointer() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void wake() {
    {
      std::lock_guard lock(mu_);
      if (pending_ || held_) return;
      pending_ = true;
    }
    cv_.notify_one();
  }
  // While held, no new checkpoint starts (the one running, if any, finishes).
  void hold(bool held) {
    std::lock_guard lock(mu_);
    held_ = held;
    if (held) pending_ = false;
  }
  Status take_error() {
    std::lock_guard lock(mu_);
    Status st = std::move(error_);
    error_ = Status();
    return st;
  }
  void stats(Store::CheckpointStats& s) {
    std::lock_guard lock(mu_);
    s.background = checkpoints_;
    s.background_pages = pages_;
  }

 private:
  StoreCheckpointer() = default;
  void run() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || pending_; });
      if (stop_) return;
      pending_ = false;
      lock.unlock();
      auto c = db_->checkpoint_passive();
      lock.lock();
      if (!c.ok()) {
        if (error_.ok()) error_ = Status::io("background checkpoint: " + c.status().message());
      } else if (!c->busy) {
        ++checkpoints_;
        pages_ += c->checkpointed_pages;
      }
    }
  }

  std::unique_ptr<sqlite::Database> db_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false, held_ = false, stop_ = false;
  Status error_;
  int64_t checkpoints_ = 0, pages_ = 0;
  std::thread thread_;
};

}  // namespace

struct RejectionBudget {
  uint64_t rows = 0, bytes = 0;  // what the store holds of one publisher's rejections
};

struct Store::Impl {
  // Publisher -> what the store holds of its rejections, read from the store at its first rejection.
  std::map<std::string, RejectionBudget> rejection_budgets;
  // Declared before the checkpointer: destroyed after it, so the thread has stopped and its connection closed
  // before the writer's connection (the last one) closes and checkpoints what is left.
  std::unique_ptr<sqlite::Database> db;
  std::unique_ptr<StoreCheckpointer> checkpointer;
  // Written by the wal hook on the writing thread; read by checkpoint_stats() on the same thread.
  int64_t writer_checkpoints = 0;
  int largest_wal_pages = 0;
  Status writer_error;

  // After every commit of the writing connection (sqlite::Database::on_wal_commit). PASSIVE checkpoints on
  // another connection never let the WAL start over while this one keeps committing (it starts over only when a
  // transaction begins with every frame copied), so from kWalRestartPages the writer holds the background
  // thread and, once that thread's checkpoint is done, copies the rest itself: the frames committed since.
  void after_commit(int wal_pages) {
    largest_wal_pages = std::max(largest_wal_pages, wal_pages);
    if (wal_pages < kWalRestartPages) {
      if (wal_pages >= kWalCheckpointPages) checkpointer->wake();
      return;
    }
    checkpointer->hold(true);
    auto c = db->checkpoint_passive();
    if (!c.ok()) {
      if (writer_error.ok()) writer_error = Status::io("checkpoint: " + c.status().message());
      checkpointer->hold(false);
    } else if (!c->busy) {
      ++writer_checkpoints;
      checkpointer->hold(false);
    }  // busy: the background checkpoint still runs; try again after the next commit
  }
  Status take_checkpoint_error() {
    if (!checkpointer) return Status();
    if (!writer_error.ok()) {
      Status st = std::move(writer_error);
      writer_error = Status();
      return st;
    }
    return checkpointer->take_error();
  }

  Result<std::vector<SubjectKey>> subjects(const std::string& sql, const std::vector<std::string>& args) {
    Stmt* s = QR_TRY(db->statement(sql));
    for (size_t i = 0; i < args.size(); ++i) s->bind(static_cast<int>(i + 1), args[i]);
    std::vector<SubjectKey> out;
    int rc;
    while ((rc = s->step()) == SQLITE_ROW) {
      out.push_back({s->text(0), s->text(1), s->text(2), s->integer(3), s->text(4)});
    }
    s->reset();
    if (rc != SQLITE_DONE) return db->error("read subject keys");
    return out;
  }
  Result<std::vector<StoredAttestation>> rows(const std::string& where, const std::vector<std::string>& args) {
    Stmt* s = QR_TRY(
        db->statement(std::string("SELECT ") + kAttestationColumns + " FROM attestations " + where + " ORDER BY id"));
    for (size_t i = 0; i < args.size(); ++i) s->bind(static_cast<int>(i + 1), args[i]);
    std::vector<StoredAttestation> out;
    int rc;
    while ((rc = s->step()) == SQLITE_ROW) out.push_back(attestation_row(*s));
    s->reset();
    if (rc != SQLITE_DONE) return db->error("read attestations");
    return out;
  }
  // Files attestation row `id` under its subject key and its image (schema 8): the key's number, made when the
  // key is first seen, the row under that number, the image paired with it. Nearly every row finds its key and
  // its pair there already.
  Status index_row(int64_t id, const SubjectKey& k, const std::string& image_digest) {
    auto bind_key = [&](Stmt& st) {
      st.bind(1, k.commit);
      st.bind(2, k.source_uri);
      st.bind(3, k.recipe_path);
      st.bind(4, k.source_date_epoch);
      st.bind(5, k.build_args);
    };
    Stmt* find = QR_TRY(
        db->statement("SELECT id FROM subjects WHERE commit_id = ?1 AND source_uri = ?2 AND recipe_path = ?3 AND "
                      "source_date_epoch = ?4 AND build_args = ?5"));
    bind_key(*find);
    const int rc = find->step();
    int64_t subject = rc == SQLITE_ROW ? find->integer(0) : 0;
    find->reset();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db->error("find subject " + k.to_string());
    if (rc == SQLITE_DONE) {
      Stmt* add = QR_TRY(
          db->statement("INSERT INTO subjects(commit_id, source_uri, recipe_path, source_date_epoch, build_args) "
                        "VALUES(?1, ?2, ?3, ?4, ?5)"));
      bind_key(*add);
      QR_RETURN_IF_ERROR(db->done(add, "add subject " + k.to_string()));
      subject = db->last_insert_rowid();
    }
    Stmt* row = QR_TRY(db->statement("INSERT OR IGNORE INTO subject_rows(subject_id, attestation_id) VALUES(?1, ?2)"));
    row->bind(1, subject);
    row->bind(2, id);
    QR_RETURN_IF_ERROR(db->done(row, "file attestation row " + std::to_string(id) + " under its subject"));
    Stmt* image =
        QR_TRY(db->statement("INSERT OR IGNORE INTO image_subjects(image_digest, subject_id) VALUES(?1, ?2)"));
    image->bind(1, image_digest);
    image->bind(2, subject);
    return db->done(image, "pair image " + image_digest + " with its subject");
  }
  // index_row() from what row `id` holds now.
  Status reindex_row(int64_t id) {
    Stmt* s = QR_TRY(db->statement(
        "SELECT source_uri, commit_id, recipe_path, source_date_epoch, IFNULL(build_args, ''), image_digest FROM "
        "attestations WHERE id = ?1"));
    s->bind(1, id);
    const int rc = s->step();
    if (rc != SQLITE_ROW) {
      s->reset();
      return db->error("read attestation row " + std::to_string(id));
    }
    SubjectKey k{s->text(0), s->text(1), s->text(2), s->integer(3), s->text(4)};
    std::string image = s->text(5);
    s->reset();
    return index_row(id, k, image);
  }
  // Rows written before schema 4 (the subject's epoch), 5 (the run environment) or 7 (the build args) get those
  // columns from their envelope's statement: a cache fill, not a verification (VerifiedVotes checks every column
  // against the verified envelope before it counts). A row whose envelope cannot be read keeps -1 / '' / NULL
  // and is reported as distrusted when read.
  Status backfill() {
    // Served by the partial index attestations_unfilled: no scan of the table at each open.
    Stmt* pending = QR_TRY(
        db->statement("SELECT id, envelope FROM attestations WHERE source_date_epoch = -1 OR run_environment = '' OR "
                      "build_args IS NULL"));
    std::vector<std::pair<int64_t, attest::Statement>> found;
    std::vector<std::string> args;  // the canonical text of each found statement's build args
    int rc;
    while ((rc = pending->step()) == SQLITE_ROW) {
      auto st = statement_of_envelope(pending->text(1));
      if (!st) continue;
      auto text = build_args_text(st->build_args);
      if (!text.ok()) continue;
      found.emplace_back(pending->integer(0), std::move(*st));
      args.push_back(std::move(text).value());
    }
    pending->reset();
    if (rc != SQLITE_DONE) return db->error("read attestations to backfill");
    if (found.empty()) return Status();
    QR_RETURN_IF_ERROR(db->exec("BEGIN IMMEDIATE", "begin backfill"));
    for (size_t i = 0; i < found.size(); ++i) {
      const auto& [id, statement] = found[i];
      Stmt* u = QR_TRY(db->statement(
          "UPDATE attestations SET source_date_epoch = ?1, run_environment = ?2, build_args = ?4 WHERE id = ?3"));
      u->bind(1, statement.source_date_epoch);
      u->bind(2, statement.run_environment);
      u->bind(3, id);
      u->bind(4, args[i]);
      Status st = db->done(u, "backfill attestation " + std::to_string(id));
      if (st.ok()) st = reindex_row(id);  // its subject key changed
      if (!st.ok()) {
        (void)db->exec("ROLLBACK", "roll back backfill");
        return st;
      }
    }
    return db->exec("COMMIT", "commit backfill");
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::open(const std::filesystem::path& path) { return open(path, StoreOptions()); }

Result<std::unique_ptr<Store>> Store::open(const std::filesystem::path& path, const StoreOptions& store_options) {
  auto impl = std::make_unique<Impl>();
  sqlite::OpenOptions options;
  options.busy_timeout_ms = 10000;  // another process may hold the write lock a moment (an importer next to a verifier)
  options.threading = sqlite::Threading::kMultiThread;
  // A 32 MiB page cache keeps the indexes' hot pages in memory during bulk imports (the default 2 MiB
  // thrashes beyond ~10,000 attestations). The WAL file shrinks back to kWalLimitBytes when it restarts.
  const std::string limit = "PRAGMA journal_size_limit=" + std::to_string(kWalLimitBytes) + ";";
  options.extra_pragmas = "PRAGMA cache_size=-32768;" + limit;
  impl->db = QR_TRY(sqlite::Database::open(path, options));
  QR_RETURN_IF_ERROR(impl->db->migrate(kMigrations));
  QR_RETURN_IF_ERROR(impl->backfill());
  if (store_options.background_checkpoint) {
    sqlite::OpenOptions ckpt;
    // How long a RESTART checkpoint waits for the writer's transaction to end and for readers of the WAL (holding
    // the writer off meanwhile); when it runs out, it is tried again after the next commit.
    ckpt.busy_timeout_ms = 2000;
    ckpt.threading = sqlite::Threading::kMultiThread;
    ckpt.extra_pragmas = limit;
    impl->checkpointer = QR_TRY(StoreCheckpointer::start(path, ckpt));
    impl->db->on_wal_commit([p = impl.get()](int pages) { p->after_commit(pages); });
  }
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Result<std::unique_ptr<Store>> Store::open_read_only(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return Status::not_found(path.string() + ": no such store");
  auto impl = std::make_unique<Impl>();
  sqlite::OpenOptions options;
  options.threading = sqlite::Threading::kMultiThread;
  options.read_only = true;
  impl->db = QR_TRY(sqlite::Database::open(path, options));
  const int64_t version = QR_TRY(impl->db->user_version());
  if (version != kSchemaVersion) {
    return Status::unsupported(path.string() + ": store schema version " + std::to_string(version) + ", expected " +
                               std::to_string(kSchemaVersion));
  }
  QR_RETURN_IF_ERROR(impl->db->check_schema(kMigrations));
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Result<int> Store::schema_version() { return static_cast<int>(QR_TRY(impl_->db->user_version())); }

Status Store::transaction(const std::function<Status()>& body) {
  QR_RETURN_IF_ERROR(impl_->take_checkpoint_error());
  return impl_->db->transaction(body);
}

Store::CheckpointStats Store::checkpoint_stats() const {
  CheckpointStats s;
  if (impl_->checkpointer) impl_->checkpointer->stats(s);
  s.writer = impl_->writer_checkpoints;
  s.largest_wal_pages = impl_->largest_wal_pages;
  return s;
}

Result<bool> Store::add_attestation(const StoredAttestation& a) {
  Stmt* s = QR_TRY(impl_->db->statement(
      "INSERT INTO attestations(envelope_digest, envelope, node_id, keyid, source_uri, commit_id, recipe_path, "
      "image_digest, config_digest, started_on, finished_on, received_at, source_date_epoch, run_environment, "
      "build_args) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
      "ON CONFLICT(envelope_digest) DO NOTHING"));
  const Vote& v = a.vote;
  s->bind(1, a.envelope_digest);
  s->bind_blob(2, a.envelope);
  s->bind(3, v.node_id);
  s->bind(4, v.keyid);
  s->bind(5, v.subject.source_uri);
  s->bind(6, v.subject.commit);
  s->bind(7, v.subject.recipe_path);
  s->bind(8, v.image_digest);
  s->bind(9, v.config_digest);
  s->bind(10, a.started_on);
  s->bind(11, v.signed_at);
  s->bind(12, a.received_at);
  s->bind(13, v.subject.source_date_epoch);
  s->bind(14, v.run_environment);
  s->bind(15, v.subject.build_args);
  QR_RETURN_IF_ERROR(impl_->db->done(s, "insert attestation " + a.envelope_digest));
  if (impl_->db->changes() == 0) return false;  // stored before, and filed then
  QR_RETURN_IF_ERROR(impl_->index_row(impl_->db->last_insert_rowid(), v.subject, v.image_digest));
  return true;
}

Result<bool> Store::add_rejection(const Rejection& r) {
  RejectionBudget* budget = nullptr;
  if (!r.publisher.empty()) {
    auto [it, fresh] = impl_->rejection_budgets.try_emplace(r.publisher);
    if (fresh) {
      Stmt* q = QR_TRY(impl_->db->statement(
          "SELECT count(*), IFNULL(sum(length(envelope)), 0) FROM rejections WHERE publisher = ?"));
      q->bind(1, r.publisher);
      if (q->step() != SQLITE_ROW) {
        q->reset();
        impl_->rejection_budgets.erase(it);
        return impl_->db->error("count the rejections of " + r.publisher);
      }
      it->second.rows = static_cast<uint64_t>(q->integer(0));
      it->second.bytes = static_cast<uint64_t>(q->integer(1));
      q->reset();
    }
    budget = &it->second;
    if (budget->rows >= kMaxRejectionsPerPublisher ||
        budget->bytes + r.envelope.size() > kMaxRejectionBytesPerPublisher) {
      return false;
    }
  }
  Stmt* s = QR_TRY(impl_->db->statement(
      "INSERT INTO rejections(envelope_digest, envelope, code, reason, received_at, publisher) VALUES(?,?,?,?,?,?) "
      "ON CONFLICT(envelope_digest) DO NOTHING"));
  s->bind(1, r.envelope_digest);
  s->bind_blob(2, r.envelope);
  s->bind(3, r.code);
  s->bind(4, r.reason);
  s->bind(5, r.received_at);
  s->bind(6, r.publisher);
  QR_RETURN_IF_ERROR(impl_->db->done(s, "insert rejection " + r.envelope_digest));
  const bool added = impl_->db->changes() > 0;
  if (added && budget != nullptr) {  // a transaction rolled back after this leaves it counted: it only errs low
    ++budget->rows;
    budget->bytes += r.envelope.size();
  }
  return added;
}

Result<int64_t> Store::add_decision(const Decision& d, int64_t revision, const std::string& fingerprint,
                                    const std::string& record) {
  Stmt* s =
      QR_TRY(impl_->db->statement("INSERT INTO decisions(source_uri, commit_id, recipe_path, policy_digest, accepted, "
                                  "digest, decision, decided_at, "
                                  "source_date_epoch, revision, fingerprint, build_args) "
                                  "VALUES(?,?,?,?,?,?,?,?,?,?,?,?)"));
  s->bind(1, d.subject.source_uri);
  s->bind(2, d.subject.commit);
  s->bind(3, d.subject.recipe_path);
  s->bind(4, d.policy_digest);
  s->bind(5, int64_t{d.accepted});
  s->bind(6, d.digest);
  const std::string json =
      record.empty() ? QR_TRY(d.to_json()) : record;  // bound without a copy: must outlive the step
  s->bind(7, json);
  s->bind(8, d.time);
  s->bind(9, d.subject.source_date_epoch);
  s->bind(10, revision);
  s->bind(11, fingerprint);
  s->bind(12, d.subject.build_args);
  QR_RETURN_IF_ERROR(impl_->db->done(s, "insert decision"));
  return static_cast<int64_t>(impl_->db->last_insert_rowid());
}

// Whether the subject key `s` (a row of table `subjects`) still has a row of its own, `also` holding for it (a
// condition on `a`, the row): the lookup tables of schema 8 are a cache, and a row whose key changed since
// (backfill()) is not its old key's any more.
std::string key_has_a_row(const std::string& also = "") {
  return "EXISTS (SELECT 1 FROM subject_rows r JOIN attestations a ON a.id = r.attestation_id WHERE r.subject_id = "
         "s.id AND a.commit_id = s.commit_id AND a.source_uri = s.source_uri AND a.recipe_path = s.recipe_path AND "
         "a.source_date_epoch = s.source_date_epoch AND IFNULL(a.build_args, '') = s.build_args" +
         (also.empty() ? "" : " AND " + also) + ")";
}
constexpr const char* kKeyColumns = "s.source_uri, s.commit_id, s.recipe_path, s.source_date_epoch, s.build_args";
// The rows filed under subject key ?1..?5 (uri, commit, recipe, epoch, build args) that still have that key.
constexpr const char* kRowsOfKey =
    "WHERE id IN (SELECT r.attestation_id FROM subject_rows r JOIN subjects s ON s.id = r.subject_id WHERE "
    "s.commit_id = ?2 AND s.source_uri = ?1 AND s.recipe_path = ?3 AND s.source_date_epoch = CAST(?4 AS INTEGER) "
    "AND s.build_args = ?5) AND source_uri = ?1 AND commit_id = ?2 AND recipe_path = ?3 AND "
    "source_date_epoch = CAST(?4 AS INTEGER) AND IFNULL(build_args, '') = ?5";

Result<std::vector<SubjectKey>> Store::subjects() {
  return impl_->subjects(
      std::string("SELECT ") + kKeyColumns + " FROM subjects s WHERE " + key_has_a_row() + " ORDER BY 1, 2, 3, 4, 5",
      {});
}

Result<std::vector<SubjectKey>> Store::subjects_with_image(const std::string& image_digest) {
  return impl_->subjects(std::string("SELECT ") + kKeyColumns +
                             " FROM image_subjects p JOIN subjects s ON s.id = p.subject_id WHERE p.image_digest = ?1 "
                             "AND " +
                             key_has_a_row("a.image_digest = ?1") + " ORDER BY 1, 2, 3, 4, 5",
                         {image_digest});
}

Result<std::vector<SubjectKey>> Store::subjects_with_commit(const std::string& commit, const std::string& source_uri) {
  return impl_->subjects(std::string("SELECT ") + kKeyColumns +
                             " FROM subjects s WHERE s.commit_id = ?1 AND (?2 = '' OR s.source_uri = ?2) AND " +
                             key_has_a_row() + " ORDER BY 1, 2, 3, 4, 5",
                         {commit, source_uri});
}

Result<std::vector<StoredAttestation>> Store::rows(const SubjectKey& k) {
  return impl_->rows(kRowsOfKey,
                     {k.source_uri, k.commit, k.recipe_path, std::to_string(k.source_date_epoch), k.build_args});
}

Result<std::vector<StoredAttestation>> Store::rows(const SubjectKey& k, int64_t after_id) {
  return impl_->rows(std::string(kRowsOfKey) + " AND id > CAST(?6 AS INTEGER)",
                     {k.source_uri, k.commit, k.recipe_path, std::to_string(k.source_date_epoch), k.build_args,
                      std::to_string(after_id)});
}

Result<std::vector<StoredAttestation>> Store::all_rows() { return impl_->rows("", {}); }

Result<std::string> Store::envelope(int64_t id) {
  Stmt* s = QR_TRY(impl_->db->statement("SELECT envelope FROM attestations WHERE id = ?1"));
  s->bind(1, id);
  int rc = s->step();
  if (rc == SQLITE_DONE) {
    s->reset();
    return Status::not_found("no attestation row " + std::to_string(id));
  }
  if (rc != SQLITE_ROW) {
    s->reset();
    return impl_->db->error("read the envelope of attestation row " + std::to_string(id));
  }
  std::string bytes = s->text(0);
  s->reset();
  return bytes;
}

Result<std::vector<StoredAttestation>> Store::attestations() {
  Stmt* s =
      QR_TRY(impl_->db->statement(std::string("SELECT ") + kAttestationColumns + " FROM attestations ORDER BY id"));
  std::vector<StoredAttestation> out;
  int rc;
  while ((rc = s->step()) == SQLITE_ROW) out.push_back(attestation_row(*s));
  s->reset();
  if (rc != SQLITE_DONE) return impl_->db->error("list attestations");
  return out;
}

Result<std::vector<Rejection>> Store::rejections() {
  Stmt* s = QR_TRY(impl_->db->statement(
      "SELECT id, envelope_digest, code, reason, received_at, publisher FROM rejections ORDER BY id"));
  std::vector<Rejection> out;
  int rc;
  while ((rc = s->step()) == SQLITE_ROW) out.push_back(rejection_row(*s));
  s->reset();
  if (rc != SQLITE_DONE) return impl_->db->error("list rejections");
  return out;
}

Result<std::vector<StoredDecision>> Store::decisions() {
  Stmt* s = QR_TRY(impl_->db->statement(
      "SELECT id, source_uri, commit_id, recipe_path, policy_digest, accepted, digest, decision, decided_at, "
      "revision, fingerprint, source_date_epoch, build_args FROM decisions ORDER BY id"));
  std::vector<StoredDecision> out;
  int rc;
  while ((rc = s->step()) == SQLITE_ROW) {
    out.push_back({s->integer(0),
                   {s->text(1), s->text(2), s->text(3), s->integer(11), s->text(12)},
                   s->text(4),
                   s->integer(5) != 0,
                   s->text(6),
                   s->text(7),
                   s->integer(8),
                   s->integer(9),
                   s->text(10)});
  }
  s->reset();
  if (rc != SQLITE_DONE) return impl_->db->error("list decisions");
  return out;
}

Result<std::optional<StoredDecision>> Store::last_decision(const SubjectKey& k) {
  Stmt* s = QR_TRY(impl_->db->statement(
      "SELECT id, source_uri, commit_id, recipe_path, policy_digest, accepted, digest, decision, decided_at, "
      "revision, fingerprint FROM decisions WHERE source_uri = ?1 AND commit_id = ?2 AND recipe_path = ?3 AND "
      "source_date_epoch = ?4 AND build_args = ?5 ORDER BY id DESC LIMIT 1"));
  s->bind(1, k.source_uri);
  s->bind(2, k.commit);
  s->bind(3, k.recipe_path);
  s->bind(4, k.source_date_epoch);
  s->bind(5, k.build_args);
  std::optional<StoredDecision> out;
  int rc = s->step();
  if (rc == SQLITE_ROW) {
    out = StoredDecision{s->integer(0), {s->text(1), s->text(2), s->text(3), k.source_date_epoch, k.build_args},
                         s->text(4),    s->integer(5) != 0,
                         s->text(6),    s->text(7),
                         s->integer(8), s->integer(9),
                         s->text(10)};
    rc = s->step();
  }
  s->reset();
  if (rc != SQLITE_DONE) return impl_->db->error("read the last decision of " + k.to_string());
  return out;
}

Result<std::optional<Store::LastRevision>> Store::last_revision(const SubjectKey& k) {
  // Rows written before schema 6 carry revision 0; a verifier of that time numbered each subject's decisions
  // from 1 after every start, recording each one it published, so no revision it published exceeds the
  // number of rows: COUNT(*) bounds them.
  Stmt* s = QR_TRY(impl_->db->statement(
      "SELECT MAX(revision), COUNT(*), (SELECT fingerprint FROM decisions WHERE commit_id = ?2 AND source_uri = ?1 AND "
      "recipe_path = ?3 AND source_date_epoch = ?4 AND build_args = ?5 ORDER BY id DESC LIMIT 1) FROM decisions WHERE "
      "commit_id = ?2 AND source_uri = ?1 AND recipe_path = ?3 AND source_date_epoch = ?4 AND build_args = ?5"));
  s->bind(1, k.source_uri);
  s->bind(2, k.commit);
  s->bind(3, k.recipe_path);
  s->bind(4, k.source_date_epoch);
  s->bind(5, k.build_args);
  std::optional<LastRevision> out;
  int rc = s->step();
  if (rc == SQLITE_ROW) {
    if (s->integer(1) > 0) out = LastRevision{std::max(s->integer(0), s->integer(1)), s->text(2)};
    rc = s->step();
  }
  s->reset();
  if (rc != SQLITE_DONE) return impl_->db->error("read the last revision of " + k.to_string());
  return out;
}

Result<std::optional<StoredAttestation>> Store::find_attestation(const std::string& id) {
  auto prefix = id_prefix(id);
  if (!prefix) return std::optional<StoredAttestation>();
  Stmt* s = QR_TRY(impl_->db->statement(
      std::string("SELECT ") + kAttestationColumns +
      ", envelope FROM attestations WHERE envelope_digest >= ?1 AND envelope_digest < ?1 || '~' ORDER BY id LIMIT 2"));
  s->bind(1, *prefix);
  std::vector<StoredAttestation> found;
  int rc;
  while ((rc = s->step()) == SQLITE_ROW) {
    found.push_back(attestation_row(*s));
    found.back().envelope = s->text(15);  // the column after kAttestationColumns
  }
  s->reset();
  if (rc != SQLITE_DONE) return impl_->db->error("find attestation " + id);
  if (found.size() > 1) return Status::usage("'" + id + "' names more than one attestation; give more of its digest");
  if (found.empty()) return std::optional<StoredAttestation>();
  return std::optional<StoredAttestation>(std::move(found.front()));
}

Result<std::optional<Rejection>> Store::find_rejection(const std::string& id) {
  auto prefix = id_prefix(id);
  if (!prefix) return std::optional<Rejection>();
  Stmt* s =
      QR_TRY(impl_->db->statement("SELECT id, envelope_digest, code, reason, received_at, publisher, envelope "
                                  "FROM rejections "
                                  "WHERE envelope_digest >= ?1 AND envelope_digest < ?1 || '~' "
                                  "ORDER BY id LIMIT 2"));
  s->bind(1, *prefix);
  std::vector<Rejection> found;
  int rc;
  while ((rc = s->step()) == SQLITE_ROW) {
    found.push_back(rejection_row(*s));
    found.back().envelope = s->text(6);
  }
  s->reset();
  if (rc != SQLITE_DONE) return impl_->db->error("find rejection " + id);
  if (found.size() > 1) return Status::usage("'" + id + "' names more than one rejection; give more of its digest");
  if (found.empty()) return std::optional<Rejection>();
  return std::optional<Rejection>(std::move(found.front()));
}

Status Store::check_integrity() {
  Stmt* s = QR_TRY(impl_->db->statement("PRAGMA integrity_check"));
  std::string findings;
  int rc;
  while ((rc = s->step()) == SQLITE_ROW) findings += (findings.empty() ? "" : "; ") + s->text(0);
  s->reset();
  if (rc != SQLITE_DONE) return impl_->db->error("integrity check");
  if (findings != "ok") return Status::bad_input(impl_->db->path() + ": integrity check: " + findings);
  // Every row filed under its key and its image (schema 8): a row that is not is found by no lookup.
  Stmt* unfiled = QR_TRY(impl_->db->statement(
      "SELECT count(*), min(id) FROM attestations a WHERE NOT EXISTS (SELECT 1 FROM subjects s JOIN subject_rows r ON "
      "r.subject_id = s.id AND r.attestation_id = a.id JOIN image_subjects p ON p.subject_id = s.id AND "
      "p.image_digest = a.image_digest WHERE s.commit_id = a.commit_id AND s.source_uri = a.source_uri AND "
      "s.recipe_path = a.recipe_path AND s.source_date_epoch = a.source_date_epoch AND "
      "s.build_args = IFNULL(a.build_args, ''))"));
  rc = unfiled->step();
  const int64_t count = rc == SQLITE_ROW ? unfiled->integer(0) : 0, first = rc == SQLITE_ROW ? unfiled->integer(1) : 0;
  unfiled->reset();
  if (rc != SQLITE_ROW) return impl_->db->error("integrity check");
  if (count > 0) {
    return Status::bad_input(impl_->db->path() + ": integrity check: " + std::to_string(count) +
                             " attestation row(s) not filed under their subject key and image, the first row " +
                             std::to_string(first));
  }
  return Status();
}

}  // namespace quorate::quorum
