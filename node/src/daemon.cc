// NodeDaemon: a control loop (ROUTER requests, publishing, heartbeats) and one build worker thread.
#include "quorate/node/daemon.h"

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "quorate/builder/reference.h"
#include "quorate/core/file.h"
#include "quorate/node/store.h"
#include "quorate/wire/request.h"
#include "quorate/wire/socket.h"

namespace quorate::node {
namespace {

using Clock = std::chrono::steady_clock;
using wire::MessageType;
namespace pb = wire::pb;

constexpr size_t kRememberedJobs = 4096;  // finished job states kept for JobStatusRequest
constexpr size_t kLineageSent = 64;       // incarnations listed in a HistoryResponse
// Answers the control socket queues per peer (ZMQ_SNDHWM); beyond that a ROUTER drops the answer to that peer
// (it never blocks). An honest client has one request outstanding (the verifier's follower, `quorate submit`)
// and asks again after its timeout. With the socket default of 100,000, a client that sent history requests and
// never read held every answer (each up to the history limit, 32 MiB) in the node.
constexpr int kAnswersQueuedPerPeer = 8;

}  // namespace

struct NodeDaemon::Impl {
  NodeConfig config;
  std::unique_ptr<Rebuilder> rebuilder;
  wire::EventLog& log;
  Options options;
  std::unique_ptr<NodeStore> store;
  std::unique_ptr<wire::Context> ctx;
  std::unique_ptr<wire::Socket> pub;
  std::unique_ptr<wire::Socket> control;
  std::string pub_endpoint, control_endpoint;

  // Shared with the worker, under mu.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<wire::RebuildRequest> queue;
  std::map<std::string, pb::JobStatus> jobs;
  std::deque<std::string> finished;      // request ids in the order they finished, to bound `jobs`
  std::deque<StoredAttestation> outbox;  // stored, durable, not yet published
  bool worker_stop = false;
  uint64_t last_stored = 0;
  Incarnation incarnation;  // this run's; set once at open
  NodeCounters counts;

  std::atomic<bool> cancel{false};
  wire::DropCounters drops;

  int64_t now_ms() const { return options.clock_ms ? options.clock_ms() : 0; }

  // ---- worker ----------------------------------------------------------------------------------------

  void set_state(const std::string& id, pb::JobStatus::State state, const std::string& message, uint64_t sequence = 0,
                 const std::string& digest = {}) {
    auto& js = jobs[id];
    js.set_request_id(id);
    js.set_node_id(config.node_id);
    js.set_state(state);
    js.set_message(message);
    js.set_sequence(sequence);
    js.set_image_digest(digest);
    if (state != pb::JobStatus::QUEUED && state != pb::JobStatus::RUNNING) {
      finished.push_back(id);
      while (finished.size() > kRememberedJobs) {
        jobs.erase(finished.front());
        finished.pop_front();
      }
    }
  }

  void worker() {
    for (;;) {
      wire::RebuildRequest req;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return worker_stop || !queue.empty(); });
        if (worker_stop) {
          for (const auto& q : queue)
            set_state(q.request_id, pb::JobStatus::REJECTED, "node stopped before the build started");
          queue.clear();
          return;
        }
        req = std::move(queue.front());
        queue.pop_front();
        set_state(req.request_id, pb::JobStatus::RUNNING, "");
      }
      log.info(
          "build_started",
          {{"request_id", req.request_id}, {"repo", req.repo}, {"commit", req.commit}, {"recipe", req.recipe_path}});
      auto out = rebuilder->rebuild(req, cancel);
      if (cancel) {
        std::lock_guard<std::mutex> lock(mu);
        set_state(req.request_id, pb::JobStatus::FAILED, "abandoned: node stopping");
        log.warn("build_abandoned", {{"request_id", req.request_id}});
        return;
      }
      if (!out.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        ++counts.failed;
        set_state(req.request_id, pb::JobStatus::FAILED, out.status().to_string());
        log.error("build_failed", {{"request_id", req.request_id}, {"error", out.status().to_string()}});
        continue;
      }
      for (const auto& w : out->warnings) log.warn("build_warning", {{"request_id", req.request_id}, {"warning", w}});
      store_and_queue(req, *out);
    }
  }

  void store_and_queue(const wire::RebuildRequest& req, const RebuildOutput& out) {
    auto seq = store->append(req.request_id, out.image_digest, out.envelope, now_ms() / 1000);
    std::lock_guard<std::mutex> lock(mu);
    if (!seq.ok()) {
      ++counts.failed;
      set_state(req.request_id, pb::JobStatus::FAILED, "store: " + seq.status().to_string());
      log.error("store_failed", {{"request_id", req.request_id}, {"error", seq.status().to_string()}});
      return;
    }
    ++counts.succeeded;
    last_stored = *seq;
    set_state(req.request_id, pb::JobStatus::SUCCEEDED, "", *seq, out.image_digest);
    outbox.push_back({*seq, req.request_id, out.image_digest, out.envelope});
    log.info("attestation_stored",
             {{"request_id", req.request_id}, {"sequence", *seq}, {"image_digest", out.image_digest}});
  }

  // ---- control loop ----------------------------------------------------------------------------------

  void publish_outbox() {
    std::deque<StoredAttestation> batch;
    {
      std::lock_guard<std::mutex> lock(mu);
      batch.swap(outbox);
    }
    for (const auto& a : batch) {
      pb::AttestationMessage m;
      m.set_node_id(config.node_id);
      m.set_sequence(a.sequence);
      m.set_envelope(a.envelope);
      m.set_request_id(a.request_id);
      m.set_incarnation(incarnation.id);
      Status s = pub->send({wire::attestation_topic(config.node_id), wire::encode_frame(MessageType::kAttestation, m)});
      if (!s.ok()) {
        // Stored already: subscribers get it from history. Not fatal.
        log.warn("publish_failed", {{"sequence", a.sequence}, {"error", s.to_string()}});
        continue;
      }
      std::lock_guard<std::mutex> lock(mu);
      ++counts.published;
      log.info("published", {{"sequence", a.sequence}, {"image_digest", a.image_digest}});
    }
  }

  void heartbeat() {
    pb::Heartbeat hb;
    hb.set_node_id(config.node_id);
    hb.set_unix_time(now_ms() / 1000);
    hb.set_incarnation(incarnation.id);
    {
      std::lock_guard<std::mutex> lock(mu);
      hb.set_last_sequence(last_stored);
      hb.set_queue_depth(static_cast<uint32_t>(queue.size()));
    }
    for (const auto& [k, v] : drops.snapshot()) (*hb.mutable_dropped())[k] = v;
    Status s = pub->send({wire::heartbeat_topic(config.node_id), wire::encode_frame(MessageType::kHeartbeat, hb)});
    if (!s.ok()) log.warn("heartbeat_failed", {{"error", s.to_string()}});
  }

  void drop(wire::DropReason why, const std::string& detail) {
    drops.add(why);
    {
      std::lock_guard<std::mutex> lock(mu);
      ++counts.dropped;
    }
    log.warn("frame_dropped", {{"reason", wire::drop_reason_name(why)}, {"detail", detail}});
  }

  void reply(const wire::Frames& route, MessageType type, const google::protobuf::MessageLite& msg) {
    wire::Frames out = route;
    out.push_back(wire::encode_frame(type, msg));
    Status s = control->send(out);
    if (!s.ok()) log.warn("reply_failed", {{"type", wire::message_type_name(type)}, {"error", s.to_string()}});
  }

  pb::JobStatus status_of(const std::string& id) {
    pb::JobStatus js;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = jobs.find(id);
      if (it != jobs.end()) js = it->second;
      js.set_queue_depth(static_cast<uint32_t>(queue.size()));
    }
    if (js.state() != pb::JobStatus::STATE_UNSPECIFIED) return js;
    js.set_request_id(id);
    js.set_node_id(config.node_id);
    auto stored = store->find_request(id);
    if (stored.ok() && stored->has_value()) {
      js.set_state(pb::JobStatus::SUCCEEDED);
      js.set_sequence((*stored)->sequence);
      js.set_image_digest((*stored)->image_digest);
    } else {
      js.set_state(pb::JobStatus::UNKNOWN);
    }
    return js;
  }

  void on_build_request(const wire::Frames& route, const pb::BuildRequest& message) {
    // The wire request's own checks, then the OCI reference grammar of an image name override. `kind` names the
    // check that refused it: the log's rate limit is keyed by it, not by the message (which holds the client's
    // text, a new key for each request).
    const char* kind = "invalid request";
    auto checked = [&]() -> Result<wire::RebuildRequest> {
      auto r = QR_TRY(wire::request_from_wire(message));
      kind = "repository not built here";
      QR_RETURN_IF_ERROR(check_repository(config.repositories, r.repo));
      kind = "invalid image name or tag";
      if (!r.image_name.empty()) QR_RETURN_IF_ERROR(builder::check_image_name(r.image_name, "image_name"));
      if (!r.image_tag.empty()) QR_RETURN_IF_ERROR(builder::check_image_tag(r.image_tag, "image_tag"));
      return r;
    }();
    if (!checked.ok()) {
      const Status& s = checked.status();
      pb::JobStatus js;
      js.set_request_id(message.request_id().substr(0, wire::kMaxRequestFieldBytes));
      js.set_node_id(config.node_id);
      js.set_state(pb::JobStatus::REJECTED);
      js.set_message(s.message());
      {
        std::lock_guard<std::mutex> lock(mu);
        ++counts.rejected;
      }
      log.warn("request_rejected", {{"request_id", js.request_id()}, {"reason", kind}, {"detail", s.message()}});
      return reply(route, MessageType::kJobStatus, js);
    }
    const wire::RebuildRequest& req = *checked;
    pb::JobStatus known = status_of(req.request_id);
    if (known.state() != pb::JobStatus::UNKNOWN) return reply(route, MessageType::kJobStatus, known);
    pb::JobStatus js;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (queue.size() >= config.max_queue) {
        ++counts.rejected;
        js.set_request_id(req.request_id);
        js.set_node_id(config.node_id);
        js.set_state(pb::JobStatus::REJECTED);
        js.set_message("queue full (" + std::to_string(queue.size()) + " pending)");
        js.set_queue_depth(static_cast<uint32_t>(queue.size()));
      } else {
        ++counts.accepted;
        queue.push_back(req);
        set_state(req.request_id, pb::JobStatus::QUEUED, "");
        js = jobs[req.request_id];
        js.set_queue_depth(static_cast<uint32_t>(queue.size()));
        cv.notify_one();
      }
    }
    // A full queue is a refusal a client can provoke once per request: a warning, rate-limited like the others.
    if (js.state() == pb::JobStatus::QUEUED) {
      log.info("request_queued", {{"request_id", req.request_id}, {"queue_depth", js.queue_depth()}});
    } else {
      log.warn("request_rejected", {{"request_id", req.request_id},
                                    {"reason", "queue full"},
                                    {"queue_depth", js.queue_depth()},
                                    {"detail", js.message()}});
    }
    reply(route, MessageType::kJobStatus, js);
  }

  void on_history_request(const wire::Frames& route, const pb::HistoryRequest& req) {
    size_t count =
        req.max_count() == 0 ? config.history_batch : std::min<size_t>(req.max_count(), config.history_batch);
    pb::HistoryResponse resp;
    resp.set_node_id(config.node_id);
    resp.set_incarnation(incarnation.id);
    auto rows = store->since(req.since_sequence(), count);
    auto last = store->last_sequence();
    auto lineage = store->lineage(kLineageSent);
    if (!rows.ok() || !last.ok() || !lineage.ok()) {
      Status bad = !rows.ok() ? rows.status() : !last.ok() ? last.status() : lineage.status();
      log.error("history_failed", {{"error", bad.to_string()}});
      resp.set_last_sequence(0);
      return reply(route, MessageType::kHistoryResponse, resp);
    }
    // Stay under the receiver's history limit: stop early and say "more".
    size_t budget = config.limits.max_history_bytes - 4096;
    size_t used = 0;
    for (const auto& row : *rows) {
      size_t size = row.envelope.size() + row.request_id.size() + config.node_id.size() + 64;
      if (used + size > budget && resp.attestations_size() > 0) break;
      used += size;
      auto* m = resp.add_attestations();
      m->set_node_id(config.node_id);
      m->set_sequence(row.sequence);
      m->set_envelope(row.envelope);
      m->set_request_id(row.request_id);
      m->set_incarnation(incarnation.id);
    }
    for (const auto& inc : *lineage) {
      auto* x = resp.add_lineage();
      x->set_id(inc.id);
      x->set_first_sequence(inc.first_sequence);
    }
    uint64_t sent_up_to =
        resp.attestations_size() ? resp.attestations(resp.attestations_size() - 1).sequence() : req.since_sequence();
    resp.set_last_sequence(*last);
    resp.set_more(sent_up_to < *last);
    {
      std::lock_guard<std::mutex> lock(mu);
      counts.history_served += static_cast<uint64_t>(resp.attestations_size());
    }
    log.debug("history_served", {{"since", req.since_sequence()}, {"count", resp.attestations_size()}});
    reply(route, MessageType::kHistoryResponse, resp);
  }

  void on_control(wire::Frames frames) {
    // DEALER peers: [identity, body]; REQ peers: [identity, "", body].
    if (frames.size() < 2 || frames.size() > 3 || (frames.size() == 3 && !frames[1].empty())) {
      return drop(wire::DropReason::kGarbage, std::to_string(frames.size()) + " frames on control socket");
    }
    std::string body = std::move(frames.back());
    frames.pop_back();
    wire::DropReason why{};
    auto view = wire::decode_frame(body, config.limits, &why);
    if (!view.ok()) return drop(why, view.status().message());
    switch (view->type) {
      case MessageType::kBuildRequest: {
        pb::BuildRequest req;
        if (!req.ParseFromArray(view->body.data(), static_cast<int>(view->body.size()))) {
          return drop(wire::DropReason::kMalformed, "BuildRequest does not parse");
        }
        return on_build_request(frames, req);
      }
      case MessageType::kJobStatusRequest: {
        pb::JobStatusRequest req;
        if (!req.ParseFromArray(view->body.data(), static_cast<int>(view->body.size()))) {
          return drop(wire::DropReason::kMalformed, "JobStatusRequest does not parse");
        }
        return reply(frames, MessageType::kJobStatus, status_of(req.request_id()));
      }
      case MessageType::kHistoryRequest: {
        pb::HistoryRequest req;
        if (!req.ParseFromArray(view->body.data(), static_cast<int>(view->body.size()))) {
          return drop(wire::DropReason::kMalformed, "HistoryRequest does not parse");
        }
        return on_history_request(frames, req);
      }
      default:
        return drop(wire::DropReason::kUnexpectedType,
                    std::string(wire::message_type_name(view->type)) + " on control socket");
    }
  }

  Status bind() {
    auto security = wire::make_server_security(config.transport);
    if (!security.ok()) return security.status();
    ctx = QR_TRY(wire::Context::create());
    // A refused CURVE client is logged when it happens, with its key, so an operator can tell "not in
    // allowed_clients" from "wrong server key" (that client fails before ZAP: handshake_failed, below).
    ctx->on_zap_denied([this](const wire::Context::ZapDenial& d) {
      log.warn("zap_denied", {{"client_key", d.client_key.empty() ? "(none)" : d.client_key},
                              {"address", d.address},
                              {"mechanism", d.mechanism},
                              {"reason", "client key not in allowed_clients"}});
    });
    wire::SocketOptions opts;
    opts.max_message_bytes = static_cast<int64_t>(config.limits.largest()) * 2;
    pub = std::make_unique<wire::Socket>(QR_TRY(wire::Socket::server(*ctx, wire::SocketType::kPub, *security, opts)));
    wire::SocketOptions answers = opts;
    answers.send_hwm = kAnswersQueuedPerPeer;
    control = std::make_unique<wire::Socket>(
        QR_TRY(wire::Socket::server(*ctx, wire::SocketType::kRouter, *security, answers)));
    pub_endpoint = QR_TRY(pub->bind(config.publish_endpoint));
    control_endpoint = QR_TRY(control->bind(config.control_endpoint));
    // A handshake libzmq refuses before ZAP (NULL or PLAIN at a CURVE socket, a key without its secret) is
    // logged too, rate-limited per socket and kind like every warning.
    auto failed = [this](const wire::Context::HandshakeFailure& f) {
      log.warn("handshake_failed",
               {{"socket", f.socket}, {"address", f.address}, {"reason", f.reason}, {"detail", f.detail}});
    };
    QR_RETURN_IF_ERROR(ctx->watch_failed_handshakes(*pub, "publish", failed));
    QR_RETURN_IF_ERROR(ctx->watch_failed_handshakes(*control, "control", failed));
    if (!config.endpoints_file.empty()) {
      nlohmann::json j = {{"node_id", config.node_id}, {"publish", pub_endpoint}, {"control", control_endpoint}};
      QR_RETURN_IF_ERROR(write_file_atomic(config.endpoints_file, j.dump() + "\n"));
    }
    return Status();
  }

  Status serve(const std::atomic<bool>& stop) {
    std::thread work([this] { worker(); });
    auto next_heartbeat = Clock::now();
    Status result;
    while (!stop) {
      auto got = control->recv(10);
      if (!got.ok()) {
        if (got.status().is_bad_input()) {
          drop(wire::DropReason::kGarbage, got.status().message());
        } else {
          log.error("control_recv_failed", {{"error", got.status().to_string()}});
        }
      } else if (got->has_value()) {
        on_control(std::move(**got));
      }
      publish_outbox();
      if (Clock::now() >= next_heartbeat) {
        heartbeat();
        next_heartbeat = Clock::now() + std::chrono::milliseconds(config.heartbeat_interval_ms);
      }
    }
    log.info("stopping", {});
    cancel = true;
    {
      std::lock_guard<std::mutex> lock(mu);
      worker_stop = true;
    }
    cv.notify_all();
    work.join();
    publish_outbox();
    return result;
  }
};

NodeDaemon::NodeDaemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NodeDaemon::~NodeDaemon() {
  if (!impl_) return;
  // Sockets before their context.
  impl_->pub.reset();
  impl_->control.reset();
  impl_->ctx.reset();
}

Result<std::unique_ptr<NodeDaemon>> NodeDaemon::open(NodeConfig config, std::unique_ptr<Rebuilder> rebuilder,
                                                     wire::EventLog& log, Options options) {
  auto impl = std::unique_ptr<Impl>(new Impl{
      .config = std::move(config), .rebuilder = std::move(rebuilder), .log = log, .options = std::move(options)});
  std::error_code ec;
  std::filesystem::create_directories(impl->config.data_dir, ec);
  if (ec) return Status::io(impl->config.data_dir.string() + ": " + ec.message());
  impl->store = QR_TRY(NodeStore::open(impl->config.data_dir / "node.db"));
  impl->last_stored = QR_TRY(impl->store->last_sequence());
  // A new incarnation each run: if the store was restored or wiped while the node was down, followers see
  // the change and go back to where the lineage forked instead of taking reused numbers for replays.
  impl->incarnation = QR_TRY(impl->store->begin_incarnation());
  QR_RETURN_IF_ERROR(impl->bind());
  log.info("node_started",
           {{"node_id", impl->config.node_id},
            {"publish", impl->pub_endpoint},
            {"control", impl->control_endpoint},
            {"last_sequence", impl->last_stored},
            {"incarnation", impl->incarnation.id},
            {"transport", impl->config.transport.insecure ? "insecure" : "curve"},
            {"repositories", impl->config.repositories.empty() ? nlohmann::json("any (build.repositories is empty)")
                                                               : nlohmann::json(impl->config.repositories)}});
  return std::unique_ptr<NodeDaemon>(new NodeDaemon(std::move(impl)));
}

const std::string& NodeDaemon::publish_endpoint() const { return impl_->pub_endpoint; }
const std::string& NodeDaemon::control_endpoint() const { return impl_->control_endpoint; }

Status NodeDaemon::run(const std::atomic<bool>& stop) {
  Status s = impl_->serve(stop);
  auto c = counters();
  impl_->log.info("node_stopped", {{"accepted", c.accepted},
                                   {"rejected", c.rejected},
                                   {"succeeded", c.succeeded},
                                   {"failed", c.failed},
                                   {"published", c.published},
                                   {"dropped", c.dropped},
                                   {"dropped_by_reason", impl_->drops.snapshot()},
                                   {"zap_denied", impl_->ctx->zap_denied()}});
  return s;
}

NodeCounters NodeDaemon::counters() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->counts;
}

}  // namespace quorate::node
