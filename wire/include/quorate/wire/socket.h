// ZeroMQ sockets behind Status-returning calls: contexts with a ZAP allow-list authenticator, sockets with
// explicit high-water marks, timeouts and size caps, multipart send/receive and polling.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "quorate/core/status.h"
#include "quorate/wire/security.h"

namespace quorate::wire {

class Socket;

// One ZeroMQ context and, once started, its ZAP authenticator thread. Thread-safe. Every Socket made from
// a Context must be destroyed before the Context.
class Context {
 public:
  static Result<std::unique_ptr<Context>> create();
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Registers (or replaces) the allow list of CURVE client public keys (Z85) for a ZAP domain, starting the
  // authenticator thread on first use. Server sockets of that domain accept only listed clients.
  Status allow_clients(const std::string& domain, const std::vector<std::string>& client_keys);
  // CURVE handshakes refused by the allow list so far, and accepted.
  uint64_t zap_denied() const;
  uint64_t zap_allowed() const;
  // Called (on the authenticator thread) for each refused handshake: the ZAP domain, the peer's address and
  // the client's CURVE public key in Z85 (empty when the client offered no CURVE key). Set before serving.
  struct ZapDenial {
    std::string domain, address, mechanism, client_key;
  };
  void on_zap_denied(std::function<void(const ZapDenial&)> callback);

  // A handshake at a server socket that failed in libzmq before ZAP was asked, so that on_zap_denied never hears
  // of it: a NULL or PLAIN client at a CURVE server (or a CURVE client at an insecure one), a client without the
  // secret key of the public key it presents or using another server key, a malformed handshake. `socket` is
  // the name given to watch_failed_handshakes(), `address` the peer's, `reason` one of a few fixed phrases (a
  // log's rate limit can key on it), `detail` says more (with libzmq's protocol error code).
  struct HandshakeFailure {
    std::string socket, address, reason, detail;
  };
  // Calls `callback` for each handshake at `socket` (made from this Context, bound, used by the calling thread)
  // that fails as above, on a thread of the Context's own that reads the events as they come: libzmq's monitor
  // queue holds 1,000 events and its I/O thread blocks when that is full, so it is not left to a daemon's loop.
  // io when the monitor cannot be started.
  Status watch_failed_handshakes(Socket& socket, const std::string& name,
                                 std::function<void(const HandshakeFailure&)> callback);
  uint64_t handshakes_failed() const;  // reported so far, by every watched socket

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  explicit Context(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

enum class SocketType { kPub, kSub, kRouter, kDealer };

// Every option is set explicitly on every socket, so behaviour does not depend on libzmq defaults.
struct SocketOptions {
  int send_hwm = 100000;  // messages queued per peer before PUB drops / others block
  int recv_hwm = 100000;
  int send_timeout_ms = 2000;              // a send that cannot proceed fails (kIo) after this
  int linger_ms = 0;                       // unsent messages are discarded on close: shutdown never hangs
  int64_t max_message_bytes = 64ll << 20;  // transport cap (ZMQ_MAXMSGSIZE); a peer sending more is cut off
  int reconnect_ivl_ms = 100;
  int reconnect_ivl_max_ms = 2000;
  int handshake_ivl_ms = 5000;
  // ZMTP heartbeats are off: with them, libzmq 4.3.4 aborts the whole process (`!_io_error`,
  // stream_engine_base.cpp:331) when a peer that filled our inbound queue hangs up (libzmq issues #3937,
  // #4364, #4767; docs/decisions.md). Dead peers are noticed by TCP keepalive instead. Turn heartbeats on only
  // with a libzmq that fixes it.
  int heartbeat_ivl_ms = 0;
  int heartbeat_timeout_ms = 5000;
  int tcp_keepalive_idle_s = 30;  // TCP keepalive probes after this much silence; 0: the OS default (off)
  int tcp_keepalive_intvl_s = 10;
  int tcp_keepalive_cnt = 3;
  std::string zap_domain = "quorate";  // server sockets: which allow list of the Context applies
};

// Largest frame a PUB socket takes from a subscriber (a subscription or anything else): a longer one
// disconnects the peer. Topics are at most Limits::max_topic_bytes (256); this leaves room.
inline constexpr int64_t kMaxSubscriptionBytes = 1024;

// Multipart message: one string per frame.
using Frames = std::vector<std::string>;

// A ZeroMQ socket. Not thread-safe (like any ZeroMQ socket): use it from one thread at a time.
class Socket {
 public:
  // A socket that will bind (server side) with `security`. Under kCurve the Context must have an allow list
  // for options.zap_domain.
  static Result<Socket> server(Context& ctx, SocketType type, const ServerSecurity& security,
                               const SocketOptions& options = {});
  // A socket that will connect (client side) with `security`.
  static Result<Socket> client(Context& ctx, SocketType type, const ClientSecurity& security,
                               const SocketOptions& options = {});
  Socket(Socket&&) noexcept;
  Socket& operator=(Socket&&) noexcept;
  ~Socket();

  // Binds and returns the resolved endpoint (tcp://127.0.0.1:* becomes the chosen port). Checks the
  // endpoint against the security settings first (usage error).
  Result<std::string> bind(const std::string& endpoint);
  Status connect(const std::string& endpoint);
  Status disconnect(const std::string& endpoint);
  // SUB only: receive messages whose first frame starts with `prefix`.
  Status subscribe(const std::string& prefix);

  // Lets libzmq act on what peers sent that the application never reads (subscriptions on a PUB socket), so
  // that a flood of them does not sit in a full queue. Cheap; call it from the socket's thread now and then.
  void process_pending();
  // Sends all frames as one message. kIo when the send timed out (peer gone, HWM reached).
  Status send(const Frames& frames);
  // Waits up to `timeout_ms` (0: do not wait, -1: forever) for one message. nullopt on timeout. A message
  // of more than `max_frames` frames is drained and returned as bad_input (garbage).
  Result<std::optional<Frames>> recv(int timeout_ms, size_t max_frames = 8);

  void* native_handle() const;

 private:
  struct Impl;
  explicit Socket(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The ups and downs of a client socket's connections, from a libzmq socket monitor: kUp when a handshake with
// the peer succeeded (under CURVE: the server proved its key), kDown when a connection went away,
// kHandshakeFailed when a handshake failed (under CURVE: a wrong server key, or a client key the server refused). Use
// it from the watched socket's thread, and destroy it before that socket.
class ConnectionMonitor {
 public:
  enum class Event { kUp, kDown, kHandshakeFailed };
  static Result<std::unique_ptr<ConnectionMonitor>> watch(Context& ctx, Socket& socket);
  ~ConnectionMonitor();
  ConnectionMonitor(const ConnectionMonitor&) = delete;
  ConnectionMonitor& operator=(const ConnectionMonitor&) = delete;
  // The events since the last call, oldest first, without waiting.
  std::vector<Event> take();

 private:
  ConnectionMonitor() = default;
  void* watched_ = nullptr;  // the socket's libzmq handle
  void* pair_ = nullptr;     // the PAIR socket libzmq writes the events to
};

// Waits up to `timeout_ms` for any of `sockets` to be readable; returns one flag per socket.
Result<std::vector<bool>> poll_readable(std::span<Socket* const> sockets, int timeout_ms);

}  // namespace quorate::wire
