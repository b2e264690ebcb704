// A client of the verifier daemon's query socket (ROUTER): one Query out, its Answer back, within a bound.
// Used by `quorate submit --wait` and by `quorate gate --quorum`.
#pragma once

#include <memory>
#include <string>

#include "quorate/core/status.h"
#include "quorate/wire/frame.h"
#include "quorate/wire/security.h"

namespace quorate::wire {

class QueryClient {
 public:
  // A DEALER connected to `endpoint` (checked against `security` first: usage error). Connecting does not
  // wait for the verifier: a verifier that is down shows up as a timeout in ask().
  static Result<std::unique_ptr<QueryClient>> connect(const std::string& endpoint, const ClientSecurity& security);
  ~QueryClient();

  // Sends `query` (its request_id replaced by one of this client's, so that a late answer to an earlier query
  // is told apart and skipped) and waits at most `timeout_ms` for its Answer. When the connection goes down
  // after the query left and comes back within that time (a verifier restarted), the query is sent again. io "the
  // verifier at ENDPOINT did not answer within N ms" on timeout, after which the socket is made anew so that queries
  // queued towards a dead verifier are not answered later; bad_input naming what was wrong when the verifier sent
  // something that is not an Answer. An Answer whose `error` is set is returned as it is. Not thread-safe: one caller
  // at a time.
  Result<pb::Answer> ask(pb::Query query, int timeout_ms);

  const std::string& endpoint() const;

 private:
  struct Impl;
  explicit QueryClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quorate::wire
