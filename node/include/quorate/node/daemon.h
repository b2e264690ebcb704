// The rebuild node daemon: takes build requests on a ROUTER socket, rebuilds and signs them one at a time,
// stores each attestation under the next sequence number, then publishes it on a PUB socket.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "quorate/core/status.h"
#include "quorate/node/config.h"
#include "quorate/node/rebuilder.h"
#include "quorate/wire/event_log.h"

namespace quorate::node {

// Counters a test or an operator reads (also logged at shutdown and carried in heartbeats).
struct NodeCounters {
  uint64_t accepted = 0;  // build requests queued
  uint64_t rejected = 0;  // refused (queue full, bad request, stopping)
  uint64_t succeeded = 0;
  uint64_t failed = 0;
  uint64_t published = 0;
  uint64_t history_served = 0;
  uint64_t dropped = 0;  // malformed, oversized or unexpected frames
};

// Thread-safety: run() blocks in the calling thread; request_stop() and counters() may be called from any
// thread (a signal handler should only set the atomic passed as `stop` instead).
class NodeDaemon {
 public:
  struct Options {
    std::function<int64_t()> clock_ms;  // wall clock, milliseconds since the epoch (logs, heartbeats)
  };
  // Opens the store and binds the sockets (so endpoints are known when this returns).
  static Result<std::unique_ptr<NodeDaemon>> open(NodeConfig config, std::unique_ptr<Rebuilder> rebuilder,
                                                  wire::EventLog& log, Options options);
  ~NodeDaemon();

  const std::string& publish_endpoint() const;
  const std::string& control_endpoint() const;

  // Serves until `stop` turns true, then abandons the running build (through the Rebuilder's cancel
  // flag), waits for the worker and returns. Errors only for failures that make serving impossible.
  Status run(const std::atomic<bool>& stop);
  NodeCounters counters() const;

  struct Impl;

 private:
  explicit NodeDaemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quorate::node
