// VerifierDaemon: follower -> judge -> decisions recorded, then on PUB; queries on ROUTER; cursors persisted after
// storing.
#include "quorate/quorumd/verifier_daemon.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <system_error>
#include <thread>

#include <google/protobuf/io/coded_stream.h>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "quorate/core/file.h"
#include "quorate/sqlite/database.h"
#include "quorate/wire/follower.h"
#include "quorate/wire/socket.h"

namespace quorate::quorum {
namespace {

namespace pb = wire::pb;
using wire::MessageType;
using SteadyClock = std::chrono::steady_clock;
constexpr size_t kMaxBatch = 4096;  // attestations per store transaction at most
constexpr size_t kMinBatch = 256;   // below this the fixed cost of a turn (three fsyncs) dominates
// A loop turn (gather, verify, store, decide, publish) aims at this long, so that queries waiting on the
// ROUTER socket are answered within about one turn: the batch cap follows the measured cost per attestation.
// Storing a batch is the longest stretch without answering queries; 40 ms rather than 60 brought the query p99
// at 50 nodes under 100 ms without lowering ingest (docs/decisions.md, issue 17).
constexpr double kTurnTargetMs = 40.0;
// A subject touched again within this long after it was decided is decided once more when the window ends, not
// once per vote or per turn: the votes of the window share one decision (docs/wire.md, issue 17).
constexpr auto kCoalesce = std::chrono::milliseconds(1000);
// While a backlog is ingested (the previous turn stored at least kBusyVotes votes), the first vote of a subject
// waits kBusyFirst instead of being decided at once, and a subject decided lately is decided again kBusyCoalesce
// after that decision: the votes arriving meanwhile share one decision. A subject for which
// every followed node has a vote (counted by its last decision or stored since) is due at once whatever the load: no
// node is left to vote.
constexpr size_t kBusyVotes = 16;
constexpr auto kBusyFirst = std::chrono::milliseconds(10000);  // 5 s made about 3 decisions a subject (issue 17)
constexpr auto kBusyCoalesce = std::chrono::milliseconds(10000);
// Subjects whose last decision misses a followed node, remembered (which nodes it counts) at most this many.
constexpr size_t kProgressMax = 65536;
// Deciding due subjects stops after this long in a turn (the rest stay due for the next turn), and so does
// answering queries: a turn is bounded whatever arrives.
constexpr double kDecideSliceMs = 40.0;
constexpr double kQuerySliceMs = 20.0;
// Within a decide slice the query socket is looked at this often: when a query waits, the decisions made so far
// are recorded and published and the query is answered at once, so that it does not wait for the whole slice.
constexpr double kDecideQueryCheckMs = 5.0;
// How much nicer than the loop's thread the threads verifying the next batches are.
constexpr int kVerifyNiceAbove = 10;
// Batches verified at once at most. Two: while the loop stores and decides one batch, the next is being verified
// and the one after it can start as soon as it is polled, so that the verifying threads do not idle when they
// finish before the loop does (issue 17: with one batch in flight the machine was a tenth idle during a burst).
constexpr size_t kInFlight = 2;
// Queries answered together at most (one transaction, then their answers sent): a restarted verifier verifies
// the stored votes of each subject asked again, about 5 ms a subject at 50 nodes, so the ~30 queries waiting for
// its restart are answered in four steps of 20-35 ms instead of all at once after 100 ms or more (issue 17).
constexpr size_t kAnswerChunk = 8;
// Answers the query socket queues per peer (ZMQ_SNDHWM); beyond that a ROUTER drops the answer to that peer (it
// never blocks). A client may have several queries outstanding, answered kAnswerChunk at a time; an answer is
// at most the Answer limit (1 MiB). With the socket default of 100,000, a client that sent queries and never
// read held every answer in the verifier.
constexpr int kAnswersQueuedPerPeer = 32;

std::string subject_id(const pb::SubjectKey& s) {
  return s.repo() + '\0' + s.commit() + '\0' + s.recipe_path() + '\0' + std::to_string(s.source_date_epoch()) + '\0' +
         s.build_args();
}

// cursors.db's schema, one migration a version (sqlite::Database::migrate).
constexpr const char* kCursorMigrations[] = {
    // 1: the last sequence stored per followed node.
    "CREATE TABLE cursors(node_id TEXT PRIMARY KEY, sequence INTEGER NOT NULL);",
    // 2: and in which incarnation of the node's history.
    "ALTER TABLE cursors ADD COLUMN incarnation INTEGER NOT NULL DEFAULT 0;",
};

// A follow cursor: the last sequence processed, in which incarnation of the node's history.
struct Cursor {
  uint64_t incarnation = 0;  // 0: saved before incarnations existed, or the node does not send them
  uint64_t sequence = 0;
};

// Follow cursors: node id -> Cursor. SQLite so an update is atomic and durable. The cursor is saved only
// after the attestations up to it are stored: a crash in between re-delivers, and the store's idempotent
// inserts make that harmless.
class CursorStore {
 public:
  static Result<std::unique_ptr<CursorStore>> open(const std::filesystem::path& path) {
    auto cs = std::unique_ptr<CursorStore>(new CursorStore());
    sqlite::OpenOptions options;
    options.unversioned_tables = {"cursors"};  // adopt_unversioned()
    cs->db_ = QR_TRY(sqlite::Database::open(path, options));
    QR_RETURN_IF_ERROR(cs->adopt_unversioned());
    QR_RETURN_IF_ERROR(cs->db_->migrate(kCursorMigrations));
    return cs;
  }

  Result<std::map<std::string, Cursor>> load() {
    std::map<std::string, Cursor> out;
    auto* st = QR_TRY(db_->statement("SELECT node_id, sequence, incarnation FROM cursors"));
    while (st->step() == SQLITE_ROW) {
      out[st->text(0)] = {static_cast<uint64_t>(st->integer(2)), static_cast<uint64_t>(st->integer(1))};
    }
    st->reset();
    return out;
  }

  Status save(const std::map<std::string, Cursor>& cursors) {
    return db_->transaction([&]() -> Status {
      for (const auto& [node, cursor] : cursors) {
        auto* st = QR_TRY(db_->statement(
            "INSERT INTO cursors(node_id, sequence, incarnation) VALUES(?, ?, ?) "
            "ON CONFLICT(node_id) DO UPDATE SET sequence = excluded.sequence, incarnation = excluded.incarnation"));
        st->bind(1, node);
        st->bind(2, static_cast<int64_t>(cursor.sequence));
        st->bind(3, static_cast<int64_t>(cursor.incarnation));
        QR_RETURN_IF_ERROR(db_->done(st, "save cursor"));
      }
      return Status();
    });
  }

 private:
  CursorStore() = default;

  // Files written before the schema was versioned (user_version 0 with a cursors table) are given the
  // version their table matches, so that migrate() continues from there.
  Status adopt_unversioned() {
    if (QR_TRY(db_->user_version()) != 0) return Status();
    auto* table = QR_TRY(db_->statement("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cursors'"));
    const bool exists = table->step() == SQLITE_ROW;
    table->reset();
    if (!exists) return Status();
    auto* columns = QR_TRY(db_->statement("SELECT 1 FROM pragma_table_info('cursors') WHERE name = 'incarnation'"));
    const bool has_incarnation = columns->step() == SQLITE_ROW;
    columns->reset();
    return db_->exec(has_incarnation ? "PRAGMA user_version = 2" : "PRAGMA user_version = 1", "adopt cursor schema");
  }

  std::unique_ptr<sqlite::Database> db_;
};

// A batch polled from the followers and being verified (Judge::check) on worker threads while the loop stores
// and decides the batch before it: the first stage of the loop's two-stage pipeline (docs/wire.md). Its
// attestations hold their nodes' saved cursors below them until it is stored and its subjects decided.
struct InFlight {
  std::vector<pb::AttestationMessage> messages;  // node id and sequence (the envelopes moved to `subs`)
  std::vector<Judge::Submission> subs;
  std::unique_ptr<Judge::Checks> checks;  // set by the worker before `done` is ready
  SteadyClock::time_point started;        // when check() started (set by the worker)
  SteadyClock::time_point finished;       // when check() returned (set by the worker before `done` is ready)
  SteadyClock::time_point oldest_since;   // when it became the oldest batch in flight (set by the loop)
  std::future<void> done;                 // last: destroyed first, so the worker has finished with the rest
  // What verifying it added to the pipeline's time: from when it started or became the oldest batch, whichever
  // was later (before that it overlapped the batch before it), to when it was verified.
  double verify_ms() const {
    return std::chrono::duration<double, std::milli>(finished - std::max(started, oldest_since)).count();
  }
};

}  // namespace

struct VerifierDaemon::Impl {
  VerifierConfig config;
  std::unique_ptr<Judge> judge;
  wire::EventLog& log;
  Options options;
  std::unique_ptr<CursorStore> cursors;
  std::unique_ptr<wire::Context> ctx;
  std::unique_ptr<wire::Socket> pub;
  std::unique_ptr<wire::Socket> router;
  std::unique_ptr<wire::Follower> follower;
  std::string pub_endpoint, query_endpoint;
  // Subject id -> the fingerprint and revision of the decision recorded (and published) last. Filled from the
  // store when a subject is first touched or asked about in this process: nothing is decided at start.
  struct Published {
    std::string fingerprint;  // decision_fingerprint(); '' when not known
    uint64_t revision = 0;    // 0: none recorded yet
  };
  std::map<std::string, Published> published;
  // Subjects with votes stored and not decided yet (coalesced): subject id -> its key, when it is due and the
  // (node, sequence) of each attestation waiting for it. A node's cursor is saved below its earliest waiting
  // attestation, so that a restart re-delivers what was stored but not decided (Record, then publish, then
  // move cursors).
  struct Dirty {
    pb::SubjectKey key;
    SteadyClock::time_point due;
    std::vector<std::pair<std::string, uint64_t>> holds;
    std::vector<bool> voted;  // per followed node (node_index): counted by the last decision or stored since
    size_t unvoted = 0;       // followed nodes not in `voted`
  };
  std::map<std::string, Dirty> dirty;
  std::set<std::pair<SteadyClock::time_point, std::string>> due_order;
  std::map<std::string, SteadyClock::time_point> decided_at;  // subject id -> when it was decided last
  // Followed node id -> its index; subject id -> the followed nodes its last decision counts, for subjects whose
  // last decision misses one (at most kProgressMax).
  std::map<std::string, size_t> node_index;
  std::map<std::string, std::vector<bool>> progress;
  size_t marked_this_turn = 0;  // votes marked since decide_due() last ran
  bool busy = false;            // the previous turn marked at least kBusyVotes
  // Node id -> sequence -> how many attestations hold it (waiting for their subject's decision, or in flight:
  // polled and not stored yet); and the incarnation they were held in.
  std::map<std::string, std::map<uint64_t, int>> holds;
  std::map<std::string, uint64_t> held_incarnation;
  mutable std::mutex mu;
  VerifierCounters counts;
  wire::DropCounters router_drops;

  void drop(wire::DropReason why, const std::string& detail) {
    router_drops.add(why);
    log.warn("frame_dropped", {{"reason", wire::drop_reason_name(why)}, {"socket", "query"}, {"detail", detail}});
  }

  Status bind_and_follow() {
    auto security = QR_TRY(wire::make_server_security(config.transport));
    ctx = QR_TRY(wire::Context::create());
    // A refused CURVE client is logged when it happens, with its key, as the node does (only counting it left an
    // operator no way to tell which client was refused).
    ctx->on_zap_denied([this](const wire::Context::ZapDenial& d) {
      log.warn("zap_denied", {{"client_key", d.client_key.empty() ? "(none)" : d.client_key},
                              {"address", d.address},
                              {"mechanism", d.mechanism},
                              {"reason", "client key not in allowed_clients"}});
    });
    wire::SocketOptions so;
    so.max_message_bytes = static_cast<int64_t>(config.limits.largest()) * 2;
    pub = std::make_unique<wire::Socket>(QR_TRY(wire::Socket::server(*ctx, wire::SocketType::kPub, security, so)));
    wire::SocketOptions answers = so;
    answers.send_hwm = kAnswersQueuedPerPeer;
    router = std::make_unique<wire::Socket>(
        QR_TRY(wire::Socket::server(*ctx, wire::SocketType::kRouter, security, answers)));
    pub_endpoint = QR_TRY(pub->bind(config.publish_endpoint));
    query_endpoint = QR_TRY(router->bind(config.query_endpoint));
    // A handshake libzmq refuses before ZAP (NULL or PLAIN at a CURVE socket, a key without its secret) is
    // logged too, rate-limited per socket and kind like every warning (the node does the same).
    auto failed = [this](const wire::Context::HandshakeFailure& f) {
      log.warn("handshake_failed",
               {{"socket", f.socket}, {"address", f.address}, {"reason", f.reason}, {"detail", f.detail}});
    };
    QR_RETURN_IF_ERROR(ctx->watch_failed_handshakes(*pub, "publish", failed));
    QR_RETURN_IF_ERROR(ctx->watch_failed_handshakes(*router, "query", failed));
    if (!config.endpoints_file.empty()) {
      nlohmann::json j = {{"publish", pub_endpoint}, {"query", query_endpoint}};
      QR_RETURN_IF_ERROR(write_file_atomic(config.endpoints_file, j.dump() + "\n"));
    }
    auto saved = QR_TRY(cursors->load());
    std::map<std::string, uint64_t> start;
    wire::Follower::Options fo;
    for (const auto& [node, c] : saved) {
      start[node] = c.sequence;
      fo.incarnations[node] = c.incarnation;
    }
    fo.limits = config.limits;
    fo.history_timeout_ms = config.history_timeout_ms;
    follower = QR_TRY(wire::Follower::open(*ctx, config.nodes, config.transport, start, fo, log));
    return Status();
  }

  // Stored rows the judge left out (a tampered or foreign store): never counted, always logged.
  void log_distrusted() {
    for (const auto& r : judge->take_distrusted()) {
      log.warn("attestation_distrusted", {{"row", r.id}, {"envelope_digest", r.envelope_digest}, {"reason", r.reason}});
    }
  }

  // What was recorded last for `subject`, from memory or else from the store (its revisions continue across
  // restarts: a revision number is never published twice for a subject).
  Result<Published*> last_published(const pb::SubjectKey& subject) {
    auto [it, fresh] = published.try_emplace(subject_id(subject));
    if (!fresh) return &it->second;
    auto last = judge->last_revision(subject);
    if (!last.ok()) {
      published.erase(it);
      return last.status();
    }
    if (*last) it->second = {(*last)->fingerprint, (*last)->revision};
    return &it->second;
  }

  void index_nodes() {
    if (!node_index.empty()) return;
    for (size_t i = 0; i < config.nodes.size(); ++i) node_index.emplace(config.nodes[i].node_id, i);
  }

  // Which followed nodes `d` counts (agreeing, dissenting, void), remembered while some are missing: the
  // subject is due at once when the rest have voted (mark_dirty).
  void note_progress(const std::string& id, const pb::Decision& d) {
    index_nodes();
    std::vector<bool> voted(config.nodes.size(), false);
    auto mark = [&](const std::string& node) {
      if (auto n = node_index.find(node); n != node_index.end()) voted[n->second] = true;
    };
    for (const auto& n : d.agreeing()) mark(n);
    for (const auto& x : d.dissenters()) mark(x.node_id());
    for (const auto& n : d.void_nodes()) mark(n);
    if (std::all_of(voted.begin(), voted.end(), [](bool v) { return v; })) {
      progress.erase(id);
      return;
    }
    if (progress.size() >= kProgressMax && !progress.count(id)) progress.clear();  // an optimisation only
    progress[id] = std::move(voted);
  }

  // The decision for `subject` when it differs from what was recorded last, with the next revision and its
  // fingerprint. The caller records it, then publishes it (publish()), then remembers it (remember()).
  struct Changed {
    pb::Decision decision;
    std::string fingerprint;
  };
  std::optional<Changed> decide_if_changed(const pb::SubjectKey& subject) {
    auto d = judge->decide(subject);
    if (!d.ok()) {
      log.error("decide_failed", {{"commit", subject.commit()}, {"error", d.status().to_string()}});
      return std::nullopt;
    }
    note_progress(subject_id(subject), *d);
    auto last = last_published(subject);
    if (!last.ok()) {
      log.error("decide_failed", {{"commit", subject.commit()}, {"error", last.status().to_string()}});
      return std::nullopt;
    }
    std::string fp = decision_fingerprint(*d);
    if ((*last)->fingerprint == fp) return std::nullopt;
    d->set_revision((*last)->revision + 1);
    return Changed{std::move(*d), std::move(fp)};
  }

  void publish(const pb::Decision& d) {
    const auto& subject = d.subject();
    Status s = pub->send({wire::decision_topic(subject.commit()), wire::encode_frame(MessageType::kDecision, d)});
    if (!s.ok()) log.warn("decision_publish_failed", {{"error", s.to_string()}});
    {
      std::lock_guard<std::mutex> lock(mu);
      ++counts.decisions_published;
    }
    log.info("decision", {{"repo", subject.repo()},
                          {"commit", subject.commit()},
                          {"recipe", subject.recipe_path()},
                          {"accepted", d.accepted()},
                          {"digest", d.digest()},
                          // Counts, not ids: at 50 nodes the ids made each line ~1.2 KB (~38 MB of log per
                          // 500,000 attestations); the ids are in the published decision and the store.
                          {"agreeing", d.agreeing_size()},
                          {"dissenters", d.dissenters_size()},
                          {"reason", d.reason()},
                          {"revision", d.revision()}});
  }

  // Records `changed`, then publishes each decision and remembers it as the last one of its subject. Called
  // after every round of decide_if_changed() (also when nothing changed: the judge forgets the rest then).
  Status record_and_publish(std::vector<Changed>& changed) {
    std::vector<pb::Decision> decisions;
    decisions.reserve(changed.size());
    for (const auto& c : changed) decisions.push_back(c.decision);
    QR_RETURN_IF_ERROR(judge->record(decisions).with_context("record decisions"));
    for (auto& c : changed) {
      published[subject_id(c.decision.subject())] = {std::move(c.fingerprint), c.decision.revision()};
      publish(c.decision);
    }
    return Status();
  }

  // Starts verifying `batch` on a worker thread (in the calling thread when no thread can be started). Each
  // of its attestations holds its node's saved cursor below it from now until ingest() stored it: the
  // follower's cursor has moved past them already (record, then publish, then move cursors).
  std::unique_ptr<InFlight> start_verifying(std::vector<pb::AttestationMessage> batch) {
    auto f = std::make_unique<InFlight>();
    f->messages = std::move(batch);
    f->subs.reserve(f->messages.size());
    for (auto& m : f->messages) {
      hold(m.node_id(), m.sequence());
      f->subs.push_back({m.node_id(), std::move(*m.mutable_envelope())});
    }
    auto work = [flight = f.get(), j = judge.get()] {
      flight->started = SteadyClock::now();
      flight->checks = j->check(flight->subs);
      flight->finished = SteadyClock::now();
    };
    try {
      f->done = std::async(std::launch::async, [work] {
        // Below the loop's thread, which stores, decides and answers queries (the pipeline's critical path):
        // verifying the next batch takes the CPU time that thread leaves (issue 17). check()'s threads inherit
        // the nice value of this one.
        const auto tid = static_cast<id_t>(syscall(SYS_gettid));
        errno = 0;
        const int nice = getpriority(PRIO_PROCESS, tid);
        if (errno == 0) (void)setpriority(PRIO_PROCESS, tid, std::min(19, nice + kVerifyNiceAbove));
        work();
      });
    } catch (const std::system_error&) {
      work();
      std::promise<void> ready;
      ready.set_value();
      f->done = ready.get_future();
    }
    return f;
  }

  // Waits for `f`'s verification (then takes it: `f.done` is no longer valid); meanwhile answers queries and
  // gathers the next batch into `next` (up to `cap`), so that the wait costs neither. With `until_gathered` it
  // returns as soon as something was gathered, verified or not: that can be verified meanwhile. Queries are
  // answered once even when `f` is ready: storing it is the longest stretch of a turn without answering
  // (issue 17: query p99).
  void wait_verified(InFlight& f, std::vector<pb::AttestationMessage>& next, size_t cap, bool until_gathered) {
    serve_queries();
    while (f.done.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
      serve_queries();
      if (next.size() < cap) {
        auto more = follower->poll(1, cap - next.size());
        if (more.ok()) {
          for (auto& m : *more) next.push_back(std::move(m));
          if (until_gathered && !next.empty()) return;
          continue;
        }
        log.error("follow_failed", {{"error", more.status().to_string()}});
      }
      (void)f.done.wait_for(std::chrono::milliseconds(1));
    }
    f.done.get();
  }

  // Stores the verified batch `f` (one transaction), counts and logs the outcomes, marks the subjects touched
  // for deciding (their holds keep the cursors below them from now) and releases the batch's own holds.
  Status ingest(InFlight& f) {
    auto outcomes = judge->commit(f.subs, std::move(f.checks));
    if (!outcomes.ok()) return outcomes.status();  // the store failed: stop before moving cursors
    auto& batch = f.messages;
    if (outcomes->size() != batch.size()) return Status::internal("judge returned a wrong number of outcomes");
    const auto now = SteadyClock::now();
    log_duplicates(batch, *outcomes);  // before the counters move: whoever sees them counted finds the line
    for (size_t i = 0; i < batch.size(); ++i) {
      const auto& m = batch[i];
      const auto* outcome = &(*outcomes)[i];
      {
        std::lock_guard<std::mutex> lock(mu);
        ++counts.received;
        switch (outcome->kind) {
          case Judge::Outcome::Kind::kStored:
            ++counts.stored;
            break;
          case Judge::Outcome::Kind::kDuplicate:
            ++counts.duplicates;
            break;
          case Judge::Outcome::Kind::kRejected:
            ++counts.rejected;
            ++counts.rejected_by_reason[outcome->reason];
            log.warn("attestation_rejected",
                     {{"node_id", m.node_id()}, {"sequence", m.sequence()}, {"reason", outcome->reason}});
            break;
        }
      }
      // Duplicates too: a verifier killed after storing a batch but before recording its decisions gets the
      // batch again (its cursors are saved below what waits) and records them then. Unchanged decisions are
      // not repeated.
      if (outcome->kind != Judge::Outcome::Kind::kRejected && outcome->subject) {
        mark_dirty(*outcome->subject, m.node_id(), m.sequence(), now);
      }
    }
    for (const auto& m : batch) unhold(m.node_id(), m.sequence());
    return Status();
  }

  // One line for the batch's duplicates, per node how many and from which sequence to which: a restarted
  // verifier gets tens of thousands back (its cursors stay below what waits for a decision), one line each was
  // noise (issue 17).
  void log_duplicates(const std::vector<pb::AttestationMessage>& batch, const std::vector<Judge::Outcome>& outcomes) {
    struct Span {
      uint64_t count = 0, first = 0, last = 0;
    };
    std::map<std::string, Span> by_node;
    uint64_t total = 0;
    for (size_t i = 0; i < batch.size() && i < outcomes.size(); ++i) {
      if (outcomes[i].kind != Judge::Outcome::Kind::kDuplicate) continue;
      auto [it, fresh] = by_node.try_emplace(batch[i].node_id());
      Span& sp = it->second;
      sp.first = fresh ? batch[i].sequence() : std::min(sp.first, batch[i].sequence());
      sp.last = std::max(sp.last, batch[i].sequence());
      ++sp.count;
      ++total;
    }
    if (total == 0) return;
    nlohmann::json nodes = nlohmann::json::object();
    for (const auto& [node, sp] : by_node) {
      nodes[node] = {{"count", sp.count}, {"first_sequence", sp.first}, {"last_sequence", sp.last}};
    }
    log.info("attestations_duplicate", {{"count", total}, {"nodes", nodes}});
  }

  // A hold keeps `node`'s saved cursor below `sequence` (save_cursors()): held by an attestation in flight
  // (polled, not stored yet) and by one stored whose subject waits for its decision.
  void hold(const std::string& node, uint64_t sequence) {
    auto& node_holds = holds[node];
    if (node_holds.empty()) held_incarnation[node] = follower->incarnation(node);
    ++node_holds[sequence];
  }
  void unhold(const std::string& node, uint64_t sequence) {
    auto& node_holds = holds[node];
    auto h = node_holds.find(sequence);
    if (h != node_holds.end() && --h->second <= 0) node_holds.erase(h);
  }

  // `subject` has a vote stored that its last decision does not count yet: due now when it was not decided
  // within kCoalesce, else when that window ends.
  void mark_dirty(const pb::SubjectKey& subject, const std::string& node, uint64_t sequence,
                  SteadyClock::time_point now) {
    const std::string id = subject_id(subject);
    ++marked_this_turn;
    index_nodes();
    auto [it, fresh] = dirty.try_emplace(id);
    Dirty& d = it->second;
    if (fresh) {
      d.key = subject;
      auto last = decided_at.find(id);
      if (last == decided_at.end()) {
        d.due = busy ? now + kBusyFirst : now;
      } else {
        d.due = std::max(now, last->second + (busy ? kBusyCoalesce : kCoalesce));
      }
      auto p = progress.find(id);
      d.voted = p != progress.end() ? p->second : std::vector<bool>(config.nodes.size(), false);
      d.unvoted = static_cast<size_t>(std::count(d.voted.begin(), d.voted.end(), false));
      due_order.insert({d.due, id});
    }
    if (auto n = node_index.find(node); n != node_index.end() && n->second < d.voted.size() && !d.voted[n->second]) {
      d.voted[n->second] = true;
      // Every followed node has voted: nothing is left to wait for.
      if (--d.unvoted == 0 && d.due > now) {
        due_order.erase({d.due, id});
        d.due = now;
        due_order.insert({d.due, id});
      }
    }
    d.holds.emplace_back(node, sequence);
    hold(node, sequence);
  }

  // The subject was decided (and, when changed, recorded and published): what waited for it may move on.
  void release(const std::string& id, SteadyClock::time_point now) {
    decided_at[id] = now;
    auto it = dirty.find(id);
    if (it == dirty.end()) return;
    due_order.erase({it->second.due, id});  // absent when decide_due() took it
    for (const auto& [node, seq] : it->second.holds) unhold(node, seq);
    dirty.erase(it);
  }

  // Decides the subjects that are due (all of them with `all`), at most kDecideSliceMs of work unless `all`;
  // records the changed decisions, then publishes them (the caller saves the cursors after).
  Status decide_due(bool all) {
    const auto started = SteadyClock::now();
    busy = marked_this_turn >= kBusyVotes;
    marked_this_turn = 0;
    std::vector<std::string> ids;
    std::vector<Changed> changed;
    // Record, then publish, then move the cursors: a decision that left the process is always in the decisions
    // table, even when the process is killed right after sending it (issue 11, item 6), and attestations whose
    // decisions were not recorded are delivered again after a restart. When recording fails nothing is
    // published and the error stops the daemon, like any other store failure.
    auto flush = [&]() -> Status {
      if (ids.empty()) return Status();
      log_distrusted();
      QR_RETURN_IF_ERROR(record_and_publish(changed));
      const auto now = SteadyClock::now();
      for (const auto& id : ids) release(id, now);
      ids.clear();
      changed.clear();
      return Status();
    };
    auto checked = started;
    while (!due_order.empty()) {
      auto first = due_order.begin();
      if (!all && first->first > started) break;
      const auto now = SteadyClock::now();
      if (!all && std::chrono::duration<double, std::milli>(now - started).count() > kDecideSliceMs) break;
      if (!all && std::chrono::duration<double, std::milli>(now - checked).count() > kDecideQueryCheckMs) {
        // A query waiting is answered now, after what was decided so far is recorded and published (as if the
        // slice ended here): it may be about one of those subjects (issue 17: query p99).
        checked = now;
        gather_queries();
        if (!waiting_queries.empty()) {
          QR_RETURN_IF_ERROR(flush());
          answer_waiting();
          continue;  // `first` may be gone: a query decides subjects too
        }
      }
      const std::string id = first->second;
      due_order.erase(first);
      auto it = dirty.find(id);
      if (it == dirty.end()) continue;
      ids.push_back(id);
      if (auto c = decide_if_changed(it->second.key)) changed.push_back(std::move(*c));
    }
    return flush();
  }

  // Saves each node's cursor: the follower's, or just below the earliest attestation still waiting for its
  // subject's decision.
  Status save_cursors() {
    std::map<std::string, Cursor> now;
    for (const auto& n : config.nodes) {
      Cursor c{follower->incarnation(n.node_id), follower->cursor(n.node_id)};
      auto h = holds.find(n.node_id);
      if (h != holds.end() && !h->second.empty()) {
        const uint64_t below = h->second.begin()->first - 1;
        const uint64_t inc = held_incarnation[n.node_id];
        if (inc != c.incarnation || below < c.sequence) c = {inc, below};
      }
      now[n.node_id] = c;
    }
    return cursors->save(now);
  }

  // The answers to `queries`, in order. A decision that differs from the one recorded last for its subject is
  // decided afresh and, when it changed, recorded as the next revision and published before any answer leaves
  // (docs/wire.md): one transaction for all the queries of the batch, each subject decided once.
  std::vector<pb::Answer> answer_all(const std::vector<pb::Query>& queries) {
    std::vector<pb::Answer> answers(queries.size());
    std::vector<std::vector<pb::Decision>> found(queries.size());
    std::vector<Changed> changed;
    std::map<std::string, size_t> changed_at;  // subject id -> index in `changed`
    std::set<std::string> decided;             // subject ids decided again for this batch
    for (size_t i = 0; i < queries.size(); ++i) {
      const pb::Query& q = queries[i];
      pb::Answer& a = answers[i];
      a.set_request_id(q.request_id());
      Result<std::vector<pb::Decision>> got = Status::bad_input("query names neither an image digest nor a subject");
      if (q.what_case() == pb::Query::kImageDigest) {
        got = judge->find_by_image(q.image_digest());
      } else if (q.what_case() == pb::Query::kSubject) {
        got = judge->find_by_subject(q.subject());
      }
      if (!got.ok()) {
        a.set_error(got.status().to_string());
        continue;
      }
      for (const auto& d : *got) {
        auto last = last_published(d.subject());
        if (!last.ok()) {
          a.set_error(last.status().to_string());
          break;
        }
        // A revision names one content (docs/wire.md). When the store holds votes the last recorded decision
        // does not count (the verifier was killed after storing them and before recording; they wait for their
        // coalesced decision; the decision changed with time), the answer is a new revision, recorded and
        // published like any other, never the old number on new content (issue 17).
        const std::string id = subject_id(d.subject());
        if (decision_fingerprint(d) != (*last)->fingerprint && decided.insert(id).second) {
          if (auto c = decide_if_changed(d.subject())) {
            changed_at[id] = changed.size();
            changed.push_back(std::move(*c));
          }
        }
      }
      if (a.error().empty()) found[i] = std::move(*got);
    }
    log_distrusted();
    std::vector<pb::Decision> made;  // what is recorded, kept for the answers (record_and_publish takes `changed`)
    made.reserve(changed.size());
    for (const auto& c : changed) made.push_back(c.decision);
    Status s = record_and_publish(changed);
    if (!s.ok()) log.error("record_failed", {{"error", s.to_string()}});
    const auto now = SteadyClock::now();
    if (s.ok()) {
      for (const auto& id : decided) release(id, now);
    }
    for (size_t i = 0; i < queries.size(); ++i) {
      pb::Answer& a = answers[i];
      if (!a.error().empty()) continue;
      for (auto& d : found[i]) {
        const std::string id = subject_id(d.subject());
        if (!s.ok() && decided.count(id)) {
          a.clear_decisions();
          a.set_error(s.to_string());
          break;
        }
        if (auto c = changed_at.find(id); c != changed_at.end()) d = made[c->second];
        d.set_revision(published[id].revision);
        *a.add_decisions() = std::move(d);
      }
      fit_answer(a);
    }
    return answers;
  }

  // Keeps `a` under the Answer size limit, which every client enforces (a node with a valid key attesting an
  // image for thousands of made-up commits made each answer about that image several MiB: dropped by every
  // client, so the gate got no answer at all). Accepted decisions first, each group in its order; those that do
  // not fit are left out and counted in `omitted`. So an answer holding a decision not accepted left no accepted
  // one out, and an image accepted for some subject is seen as such.
  void fit_answer(pb::Answer& a) const {
    const size_t limit = config.limits.max_decision_bytes - wire::kFrameHeaderSize;
    auto framed = [](size_t n) { return 1 + google::protobuf::io::CodedOutputStream::VarintSize64(n) + n; };
    size_t total = a.ByteSizeLong() + 8;  // and the `omitted` field
    if (total <= limit) return;
    std::vector<pb::Decision> all(std::make_move_iterator(a.mutable_decisions()->begin()),
                                  std::make_move_iterator(a.mutable_decisions()->end()));
    a.clear_decisions();
    std::stable_partition(all.begin(), all.end(), [](const pb::Decision& d) { return d.accepted(); });
    total = a.ByteSizeLong() + 8;
    uint32_t omitted = 0;
    bool full = false;
    for (auto& d : all) {
      const size_t size = framed(d.ByteSizeLong());
      if (full || total + size > limit) {
        full = true;  // keep the order: nothing after a decision left out is put in
        ++omitted;
        continue;
      }
      total += size;
      *a.add_decisions() = std::move(d);
    }
    a.set_omitted(omitted);
  }

  // Queries received and not answered yet (gather_queries), with the frames to answer them on.
  std::vector<wire::Frames> waiting_from;
  std::vector<pb::Query> waiting_queries;

  void serve_queries() {
    gather_queries();
    answer_waiting();
  }

  // Receives the queries waiting on the ROUTER socket (at most 100 waiting, at most kQuerySliceMs of reading).
  void gather_queries() {
    const auto started = SteadyClock::now();
    std::vector<wire::Frames>& from = waiting_from;
    std::vector<pb::Query>& queries = waiting_queries;
    for (int i = 0; i < 100 && queries.size() < 100; ++i) {
      if (i > 0 && std::chrono::duration<double, std::milli>(SteadyClock::now() - started).count() > kQuerySliceMs)
        break;
      auto got = router->recv(0);
      if (!got.ok()) {
        if (got.status().is_bad_input())
          drop(wire::DropReason::kGarbage, got.status().message());
        else
          log.error("query_recv_failed", {{"error", got.status().to_string()}});
        continue;
      }
      if (!got->has_value()) break;
      wire::Frames frames = std::move(**got);
      if (frames.size() < 2 || frames.size() > 3 || (frames.size() == 3 && !frames[1].empty())) {
        drop(wire::DropReason::kGarbage, std::to_string(frames.size()) + " frames");
        continue;
      }
      pb::Query q;
      wire::DropReason why{};
      Status s = wire::decode_message(frames.back(), MessageType::kQuery, config.limits, q, &why);
      if (!s.ok()) {
        drop(why, s.message());
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        ++counts.queries;
      }
      from.push_back(std::move(frames));
      queries.push_back(std::move(q));
    }
  }

  // Answers the queries gathered, in the order they came, kAnswerChunk at a time: each chunk's work shared
  // (Judge::prepare), one transaction for what it decides afresh (answer_all), and its answers sent before the
  // next chunk is begun. So when many queries wait on subjects this process has not read (a restarted verifier,
  // which verifies every stored vote again before counting it) the first answers leave early.
  void answer_waiting() {
    if (waiting_queries.empty()) return;
    std::vector<wire::Frames> from = std::move(waiting_from);
    std::vector<pb::Query> queries = std::move(waiting_queries);
    waiting_from.clear();
    waiting_queries.clear();
    std::map<std::string, pb::Answer> answered;  // question_key() -> its answer, in this call
    for (size_t begin = 0; begin < queries.size(); begin += kAnswerChunk) {
      const size_t end = std::min(queries.size(), begin + kAnswerChunk);
      std::vector<pb::Query> chunk(std::make_move_iterator(queries.begin() + static_cast<std::ptrdiff_t>(begin)),
                                   std::make_move_iterator(queries.begin() + static_cast<std::ptrdiff_t>(end)));
      // A question asked again in this call (a client sending one expensive query many times: 100 queries about an
      // image attested for 1,501 commits held an honest query 3.6 s) is answered as it was the first time: nothing
      // was stored in between, and that answer's decisions were recorded and published.
      std::vector<pb::Query> fresh;
      std::set<std::string> asked;
      for (const auto& q : chunk) {
        const std::string key = question_key(q);
        if (!answered.count(key) && asked.insert(key).second) fresh.push_back(q);
      }
      judge->prepare(fresh);
      std::vector<pb::Answer> answers = answer_all(fresh);
      for (size_t i = 0; i < fresh.size(); ++i) answered[question_key(fresh[i])] = std::move(answers[i]);
      for (size_t i = 0; i < chunk.size(); ++i) {
        pb::Answer a = answered[question_key(chunk[i])];
        a.set_request_id(chunk[i].request_id());
        wire::Frames& to = from[begin + i];
        to.back() = wire::encode_frame(MessageType::kAnswer, a);
        Status sent = router->send(to);
        if (!sent.ok()) log.warn("answer_failed", {{"error", sent.to_string()}});
      }
    }
  }

  // What a query asks, without its request id: what Judge::find_by_image / find_by_subject look at.
  static std::string question_key(const pb::Query& q) {
    auto field = [](const std::string& f) { return std::to_string(f.size()) + ":" + f; };
    if (q.what_case() == pb::Query::kImageDigest) return "image;" + field(q.image_digest());
    if (q.what_case() == pb::Query::kSubject) {
      return "subject;" + field(q.subject().commit()) + field(q.subject().repo()) + field(q.subject().recipe_path());
    }
    return "none";
  }

  nlohmann::json counters_json() {
    auto c = snapshot();
    auto fc = follower->counters();
    return {{"received", c.received},
            {"stored", c.stored},
            {"duplicates", c.duplicates},
            {"rejected", c.rejected},
            {"rejected_by_reason", c.rejected_by_reason},
            {"decisions_published", c.decisions_published},
            {"queries", c.queries},
            {"dropped", c.dropped},
            {"dropped_by_reason", follower_and_router_drops()},
            {"zap_denied", c.zap_denied},
            {"replays_ignored", fc.duplicates},
            {"gaps", fc.gaps},
            {"history_requests", fc.history_requests},
            {"history_without_progress", fc.history_fruitless},
            {"incarnation_changes", fc.incarnation_changes},
            {"live", fc.live},
            {"from_history", fc.from_history}};
  }

  std::map<std::string, uint64_t> follower_and_router_drops() {
    auto out = follower->drops().snapshot();
    for (const auto& [k, v] : router_drops.snapshot()) out[k] += v;
    return out;
  }

  VerifierCounters snapshot() {
    std::lock_guard<std::mutex> lock(mu);
    VerifierCounters c = counts;
    c.dropped = router_drops.total() + (follower ? follower->drops().total() : 0);
    c.zap_denied = ctx ? ctx->zap_denied() : 0;
    return c;
  }

  // The loop is a two-stage pipeline: each turn gathers the next batch and starts verifying it (on worker
  // threads, Judge::check), takes the oldest batch in flight once it is verified (waiting for it, while
  // answering queries and gathering, when kInFlight batches are in flight or until something new comes), stores it
  // (one transaction), answers queries, decides what is due, saves the cursors and answers queries again. So
  // verifying the next batches overlaps storing and deciding this one, and the loop's thread never verifies.
  // Batches are stored in the order they were polled.
  Status serve(const std::atomic<bool>& stop) {
    auto next_log = SteadyClock::now();
    std::string last_logged;
    size_t cap = 256;                                 // attestations a batch at most; adapted to kTurnTargetMs
    std::deque<std::unique_ptr<InFlight>> verifying;  // oldest first
    while (!stop) {
      auto polled = follower->poll(verifying.empty() ? 10 : 0, cap);
      std::vector<pb::AttestationMessage> batch;
      if (polled.ok()) {
        batch = std::move(*polled);
      } else {
        log.error("follow_failed", {{"error", polled.status().to_string()}});
        if (verifying.empty()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          continue;
        }
      }
      // Gather what is already waiting into one batch: one store transaction (one fsync) for many. The cap is
      // checked per message (Follower::poll), not per poll.
      while (!batch.empty() && batch.size() < cap) {
        auto more = follower->poll(0, cap - batch.size());
        if (!more.ok() || more->empty()) break;
        for (auto& m : *more) batch.push_back(std::move(m));
      }
      std::unique_ptr<InFlight> ready;
      if (!verifying.empty()) {
        InFlight& oldest = *verifying.front();
        if (verifying.size() >= kInFlight || batch.empty()) {
          wait_verified(oldest, batch, cap, verifying.size() < kInFlight);
        } else if (oldest.done.wait_for(std::chrono::milliseconds(0)) == std::future_status::ready) {
          oldest.done.get();
        }
        if (!oldest.done.valid()) {  // verified (get() was called)
          ready = std::move(verifying.front());
          verifying.pop_front();
          if (!verifying.empty()) verifying.front()->oldest_since = SteadyClock::now();
        }
      }
      if (!batch.empty()) {
        verifying.push_back(start_verifying(std::move(batch)));
        if (verifying.size() == 1) verifying.front()->oldest_since = SteadyClock::now();
      }
      bool moved = false;
      if (ready) {
        const auto started = SteadyClock::now();
        Status s = ingest(*ready);
        if (!s.ok()) {
          log.error("store_failed", {{"error", s.to_string()}});
          return s;  // cursors not moved: a restart re-fetches from history (`verifying` is waited for)
        }
        moved = true;
        const double store_ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - started).count();
        const size_t n = ready->messages.size();
        if (n >= cap / 2) {  // only full-ish batches say what a batch costs per attestation
          // The slower of the two stages sets the pace of a turn.
          const double per = std::max({store_ms, ready->verify_ms(), 0.001}) / static_cast<double>(n);
          const double want = kTurnTargetMs / per;
          // Move halfway towards the measured fit, to ride out one slow fsync.
          const double next = (static_cast<double>(cap) + want) / 2;
          cap = std::clamp<size_t>(static_cast<size_t>(next), kMinBatch, kMaxBatch);
        }
      }
      // Queries are answered between storing and deciding too: a query waits about half a turn, not a whole one.
      if (moved) serve_queries();
      const size_t waiting = dirty.size();
      Status decided = decide_due(false);
      if (decided.ok() && (moved || dirty.size() != waiting)) decided = save_cursors();
      if (!decided.ok()) {
        log.error("store_failed", {{"error", decided.to_string()}});
        return decided;
      }
      serve_queries();
      pub->process_pending();  // subscriptions are read as they come, not left to fill the queue
      if (SteadyClock::now() >= next_log) {
        auto j = counters_json();
        std::string text = j.dump();
        if (text != last_logged) log.info("counters", j);
        last_logged = text;
        next_log = SteadyClock::now() + std::chrono::milliseconds(options.counters_log_interval_ms);
      }
    }
    // The batches in flight are stored, and what waits for a decision is decided, before stopping, so that
    // nothing polled is left unstored and nothing stored is left undecided.
    for (auto& f : verifying) {
      f->done.wait();
      f->done.get();
      Status s = ingest(*f);
      if (!s.ok()) {
        log.error("store_failed", {{"error", s.to_string()}});
        return s;  // cursors not moved
      }
    }
    Status flushed = decide_due(true);
    if (flushed.ok()) flushed = save_cursors();
    if (!flushed.ok()) log.error("store_failed", {{"error", flushed.to_string()}});
    log.info("verifier_stopped", counters_json());
    return Status();
  }
};

VerifierDaemon::VerifierDaemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

VerifierDaemon::~VerifierDaemon() {
  if (!impl_) return;
  impl_->follower.reset();
  impl_->pub.reset();
  impl_->router.reset();
  impl_->ctx.reset();
}

Result<std::unique_ptr<VerifierDaemon>> VerifierDaemon::open(VerifierConfig config, std::unique_ptr<Judge> judge,
                                                             wire::EventLog& log, Options options) {
  auto impl = std::unique_ptr<Impl>(
      new Impl{.config = std::move(config), .judge = std::move(judge), .log = log, .options = std::move(options)});
  std::error_code ec;
  std::filesystem::create_directories(impl->config.data_dir, ec);
  if (ec) return Status::io(impl->config.data_dir.string() + ": " + ec.message());
  impl->cursors = QR_TRY(CursorStore::open(impl->config.data_dir / "cursors.db"));
  QR_RETURN_IF_ERROR(impl->bind_and_follow());
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& n : impl->config.nodes)
    nodes.push_back({{"id", n.node_id}, {"cursor", impl->follower->cursor(n.node_id)}});
  log.info("verifier_started", {{"publish", impl->pub_endpoint},
                                {"query", impl->query_endpoint},
                                {"nodes", nodes},
                                {"transport", impl->config.transport.insecure ? "insecure" : "curve"}});
  return std::unique_ptr<VerifierDaemon>(new VerifierDaemon(std::move(impl)));
}

const std::string& VerifierDaemon::publish_endpoint() const { return impl_->pub_endpoint; }
const std::string& VerifierDaemon::query_endpoint() const { return impl_->query_endpoint; }
Status VerifierDaemon::run(const std::atomic<bool>& stop) { return impl_->serve(stop); }
VerifierCounters VerifierDaemon::counters() const { return impl_->snapshot(); }

}  // namespace quorate::quorum
