// The verifier daemon (`quorate quorum`): follows every node of the roster, verifies and stores every
// attestation, re-decides the touched subject key, publishes new or changed decisions and answers queries.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "quorate/core/status.h"
#include "quorate/quorumd/judge.h"
#include "quorate/quorumd/verifier_config.h"
#include "quorate/wire/event_log.h"

namespace quorate::quorum {

struct VerifierCounters {
  uint64_t received = 0;  // attestations delivered by the follower
  uint64_t stored = 0;
  uint64_t duplicates = 0;  // already stored (replays included)
  uint64_t rejected = 0;    // failed verification
  std::map<std::string, uint64_t> rejected_by_reason;
  uint64_t decisions_published = 0;
  uint64_t queries = 0;
  uint64_t dropped = 0;  // malformed, oversized, unexpected frames (nodes' and clients')
  uint64_t zap_denied = 0;
};

// run() blocks in the calling thread; counters() may be called from any thread.
class VerifierDaemon {
 public:
  struct Options {
    std::function<int64_t()> clock_ms;  // wall clock for logs
    int counters_log_interval_ms = 2000;
  };
  // Opens the cursor store and binds the PUB and ROUTER sockets; connects to every node.
  static Result<std::unique_ptr<VerifierDaemon>> open(VerifierConfig config, std::unique_ptr<Judge> judge,
                                                      wire::EventLog& log, Options options);
  ~VerifierDaemon();

  const std::string& publish_endpoint() const;
  const std::string& query_endpoint() const;
  Status run(const std::atomic<bool>& stop);
  VerifierCounters counters() const;

  struct Impl;

 private:
  explicit VerifierDaemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quorate::quorum
