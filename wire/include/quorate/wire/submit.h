// The client side of `quorate submit`: send a build request to nodes, optionally wait for the verifier's
// decision on it.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "quorate/core/status.h"
#include "quorate/wire/frame.h"
#include "quorate/wire/security.h"

namespace quorate::wire {

struct SubmitTarget {
  std::string endpoint;    // a node's control (ROUTER) endpoint
  std::string server_key;  // its CURVE public key (Z85 or file); empty when insecure
};

struct SubmitOptions {
  std::vector<SubmitTarget> nodes;
  pb::BuildRequest request;  // request_id must be set
  TransportConfig transport;
  int timeout_ms = 600000;  // overall bound on everything below
  bool wait = false;        // wait for the jobs and then for the verifier's decision
  SubmitTarget quorum;      // the verifier's query (ROUTER) endpoint, with wait
  int poll_interval_ms = 200;
  std::function<void(const pb::JobStatus&)> on_status;  // called on each status change (progress output)
};

struct SubmitReport {
  std::vector<pb::JobStatus> jobs;  // one per node, the last status seen (REJECTED with a message if unreachable)
  std::optional<pb::Decision> decision;
  std::vector<std::string> uncounted;  // nodes that succeeded but whose vote the decision does not show
  bool timed_out = false;
};

// Sends the request to every node; with `wait`, follows the jobs until they finish, then asks the verifier
// (by commit, or by the attested image digest) until its decision counts every node that succeeded, or
// the timeout passes. Errors only for bad options or sockets that cannot be made; unreachable nodes show
// up in the report.
Result<SubmitReport> submit_build(const SubmitOptions& options);

}  // namespace quorate::wire
