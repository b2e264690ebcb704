// Follower: per-node SUB + DEALER, cursors, gap detection and history catch-up.
#include "quorate/wire/follower.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>

namespace quorate::wire {
namespace {
using SteadyClock = std::chrono::steady_clock;
constexpr int kLiveQueue = 512;  // live messages queued per followed node (ZMQ_RCVHWM of its SUB socket)
// History answers queued per node (ZMQ_RCVHWM of its DEALER): one request is outstanding at a time, so a node
// pushing answers nobody asked for is held back by TCP instead of filling memory (60 unasked answers of 28 MB
// held 5.9 GB).
constexpr int kHistoryQueue = 4;
// What a history request asks for when Options::history_batch is 0: a node's default batch (node config
// queue.history_batch). An answer holding more than was asked for is refused.
constexpr uint32_t kDefaultHistoryBatch = 256;
// Live attestations kept ahead of the cursor per node, besides Options::live_buffer_bytes.
constexpr size_t kMaxKeptAhead = 4096;
}  // namespace

struct Follower::Impl {
  struct Peer {
    FollowedNode node;
    std::unique_ptr<Socket> sub;
    std::unique_ptr<Socket> dealer;
    std::unique_ptr<ConnectionMonitor> monitor;  // of the dealer; declared after it, so destroyed before it
    bool up = false;                             // a handshake with the node succeeded since the last disconnect
    bool handshake_logged = false;               // its failure was logged since the last success
    uint64_t cursor = 0;
    uint64_t announced = 0;
    bool history_pending = false;
    SteadyClock::time_point history_sent{};
    uint32_t fruitless = 0;          // history answers in a row that delivered nothing while claiming more
    bool history_scheduled = false;  // backing off: the next request goes out at history_due
    SteadyClock::time_point history_due{};
    bool implausible_logged = false;
    SteadyClock::time_point quiet_until{};             // hints (heartbeats, gaps) ask for history only after this
    uint64_t incarnation = 0;                          // of the node's history the cursor counts in; 0: not known yet
    uint32_t switches = 0;                             // incarnation switches since the last delivery
    std::deque<SteadyClock::time_point> rewinds;       // incarnation changes that moved the cursor back, recent
    std::map<uint64_t, pb::AttestationMessage> ahead;  // live attestations past cursor + 1, by sequence
    size_t ahead_bytes = 0;
    SteadyClock::time_point behind_since{};  // since when the cursor is below what the node announced
    SteadyClock::time_point next_lag_check{};
    uint64_t last_lag = 0;
    uint32_t unanswered = 0;  // history requests in a row that timed out without any answer
  };
  std::vector<Peer> peers;
  size_t next_first = 0;  // the peer read first by the next poll (round-robin)
  Options options;
  EventLog* log = nullptr;
  Context* ctx = nullptr;
  TransportConfig transport;
  SocketOptions socket_options;

  // (Re)creates the peer's SUB and DEALER and connects them. Used again when history requests go unanswered:
  // libzmq 4.3.4 does not always reconnect after a connection attempt made while the node was unreachable (a
  // verifier started during a partition never connected again after it healed; issue 17), and new sockets do.
  Status connect_peer(Peer& p) {
    const FollowedNode& n = p.node;
    auto security = make_client_security(transport, n.server_key);
    if (!security.ok()) return security.status().with_context("node " + n.node_id);
    // Live messages are a shortcut, history is the record (a gap is fetched from history): a node's live queue
    // holds at most kLiveQueue messages, not the socket default of 100000 (at 50 nodes publishing a burst that
    // held about 300 MB of envelopes the loop had not read yet; issue 17).
    SocketOptions live = socket_options;
    live.recv_hwm = kLiveQueue;
    SocketOptions history = socket_options;
    history.recv_hwm = kHistoryQueue;
    auto sub = std::make_unique<Socket>(QR_TRY(Socket::client(*ctx, SocketType::kSub, *security, live)));
    auto dealer = std::make_unique<Socket>(QR_TRY(Socket::client(*ctx, SocketType::kDealer, *security, history)));
    QR_RETURN_IF_ERROR(sub->subscribe(attestation_topic(n.node_id)));
    QR_RETURN_IF_ERROR(sub->subscribe(heartbeat_topic(n.node_id)));
    QR_RETURN_IF_ERROR(sub->connect(n.publish_endpoint).with_context("node " + n.node_id));
    auto monitor = QR_TRY(ConnectionMonitor::watch(*ctx, *dealer));
    QR_RETURN_IF_ERROR(dealer->connect(n.control_endpoint).with_context("node " + n.node_id));
    p.monitor.reset();
    p.sub = std::move(sub);
    p.dealer = std::move(dealer);
    p.monitor = std::move(monitor);
    p.up = false;
    return Status();
  }

  // A connection to the node's control endpoint whose handshake failed (or that closed before one succeeded):
  // under CURVE, the node's key configured here is wrong or the node refused ours. Nothing is followed from the
  // node then; said once at warn, naming the node, until a handshake succeeds.
  void watch_handshakes(Peer& p) {
    if (!p.monitor) return;
    for (ConnectionMonitor::Event e : p.monitor->take()) {
      if (e == ConnectionMonitor::Event::kUp) {
        p.up = true;
        p.handshake_logged = false;
        continue;
      }
      const bool failed = e == ConnectionMonitor::Event::kHandshakeFailed || !p.up;
      p.up = false;
      if (!failed || p.handshake_logged) continue;
      p.handshake_logged = true;
      ++counts.handshake_failures;
      const bool curve = !transport.insecure;
      log->warn("node_handshake_failed",
                {{"node_id", p.node.node_id},
                 {"endpoint", p.node.control_endpoint},
                 {"reason", curve ? "the CURVE handshake with the node failed: the node's curve_public_key configured "
                                    "here is wrong, or the node does not list this verifier's key in its "
                                    "allowed_clients; nothing is followed from this node until it succeeds"
                                  : "the handshake with the node failed (does it also run with insecure = true?); "
                                    "nothing is followed from this node until it succeeds"}});
    }
  }
  DropCounters drops;
  Counters counts;

  void drop(DropReason why, const std::string& node, const std::string& detail) {
    drops.add(why);
    log->warn("frame_dropped", {{"reason", drop_reason_name(why)}, {"node_id", node}, {"detail", detail}});
  }

  void request_history(Peer& p) {
    HistoryRequest req;
    req.set_since_sequence(p.cursor);
    req.set_max_count(asked());
    Status s = p.dealer->send({encode_frame(MessageType::kHistoryRequest, req)});
    p.history_pending = true;  // even when the send failed: the timeout resends
    p.history_sent = SteadyClock::now();
    ++counts.history_requests;
    if (!s.ok()) log->warn("history_request_failed", {{"node_id", p.node.node_id}, {"error", s.to_string()}});
  }
  using HistoryRequest = pb::HistoryRequest;
  uint32_t asked() const { return options.history_batch != 0 ? options.history_batch : kDefaultHistoryBatch; }

  // An answer gave nothing new: wait before believing the node again, twice as long each time in a row
  // (capped). When the node claimed more, the request goes out by itself at the end of the wait; otherwise
  // the next heartbeat or gap after it asks. So a node announcing 2^64-1 and answering with nothing, or
  // contradicting its own heartbeats, cannot make us spin.
  void back_off(Peer& p, uint64_t claimed, bool ask_again) {
    ++p.fruitless;
    ++counts.history_fruitless;
    int64_t delay = options.history_backoff_initial_ms;
    for (uint32_t i = 1; i < p.fruitless && delay < options.history_backoff_max_ms; ++i) delay *= 2;
    delay = std::min<int64_t>(delay, options.history_backoff_max_ms);
    p.quiet_until = SteadyClock::now() + std::chrono::milliseconds(delay);
    p.history_scheduled = ask_again;
    p.history_due = p.quiet_until;
    if (ask_again || p.fruitless > 1) {
      log->warn("history_no_progress", {{"node_id", p.node.node_id},
                                        {"cursor", p.cursor},
                                        {"claimed", claimed},
                                        {"answers_without_progress", p.fruitless},
                                        {"retry_in_ms", delay}});
    }
  }

  // Something says the node is ahead of us (a heartbeat, a gap, another incarnation): ask for history,
  // unless a request is in flight or we are backing off.
  void hint(Peer& p) {
    if (p.history_pending || p.history_scheduled) return;
    if (SteadyClock::now() < p.quiet_until) {
      // Not now, but not forgotten: kept live attestations wait on it, and nothing else may ask again.
      if (!p.ahead.empty()) {
        p.history_scheduled = true;
        p.history_due = p.quiet_until;
      }
      return;
    }
    ++counts.gaps;
    request_history(p);
  }

  // Records what the node says its newest sequence is, believing at most max_believed_gap past the cursor.
  void announce(Peer& p, uint64_t claimed) {
    uint64_t cap = p.cursor + std::min(options.max_believed_gap, UINT64_MAX - p.cursor);
    if (claimed > cap && !p.implausible_logged) {
      p.implausible_logged = true;
      log->warn("implausible_sequence",
                {{"node_id", p.node.node_id}, {"cursor", p.cursor}, {"claimed", claimed}, {"believed", cap}});
    }
    p.announced = std::min(claimed, cap);
  }

  void deliver(Peer& p, pb::AttestationMessage&& m, bool live, std::vector<pb::AttestationMessage>& out) {
    p.cursor = m.sequence();
    p.announced = std::max(p.announced, m.sequence());
    p.fruitless = 0;
    p.switches = 0;
    p.implausible_logged = false;
    ++(live ? counts.live : counts.from_history);
    out.push_back(std::move(m));
  }

  // Keeps a live attestation that cannot be delivered yet (cursor + 1 missing, or history in flight).
  // Counted whole: an empty envelope beside a 1 MB request_id counted 0 bytes, and 3,000 of them held 3 GB.
  void keep_ahead(Peer& p, pb::AttestationMessage&& m) {
    if (p.ahead.count(m.sequence())) return;
    const size_t bytes = m.ByteSizeLong();
    if (p.ahead_bytes + bytes > options.live_buffer_bytes || p.ahead.size() >= kMaxKeptAhead) return;  // history
    if (m.sequence() - p.cursor > options.max_believed_gap) return;
    p.ahead_bytes += bytes;
    p.ahead.emplace(m.sequence(), std::move(m));
  }

  // Delivers kept attestations that follow the cursor without a hole; forgets those at or below it.
  void drain_ahead(Peer& p, std::vector<pb::AttestationMessage>& out) {
    while (!p.ahead.empty() && p.ahead.begin()->first <= p.cursor + 1) {
      auto node = p.ahead.extract(p.ahead.begin());
      p.ahead_bytes -= node.mapped().ByteSizeLong();
      if (node.key() == p.cursor + 1) {
        ++counts.buffered;
        deliver(p, std::move(node.mapped()), true, out);
      }
    }
  }

  void forget_ahead(Peer& p) {
    p.ahead.clear();
    p.ahead_bytes = 0;
  }

  // Logs a node that stays behind, or falls further behind, at warn with its lag.
  void check_lag(Peer& p, SteadyClock::time_point now) {
    const uint64_t lag = p.announced > p.cursor ? p.announced - p.cursor : 0;
    if (lag == 0 && !p.history_pending)
      p.behind_since = {};
    else if (p.behind_since == SteadyClock::time_point{})
      p.behind_since = now;
    if (now < p.next_lag_check) return;
    p.next_lag_check = now + std::chrono::milliseconds(options.lag_check_interval_ms);
    const auto behind_ms = p.behind_since == SteadyClock::time_point{}
                               ? int64_t{0}
                               : std::chrono::duration_cast<std::chrono::milliseconds>(now - p.behind_since).count();
    const bool grew = p.last_lag > 0 && lag > p.last_lag;
    const bool long_behind = lag > 0 && behind_ms > options.lag_warn_after_ms;
    if (grew || long_behind) {
      ++counts.lag_warnings;
      log->warn("node_lagging", {{"node_id", p.node.node_id},
                                 {"lag", lag},
                                 {"previous_lag", p.last_lag},
                                 {"cursor", p.cursor},
                                 {"announced", p.announced},
                                 {"behind_ms", behind_ms},
                                 {"history_pending", p.history_pending},
                                 {"kept_ahead", p.ahead.size()}});
    }
    p.last_lag = lag;
  }

  void on_live(Peer& p, Frames&& frames, std::vector<pb::AttestationMessage>& out) {
    if (frames.size() != 2)
      return drop(DropReason::kGarbage, p.node.node_id, std::to_string(frames.size()) + " frames");
    const std::string& topic = frames[0];
    if (topic.size() > options.limits.max_topic_bytes) return drop(DropReason::kOversized, p.node.node_id, "topic");
    DropReason why{};
    auto view = decode_frame(frames[1], options.limits, &why);
    if (!view.ok()) return drop(why, p.node.node_id, view.status().message());
    if (view->type == MessageType::kHeartbeat) {
      if (topic != heartbeat_topic(p.node.node_id)) return;  // another node sharing our prefix
      pb::Heartbeat hb;
      if (!hb.ParseFromArray(view->body.data(), static_cast<int>(view->body.size())) ||
          hb.node_id() != p.node.node_id) {
        return drop(DropReason::kMalformed, p.node.node_id, "heartbeat");
      }
      if (hb.incarnation() != 0 && hb.incarnation() != p.incarnation) return hint(p);  // history says where
      announce(p, hb.last_sequence());
      if (hb.last_sequence() < p.cursor) {
        log->warn("node_sequence_regressed",
                  {{"node_id", p.node.node_id}, {"announced", hb.last_sequence()}, {"cursor", p.cursor}});
      } else if (hb.last_sequence() > p.cursor) {
        hint(p);
      }
      return;
    }
    if (view->type != MessageType::kAttestation) {
      return drop(DropReason::kUnexpectedType, p.node.node_id, message_type_name(view->type));
    }
    if (topic != attestation_topic(p.node.node_id)) return;  // another node sharing our prefix
    pb::AttestationMessage m;
    if (!m.ParseFromArray(view->body.data(), static_cast<int>(view->body.size()))) {
      return drop(DropReason::kMalformed, p.node.node_id, "AttestationMessage does not parse");
    }
    if (m.node_id() != p.node.node_id || m.sequence() == 0) {
      return drop(DropReason::kBadTopic, p.node.node_id,
                  "node id '" + m.node_id() + "' or sequence 0 on this node's topic");
    }
    // Another incarnation's numbers cannot be compared with the cursor: history sorts it out.
    if (m.incarnation() != 0 && m.incarnation() != p.incarnation) return hint(p);
    announce(p, std::max(p.announced, m.sequence()));
    if (m.sequence() <= p.cursor) {
      ++counts.duplicates;
      return;
    }
    if (m.sequence() == p.cursor + 1 && p.ahead.empty()) return deliver(p, std::move(m), true, out);
    // A gap, or history in flight: kept, and delivered as soon as what comes before it is (from history or
    // from here). History only has to fill the hole before the first kept one.
    const uint64_t received = m.sequence();
    const bool new_hole = received != p.cursor + 1 && !p.ahead.count(received - 1);
    keep_ahead(p, std::move(m));
    drain_ahead(p, out);
    if (p.cursor >= received) return;
    if (!p.history_pending && !p.history_scheduled && SteadyClock::now() >= p.quiet_until) {
      log->info("sequence_gap", {{"node_id", p.node.node_id}, {"cursor", p.cursor}, {"received", received}});
      return hint(p);  // counts the gap
    }
    if (new_hole) ++counts.gaps;  // seen; the request in flight (or scheduled) fills it
    hint(p);
  }

  void on_history(Peer& p, Frames&& frames, std::vector<pb::AttestationMessage>& out) {
    // One request is outstanding at a time: an answer when none is (a node pushing answers, or a late second
    // answer to a request sent again) is not read.
    if (!p.history_pending) return drop(DropReason::kGarbage, p.node.node_id, "a history answer nobody asked for");
    p.unanswered = 0;
    if (frames.size() != 1) return drop(DropReason::kGarbage, p.node.node_id, "history reply frames");
    pb::HistoryResponse resp;
    DropReason why{};
    Status s = decode_message(frames[0], MessageType::kHistoryResponse, options.limits, resp, &why);
    if (!s.ok()) {
      drop(why, p.node.node_id, s.message());
      p.history_pending = false;
      return back_off(p, p.announced, true);  // asked again, later and later while the answers stay broken
    }
    if (resp.node_id() != p.node.node_id) {
      return drop(DropReason::kBadTopic, p.node.node_id, "history from '" + resp.node_id() + "'");
    }
    // More than asked for: one 28 MB answer of tiny entries became two million attestations in one batch.
    if (static_cast<uint64_t>(resp.attestations_size()) > asked()) {
      drop(DropReason::kGarbage, p.node.node_id,
           "a history answer of " + std::to_string(resp.attestations_size()) + " attestations for a request of " +
               std::to_string(asked()));
      p.history_pending = false;
      return back_off(p, p.announced, true);
    }
    bool switched = false;
    if (resp.incarnation() != 0 && resp.incarnation() != p.incarnation) {
      if (!follow_incarnation(p, resp)) return;
      switched = true;
    }
    uint64_t before = p.cursor;
    for (auto& m : *resp.mutable_attestations()) {
      if (m.node_id() != p.node.node_id || m.sequence() <= p.cursor) {
        ++counts.duplicates;
        continue;
      }
      if (m.sequence() != p.cursor + 1) {
        // Sequences have no gaps: this is an answer to an older request (the cursor moved back since) or a
        // broken node. Nothing past the hole is delivered; the rest is asked for again.
        log->warn("history_hole", {{"node_id", p.node.node_id}, {"cursor", p.cursor}, {"next", m.sequence()}});
        break;
      }
      deliver(p, std::move(m), false, out);
    }
    announce(p, std::max(p.announced, resp.last_sequence()));
    p.history_pending = false;
    bool more = resp.more() || p.cursor < resp.last_sequence();
    drain_ahead(p, out);  // what arrived live while history was fetched follows on now
    if (p.cursor >= resp.last_sequence()) more = false;
    if (!p.ahead.empty()) more = true;  // a hole before the first kept one remains
    // Progress: something delivered, or a switch of incarnation (but not the third in a row without delivery).
    if (p.cursor > before || (switched && p.switches <= 2)) {
      if (more) request_history(p);
      return;
    }
    // Nothing new, but nothing missing either (live delivery got there first): not a fruitless answer.
    if (!more && p.cursor >= resp.last_sequence()) {
      p.fruitless = 0;
      return;
    }
    back_off(p, resp.last_sequence(), more);
  }

  // Counts a rewind of the cursor by a new incarnation. Beyond the allowance within the window, the next history
  // request is scheduled after a delay doubling with each further rewind, logged at warn; returns true then.
  bool flapping(Peer& p, uint64_t claimed) {
    const auto now = SteadyClock::now();
    const auto window = std::chrono::milliseconds(options.incarnation_window_ms);
    p.rewinds.push_back(now);
    while (!p.rewinds.empty() && now - p.rewinds.front() > window) p.rewinds.pop_front();
    while (p.rewinds.size() > 64) p.rewinds.pop_front();  // the count in the log saturates; the delay is capped
    if (p.rewinds.size() <= options.incarnation_rewinds_allowed) return false;
    int64_t delay = options.incarnation_backoff_initial_ms;
    for (size_t i = options.incarnation_rewinds_allowed + 1; i < p.rewinds.size(); ++i) {
      if (delay >= options.incarnation_backoff_max_ms) break;
      delay *= 2;
    }
    delay = std::min<int64_t>(delay, options.incarnation_backoff_max_ms);
    ++counts.incarnation_rewinds_backed_off;
    p.quiet_until = now + std::chrono::milliseconds(delay);
    p.history_scheduled = true;
    p.history_due = p.quiet_until;
    log->warn("node_incarnation_flapping", {{"node_id", p.node.node_id},
                                            {"rewinds", p.rewinds.size()},
                                            {"window_ms", options.incarnation_window_ms},
                                            {"cursor", p.cursor},
                                            {"claimed", claimed},
                                            {"retry_in_ms", delay}});
    return true;
  }

  // The answer comes from another incarnation of the node than the cursor's. Adopts it; when the cursor's
  // incarnation is in the lineage and a later one began at or below the cursor (a store restored from a
  // backup), or is not in it (a wiped store), moves the cursor back to where the histories part, logs at warn
  // and asks again. Returns whether this answer may still be used (the cursor did not move back).
  bool follow_incarnation(Peer& p, const pb::HistoryResponse& resp) {
    uint64_t old = p.incarnation;
    p.incarnation = resp.incarnation();
    forget_ahead(p);  // numbered in another incarnation, or not comparable: history carries them again
    if (old == 0) {   // first contact, or a cursor saved before incarnations existed: nothing to compare
      log->info("node_incarnation",
                {{"node_id", p.node.node_id}, {"incarnation", resp.incarnation()}, {"cursor", p.cursor}});
      return true;
    }
    ++counts.incarnation_changes;
    ++p.switches;
    uint64_t resume = 0;
    const auto& lineage = resp.lineage();
    for (int i = 0; i < lineage.size(); ++i) {
      if (lineage[i].id() != old) continue;
      resume = p.cursor;
      if (i + 1 < lineage.size() && lineage[i + 1].first_sequence() > 0) {
        resume = std::min(p.cursor, lineage[i + 1].first_sequence() - 1);
      }
    }
    log->warn("node_incarnation_changed", {{"node_id", p.node.node_id},
                                           {"old_incarnation", old},
                                           {"new_incarnation", resp.incarnation()},
                                           {"cursor", p.cursor},
                                           {"resume_after", resume}});
    if (resume == p.cursor) return true;
    p.cursor = resume;
    p.announced = std::min(p.announced, resume);
    p.history_pending = false;
    if (flapping(p, resp.last_sequence())) return false;
    // A node switching incarnations on every answer is backed off like one that answers with nothing.
    if (p.switches > 2) {
      back_off(p, resp.last_sequence(), true);
    } else {
      request_history(p);
    }
    return false;
  }
};

Follower::Follower(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Follower::~Follower() = default;

Result<std::unique_ptr<Follower>> Follower::open(Context& ctx, const std::vector<FollowedNode>& nodes,
                                                 const TransportConfig& transport,
                                                 const std::map<std::string, uint64_t>& cursors, Options options,
                                                 EventLog& log) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->log = &log;
  impl->ctx = &ctx;
  impl->transport = transport;
  impl->socket_options.max_message_bytes = static_cast<int64_t>(options.limits.largest()) * 2;
  // A history request to a node that is not connected fails at once instead of holding the loop (and every
  // other node and query) for the default 2 s: the request timeout sends it again.
  impl->socket_options.send_timeout_ms = 0;
  for (const auto& n : nodes) {
    Impl::Peer p;
    p.node = n;
    QR_RETURN_IF_ERROR(impl->connect_peer(p));
    if (auto it = cursors.find(n.node_id); it != cursors.end()) p.cursor = it->second;
    if (auto it = options.incarnations.find(n.node_id); it != options.incarnations.end()) p.incarnation = it->second;
    impl->peers.push_back(std::move(p));
  }
  for (auto& p : impl->peers) impl->request_history(p);
  return std::unique_ptr<Follower>(new Follower(std::move(impl)));
}

Result<std::vector<pb::AttestationMessage>> Follower::poll(int timeout_ms) { return poll(timeout_ms, SIZE_MAX); }

Result<std::vector<pb::AttestationMessage>> Follower::poll(int timeout_ms, size_t max_messages) {
  std::vector<Socket*> socks;
  for (auto& p : impl_->peers) {
    socks.push_back(p.sub.get());
    socks.push_back(p.dealer.get());
  }
  auto ready = QR_TRY(poll_readable(socks, timeout_ms));
  std::vector<pb::AttestationMessage> out;
  const size_t count = impl_->peers.size();
  const size_t first = count == 0 ? 0 : impl_->next_first % count;
  impl_->next_first = first + 1;
  const auto now = SteadyClock::now();
  for (size_t k = 0; k < count; ++k) {
    const size_t i = (first + k) % count;
    auto& p = impl_->peers[i];
    // Bounded drains so one chatty node cannot starve the others; the cap is checked per message.
    for (int n = 0; ready[2 * i] && n < 1000 && out.size() < max_messages; ++n) {
      auto got = p.sub->recv(0);
      if (!got.ok()) {
        if (!got.status().is_bad_input()) return got.status();
        impl_->drop(DropReason::kGarbage, p.node.node_id, got.status().message());
        continue;
      }
      if (!got->has_value()) break;
      impl_->on_live(p, std::move(**got), out);
    }
    for (int n = 0; ready[2 * i + 1] && n < 100 && out.size() < max_messages; ++n) {
      auto got = p.dealer->recv(0);
      if (!got.ok()) {
        if (!got.status().is_bad_input()) return got.status();
        impl_->drop(DropReason::kGarbage, p.node.node_id, got.status().message());
        continue;
      }
      if (!got->has_value()) break;
      impl_->on_history(p, std::move(**got), out);
    }
    if (p.history_scheduled && SteadyClock::now() >= p.history_due) {
      p.history_scheduled = false;
      impl_->request_history(p);
    }
    // An answer waiting unread (this poll's cap was reached before it) is not a request left unanswered: asking
    // again there made each slow loop turn fetch every lagging node's history batch once more (issue 17: a
    // faulted 50-node burst received 440,000 duplicates through history for 250,000 attestations, and held
    // ~150 MB of unread answers).
    if (p.history_pending && !ready[2 * i + 1] &&
        SteadyClock::now() - p.history_sent > std::chrono::milliseconds(impl_->options.history_timeout_ms)) {
      impl_->log->info("history_retry", {{"node_id", p.node.node_id}, {"cursor", p.cursor}});
      if (++p.unanswered >= impl_->options.reconnect_after_unanswered &&
          impl_->options.reconnect_after_unanswered > 0) {
        p.unanswered = 0;
        Status s = impl_->connect_peer(p);
        impl_->log->warn("node_reconnect", {{"node_id", p.node.node_id},
                                            {"cursor", p.cursor},
                                            {"reason", "history requests unanswered"},
                                            {"error", s.ok() ? "" : s.to_string()}});
      }
      impl_->request_history(p);
    }
    impl_->watch_handshakes(p);
    impl_->check_lag(p, now);
  }
  return out;
}

uint64_t Follower::cursor(const std::string& node_id) const {
  for (const auto& p : impl_->peers) {
    if (p.node.node_id == node_id) return p.cursor;
  }
  return 0;
}

uint64_t Follower::incarnation(const std::string& node_id) const {
  for (const auto& p : impl_->peers) {
    if (p.node.node_id == node_id) return p.incarnation;
  }
  return 0;
}

const DropCounters& Follower::drops() const { return impl_->drops; }
Follower::Counters Follower::counters() const { return impl_->counts; }

std::map<std::string, uint64_t> Follower::announced() const {
  std::map<std::string, uint64_t> out;
  for (const auto& p : impl_->peers) out[p.node.node_id] = p.announced;
  return out;
}

}  // namespace quorate::wire
