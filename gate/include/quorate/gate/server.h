// The HTTPS service: POST /validate (AdmissionReview in, AdmissionReview out), GET /healthz; TLS only, the
// certificate and key re-read on request (SIGHUP in `quorate gate`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "quorate/core/status.h"
#include "quorate/gate/admission.h"
#include "quorate/gate/decider.h"

namespace quorate::gate {

// Bytes a connection may send from the end of the gate's last answer (or its start) until its request's
// headers are read, TLS handshake included. cpp-httplib 0.11 buffers a request or header line without bound.
inline constexpr size_t kMaxHeadBytes = 64 * 1024;
// Bytes a request may send after its headers. A chunked body: twice the body limit, so that a body somewhat over
// the limit is read to its end and answered 400, and one far over it (or endless) is cut off, and with it its
// chunk-size lines, which cpp-httplib 0.11 buffers without bound. A body with a Content-Length: that length, up
// to sixteen times the body limit (read and discarded past max_body, it takes no memory; a client that sends
// more is cut off before it has sent it all, and may not read the 400).
inline constexpr uint64_t kChunkedAllowance(size_t max_body) { return 2 * uint64_t{max_body} + kMaxHeadBytes; }
inline constexpr uint64_t kLengthAllowance(size_t max_body) { return 16 * uint64_t{max_body} + kMaxHeadBytes; }

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;                     // 0: any free port (see Server::port())
  std::filesystem::path cert;       // PEM: the certificate, then any intermediates
  std::filesystem::path key;        // PEM private key; refused when readable by group or world
  size_t max_body = kMaxBodyBytes;  // larger bodies get 400
  // Requests one keep-alive connection may carry before the gate closes it (cpp-httplib's default is 5, which
  // made every fifth review pay a new TLS handshake). Bounded so that connections, and with them the
  // certificate they were opened with, are renewed now and then.
  size_t keep_alive_max_requests = 1000;
  // What one request may take from its first byte to the gate's answer. A connection that sends more than
  // kMaxHeadBytes before its headers end (TLS handshake included), more than kChunkedAllowance or
  // kLengthAllowance after, or is still sending after request_deadline_ms, is closed: its next read fails
  // (logged "connection_closed"). A connection's first request counts from its ClientHello.
  // 30 s is the longest an API server waits for a webhook (timeoutSeconds is 1-30).
  int64_t request_deadline_ms = 30'000;
  // A monotonic clock in microseconds, for the latency in the log.
  std::function<int64_t()> steady_us;
  // Receives one JSON object per line: each review ({"event":"review", uid, namespace, kind, name, images,
  // allowed, message, latency_ms}), each refused request ({"event":"bad_request", ...}), certificate reloads.
  // Called from several threads; must be thread-safe.
  std::function<void(std::string_view)> log;
};

class Server {
 public:
  // Loads the certificate and key, binds the socket and starts serving on threads of its own. bad_input or
  // not_found for the certificate or key (naming the file), io when the address cannot be bound.
  static Result<std::unique_ptr<Server>> start(Decider& decider, ServerOptions options);
  ~Server();  // stop()

  int port() const;
  // TLS handshakes so far (new connections; a benchmark's count of how often keep-alive was not used).
  uint64_t handshakes() const;
  // Re-reads the certificate and key; new connections use them, established ones keep theirs. On an error
  // the previous pair stays in use and the error is returned.
  Status reload_certificates();
  // Waits (at most 5 s) for connections whose first request has not been read yet, then stops accepting,
  // finishes the requests in progress and joins the threads. Idempotent.
  void stop();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quorate::gate
