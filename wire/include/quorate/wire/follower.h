// Following nodes' attestation streams without loss (the zguide "clone" pattern): live PUB/SUB for speed,
// the node's history endpoint on start, on any sequence gap, and whenever a heartbeat shows we are behind.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "quorate/core/status.h"
#include "quorate/wire/event_log.h"
#include "quorate/wire/frame.h"
#include "quorate/wire/security.h"
#include "quorate/wire/socket.h"

namespace quorate::wire {

// One node to follow: its PUB and ROUTER endpoints and, under CURVE, its server public key.
struct FollowedNode {
  std::string node_id;
  std::string publish_endpoint;
  std::string control_endpoint;
  std::string server_key;  // Z85 or key file (resolved against the transport's base_dir); empty if insecure
};

// Delivers every attestation of every followed node exactly once, in sequence order per node, starting
// after the given cursors. Each node gets its own SUB and DEALER socket, so a node cannot publish under
// another node's name and move that node's cursor. Not thread-safe: one thread calls poll().
class Follower {
 public:
  struct Options {
    Limits limits;
    int history_timeout_ms = 3000;  // a history request unanswered this long is sent again
    // After this many history requests in a row went unanswered, the node's sockets are made anew (and
    // logged at warn, node_reconnect); 0: never.
    uint32_t reconnect_after_unanswered = 3;
    uint32_t history_batch = 0;  // 0: the node's default
    // A history answer that delivers nothing new while the node claims more (a broken or hostile node) is
    // asked again after a delay that doubles from `history_backoff_initial_ms` up to `history_backoff_max_ms`;
    // any progress resets it. Heartbeats and live gaps do not cut the delay short.
    int history_backoff_initial_ms = 100;
    int history_backoff_max_ms = 30000;
    // The farthest ahead of the cursor a node's announcement is believed (announced() is capped there, and
    // a claim beyond it is logged): no honest node is a million attestations ahead.
    uint64_t max_believed_gap = 1'000'000;
    // Node id -> the node incarnation (wire.proto's Incarnation) the cursor counts in; absent or 0: not known,
    // the first one seen is adopted.
    std::map<std::string, uint64_t> incarnations;
    // Live attestations that arrive ahead of the cursor (a gap, or while history is being fetched) are kept,
    // up to this many bytes of envelopes per node, and delivered once history has filled the gap before them:
    // history then only has to fill a gap that does not grow, so a lagging node catches up while it publishes.
    // Beyond the cap, newer ones are left to history.
    size_t live_buffer_bytes = 2u << 20;
    // A node that has been behind (in history mode) for longer than `lag_warn_after_ms`, or whose lag
    // (announced - cursor) grew since the previous check, is logged at warn (`node_lagging`, with its lag),
    // at most once every `lag_check_interval_ms`.
    int lag_warn_after_ms = 10000;
    int lag_check_interval_ms = 5000;
    // A node whose new incarnations moved the cursor back (each one re-reads the history from there) more than
    // `incarnation_rewinds_allowed` times within `incarnation_window_ms` is flapping (a broken or hostile node
    // flipping its incarnation on every answer made us re-read its whole history at the speed of the round
    // trip): its next history request waits `incarnation_backoff_initial_ms`, doubling with each further
    // rewind in the window up to `incarnation_backoff_max_ms`, and each is logged at warn
    // (`node_incarnation_flapping`, with the count).
    uint32_t incarnation_rewinds_allowed = 3;
    int incarnation_window_ms = 600000;
    int incarnation_backoff_initial_ms = 1000;
    int incarnation_backoff_max_ms = 600000;
  };
  struct Counters {
    uint64_t live = 0;          // delivered from PUB/SUB
    uint64_t from_history = 0;  // delivered from history responses
    uint64_t duplicates = 0;    // at or below the cursor: already delivered (replays included)
    uint64_t gaps = 0;          // sequence gaps seen (each triggers a history request)
    uint64_t history_requests = 0;
    uint64_t history_fruitless = 0;               // history answers that delivered nothing new
    uint64_t incarnation_changes = 0;             // a node began a new incarnation (restart, restored or wiped store)
    uint64_t incarnation_rewinds_backed_off = 0;  // rewinds beyond the allowance: history was asked for later
    uint64_t buffered = 0;            // live attestations kept ahead of the cursor and delivered later (in `live`)
    uint64_t lag_warnings = 0;        // node_lagging warnings logged
    uint64_t handshake_failures = 0;  // node_handshake_failed warnings logged (a wrong key, or refused by the node)
  };

  // Connects to every node. `cursors`: node id -> last sequence already processed (absent: 0).
  static Result<std::unique_ptr<Follower>> open(Context& ctx, const std::vector<FollowedNode>& nodes,
                                                const TransportConfig& transport,
                                                const std::map<std::string, uint64_t>& cursors, Options options,
                                                EventLog& log);
  ~Follower();

  // Waits up to `timeout_ms` for traffic and returns what became deliverable (possibly nothing), in order
  // per node. Malformed, oversized and misaddressed frames are dropped and counted, never returned.
  Result<std::vector<pb::AttestationMessage>> poll(int timeout_ms);
  // The same, reading no more messages once `max_messages` were delivered (one history answer, at most the
  // node's batch, is never split, so the result may exceed it by that much). Nodes are read round-robin from
  // a rotating start, so a cap does not starve the last ones. What is not read waits in the sockets.
  Result<std::vector<pb::AttestationMessage>> poll(int timeout_ms, size_t max_messages);

  uint64_t cursor(const std::string& node_id) const;
  // The node incarnation the cursor counts in (0: not known yet). Save it with the cursor.
  uint64_t incarnation(const std::string& node_id) const;
  const DropCounters& drops() const;
  Counters counters() const;
  // Node id -> last sequence the node announced (heartbeat, attestation or history answer), capped at
  // cursor + Options::max_believed_gap.
  std::map<std::string, uint64_t> announced() const;

  struct Impl;

 private:
  explicit Follower(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quorate::wire
