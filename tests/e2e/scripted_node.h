// A rebuild node played by a test: PUB + ROUTER like `quorate node`, publishing what the test tells it (real
// attestations, replays, garbage) and answering history from what it "stored".
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "quorate/wire/frame.h"
#include "quorate/wire/socket.h"

namespace quorate::e2e {

class ScriptedNode {
 public:
  // Binds on the given endpoints (tcp://127.0.0.1:PORT), plain TCP.
  ScriptedNode(std::string id, const std::string& pub_endpoint, const std::string& control_endpoint)
      : ScriptedNode(std::move(id), pub_endpoint, control_endpoint, insecure()) {}
  // The same under `s` (CURVE: its server keys and allowed clients).
  ScriptedNode(std::string id, const std::string& pub_endpoint, const std::string& control_endpoint,
               const wire::ServerSecurity& s)
      : id_(std::move(id)) {
    ctx_ = wire::Context::create().value();
    pub_ = std::make_unique<wire::Socket>(wire::Socket::server(*ctx_, wire::SocketType::kPub, s).value());
    router_ = std::make_unique<wire::Socket>(wire::Socket::server(*ctx_, wire::SocketType::kRouter, s).value());
    pub_endpoint_ = pub_->bind(pub_endpoint).value();
    control_endpoint_ = router_->bind(control_endpoint).value();
  }
  ~ScriptedNode() {
    pub_.reset();
    router_.reset();
  }

  const std::string& id() const { return id_; }
  const std::string& publish_endpoint() const { return pub_endpoint_; }
  const std::string& control_endpoint() const { return control_endpoint_; }
  // From now on, heartbeats and history answers announce `last` as the newest sequence, whatever is stored
  // (a lying node: 2^64-1 and nothing to show for it).
  void claim_last_sequence(uint64_t last) { claimed_last_ = last; }
  // Stores `envelope` under the next sequence number and publishes it; returns the message.
  wire::pb::AttestationMessage add(const std::string& envelope) {
    wire::pb::AttestationMessage m;
    m.set_node_id(id_);
    m.set_sequence(stored_.size() + 1);
    m.set_envelope(envelope);
    stored_.push_back(m);
    publish(m);
    return m;
  }
  void publish(const wire::pb::AttestationMessage& m) {
    (void)pub_->send({wire::attestation_topic(id_), wire::encode_frame(wire::MessageType::kAttestation, m)});
  }
  void publish_raw(const wire::Frames& frames) { (void)pub_->send(frames); }
  void heartbeat() {
    wire::pb::Heartbeat hb;
    hb.set_node_id(id_);
    hb.set_last_sequence(last_sequence());
    (void)pub_->send({wire::heartbeat_topic(id_), wire::encode_frame(wire::MessageType::kHeartbeat, hb)});
  }
  // Answers waiting history requests; returns how many.
  int serve() {
    int n = 0;
    for (;;) {
      auto got = router_->recv(0);
      if (!got.ok() || !got->has_value() || (*got)->size() != 2) return n;
      wire::pb::HistoryRequest req;
      if (!wire::decode_message((**got)[1], wire::MessageType::kHistoryRequest, wire::Limits{}, req).ok()) continue;
      wire::pb::HistoryResponse resp;
      resp.set_node_id(id_);
      for (const auto& m : stored_) {
        if (req.max_count() != 0 && static_cast<uint64_t>(resp.attestations_size()) == req.max_count()) {
          resp.set_more(true);
          break;
        }
        if (m.sequence() > req.since_sequence()) *resp.add_attestations() = m;
      }
      resp.set_last_sequence(last_sequence());
      (void)router_->send({(**got)[0], wire::encode_frame(wire::MessageType::kHistoryResponse, resp)});
      ++n;
    }
  }

 private:
  static wire::ServerSecurity insecure() {
    wire::ServerSecurity s;
    s.transport = wire::Transport::kInsecure;
    return s;
  }
  std::string id_;
  std::unique_ptr<wire::Context> ctx_;
  std::unique_ptr<wire::Socket> pub_, router_;
  std::string pub_endpoint_, control_endpoint_;
  std::vector<wire::pb::AttestationMessage> stored_;
  std::optional<uint64_t> claimed_last_;
  uint64_t last_sequence() const { return claimed_last_ ? *claimed_last_ : stored_.size(); }
};

}  // namespace quorate::e2e
