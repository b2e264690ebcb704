// Follower: per-node SUB + DEALER, cursors, gap detection and history catch-up.
#include "quorate/wire/follower.h"

#include <chrono>

namespace quorate::wire {
namespace {
using SteadyClock = std::chrono::steady_clock;
}

struct Follower::Impl {
  struct Peer {
    FollowedNode node;
    std::unique_ptr<Socket> sub;
    std::unique_ptr<Socket> dealer;
    uint64_t cursor = 0;
    uint64_t announced = 0;
    bool history_pending = false;
    SteadyClock::time_point history_sent{};
  };
  std::vector<Peer> peers;
  Options options;
  EventLog* log = nullptr;
  DropCounters drops;
  Counters counts;

  void drop(DropReason why, const std::string& node, const std::string& detail) {
    drops.add(why);
    log->warn("frame_dropped", {{"reason", drop_reason_name(why)}, {"node_id", node}, {"detail", detail}});
  }

  void request_history(Peer& p) {
    HistoryRequest req;
    req.set_since_sequence(p.cursor);
    req.set_max_count(options.history_batch);
    Status s = p.dealer->send({encode_frame(MessageType::kHistoryRequest, req)});
    p.history_pending = true;  // even when the send failed: the timeout resends
    p.history_sent = SteadyClock::now();
    ++counts.history_requests;
    if (!s.ok()) log->warn("history_request_failed", {{"node_id", p.node.node_id}, {"error", s.to_string()}});
  }
  using HistoryRequest = pb::HistoryRequest;

  void deliver(Peer& p, pb::AttestationMessage&& m, bool live, std::vector<pb::AttestationMessage>& out) {
    p.cursor = m.sequence();
    p.announced = std::max(p.announced, m.sequence());
    ++(live ? counts.live : counts.from_history);
    out.push_back(std::move(m));
  }

  void on_live(Peer& p, Frames&& frames, std::vector<pb::AttestationMessage>& out) {
    if (frames.size() != 2) return drop(DropReason::kGarbage, p.node.node_id, std::to_string(frames.size()) + " frames");
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
      p.announced = hb.last_sequence();
      if (hb.last_sequence() < p.cursor) {
        log->warn("node_sequence_regressed", {{"node_id", p.node.node_id}, {"announced", hb.last_sequence()},
                                              {"cursor", p.cursor}});
      } else if (hb.last_sequence() > p.cursor && !p.history_pending) {
        ++counts.gaps;
        request_history(p);
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
      return drop(DropReason::kBadTopic, p.node.node_id, "node id '" + m.node_id() + "' or sequence 0 on this node's topic");
    }
    p.announced = std::max(p.announced, m.sequence());
    if (m.sequence() <= p.cursor) {
      ++counts.duplicates;
      return;
    }
    if (m.sequence() == p.cursor + 1 && !p.history_pending) return deliver(p, std::move(m), true, out);
    // A gap, or history in flight: history will carry this one too.
    if (!p.history_pending) {
      ++counts.gaps;
      log->info("sequence_gap", {{"node_id", p.node.node_id}, {"cursor", p.cursor}, {"received", m.sequence()}});
      request_history(p);
    }
  }

  void on_history(Peer& p, Frames&& frames, std::vector<pb::AttestationMessage>& out) {
    if (frames.size() != 1) return drop(DropReason::kGarbage, p.node.node_id, "history reply frames");
    pb::HistoryResponse resp;
    DropReason why{};
    Status s = decode_message(frames[0], MessageType::kHistoryResponse, options.limits, resp, &why);
    if (!s.ok()) {
      drop(why, p.node.node_id, s.message());
      p.history_pending = false;  // ask again (below), maybe a smaller batch would not help but a retry might
      return;
    }
    if (resp.node_id() != p.node.node_id) {
      return drop(DropReason::kBadTopic, p.node.node_id, "history from '" + resp.node_id() + "'");
    }
    for (auto& m : *resp.mutable_attestations()) {
      if (m.node_id() != p.node.node_id || m.sequence() <= p.cursor) {
        ++counts.duplicates;
        continue;
      }
      if (m.sequence() != p.cursor + 1) {
        log->warn("history_hole", {{"node_id", p.node.node_id}, {"cursor", p.cursor}, {"next", m.sequence()}});
      }
      deliver(p, std::move(m), false, out);
    }
    p.announced = std::max(p.announced, resp.last_sequence());
    p.history_pending = false;
    if (resp.more() || p.cursor < resp.last_sequence()) request_history(p);
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
  SocketOptions so;
  so.max_message_bytes = static_cast<int64_t>(options.limits.largest()) * 2;
  for (const auto& n : nodes) {
    Impl::Peer p;
    p.node = n;
    auto security = make_client_security(transport, n.server_key);
    if (!security.ok()) return security.status().with_context("node " + n.node_id);
    p.sub = std::make_unique<Socket>(QR_TRY(Socket::client(ctx, SocketType::kSub, *security, so)));
    p.dealer = std::make_unique<Socket>(QR_TRY(Socket::client(ctx, SocketType::kDealer, *security, so)));
    QR_RETURN_IF_ERROR(p.sub->subscribe(attestation_topic(n.node_id)));
    QR_RETURN_IF_ERROR(p.sub->subscribe(heartbeat_topic(n.node_id)));
    QR_RETURN_IF_ERROR(p.sub->connect(n.publish_endpoint).with_context("node " + n.node_id));
    QR_RETURN_IF_ERROR(p.dealer->connect(n.control_endpoint).with_context("node " + n.node_id));
    if (auto it = cursors.find(n.node_id); it != cursors.end()) p.cursor = it->second;
    impl->peers.push_back(std::move(p));
  }
  for (auto& p : impl->peers) impl->request_history(p);
  return std::unique_ptr<Follower>(new Follower(std::move(impl)));
}

Result<std::vector<pb::AttestationMessage>> Follower::poll(int timeout_ms) {
  std::vector<Socket*> socks;
  for (auto& p : impl_->peers) {
    socks.push_back(p.sub.get());
    socks.push_back(p.dealer.get());
  }
  auto ready = QR_TRY(poll_readable(socks, timeout_ms));
  std::vector<pb::AttestationMessage> out;
  for (size_t i = 0; i < impl_->peers.size(); ++i) {
    auto& p = impl_->peers[i];
    // Bounded drains so one chatty node cannot starve the others.
    for (int n = 0; ready[2 * i] && n < 1000; ++n) {
      auto got = p.sub->recv(0);
      if (!got.ok()) {
        if (!got.status().is_bad_input()) return got.status();
        impl_->drop(DropReason::kGarbage, p.node.node_id, got.status().message());
        continue;
      }
      if (!got->has_value()) break;
      impl_->on_live(p, std::move(**got), out);
    }
    for (int n = 0; ready[2 * i + 1] && n < 100; ++n) {
      auto got = p.dealer->recv(0);
      if (!got.ok()) {
        if (!got.status().is_bad_input()) return got.status();
        impl_->drop(DropReason::kGarbage, p.node.node_id, got.status().message());
        continue;
      }
      if (!got->has_value()) break;
      impl_->on_history(p, std::move(**got), out);
    }
    if (p.history_pending &&
        SteadyClock::now() - p.history_sent > std::chrono::milliseconds(impl_->options.history_timeout_ms)) {
      impl_->log->info("history_retry", {{"node_id", p.node.node_id}, {"cursor", p.cursor}});
      impl_->request_history(p);
    }
  }
  return out;
}

uint64_t Follower::cursor(const std::string& node_id) const {
  for (const auto& p : impl_->peers) {
    if (p.node.node_id == node_id) return p.cursor;
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
