// ZeroMQ through cppzmq, with every cppzmq exception turned into a Status here, at the module edge.
#include "quorate/wire/socket.h"

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace quorate::wire {
namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

Status zmq_status(const char* what, const zmq::error_t& e) { return Status::io(std::string(what) + ": " + e.what()); }

int zmq_type(SocketType type) {
  switch (type) {
    case SocketType::kPub:
      return ZMQ_PUB;
    case SocketType::kSub:
      return ZMQ_SUB;
    case SocketType::kRouter:
      return ZMQ_ROUTER;
    case SocketType::kDealer:
      return ZMQ_DEALER;
  }
  return ZMQ_PAIR;
}

}  // namespace

// ---- Context and its ZAP authenticator -------------------------------------------------------------------

struct Context::Impl {
  zmq::context_t ctx;
  std::mutex mu;
  std::map<std::string, std::set<std::string>> allowed;  // ZAP domain -> Z85 client keys
  std::thread zap_thread;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> denied{0};
  std::atomic<uint64_t> accepted{0};
  std::function<void(const Context::ZapDenial&)> on_denied;  // guarded by mu

  // Failed handshakes at watched server sockets: our ends of their monitors, read on watch_thread only while
  // holding watch_mu (a socket may move between threads behind a memory barrier).
  struct Watched {
    void* pair = nullptr;
    std::string name;
    std::function<void(const Context::HandshakeFailure&)> callback;
  };
  std::mutex watch_mu;
  std::vector<Watched> watched;
  std::thread watch_thread;
  std::atomic<uint64_t> handshakes_failed{0};

  ~Impl() {
    stop = true;
    if (zap_thread.joinable()) zap_thread.join();
    if (watch_thread.joinable()) watch_thread.join();
    for (auto& w : watched) zmq_close(w.pair);
  }

  static Context::HandshakeFailure describe(const std::string& name, uint32_t code, std::string address) {
    Context::HandshakeFailure f{name, std::move(address), "", ""};
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08x", code);
    if (code == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
      f.reason = "security mechanism mismatch";
      f.detail = "the client speaks another security mechanism than this socket (NULL or PLAIN at a CURVE server)";
    } else if (code == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC || code == ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE) {
      f.reason = "CURVE handshake did not verify";
      f.detail = "the client does not hold the secret key of the public key it presents, or uses another server key";
    } else {
      f.reason = "malformed handshake";
      f.detail = "the client broke the ZMTP handshake";
    }
    f.detail += std::string(" (libzmq protocol error ") + hex + ")";
    return f;
  }

  // Reads every event waiting at `w`; the failures are appended to `out`.
  void drain(Watched& w, std::vector<std::pair<Context::HandshakeFailure, Watched*>>& out) {
    for (;;) {
      // Each event is two frames: 16-bit event number and 32-bit value, then the peer's endpoint.
      zmq::message_t first, second;
      if (zmq_msg_recv(first.handle(), w.pair, ZMQ_DONTWAIT) < 0) return;
      if (!first.more() || zmq_msg_recv(second.handle(), w.pair, 0) < 0) continue;
      uint16_t event = 0;
      uint32_t value = 0;
      if (first.size() < sizeof event + sizeof value) continue;
      std::memcpy(&event, first.data(), sizeof event);
      std::memcpy(&value, static_cast<const char*>(first.data()) + sizeof event, sizeof value);
      if (event != ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) continue;
      handshakes_failed.fetch_add(1);
      out.emplace_back(describe(w.name, value, second.to_string()), &w);
    }
  }

  void serve_watch() {
    while (!stop) {
      std::vector<std::pair<Context::HandshakeFailure, Watched*>> failed;
      std::vector<std::function<void(const Context::HandshakeFailure&)>> callbacks;
      {
        std::lock_guard<std::mutex> lock(watch_mu);
        std::vector<zmq_pollitem_t> items;
        for (const auto& w : watched) items.push_back({w.pair, 0, ZMQ_POLLIN, 0});
        if (zmq_poll(items.data(), static_cast<int>(items.size()), 100) <= 0) continue;
        for (size_t i = 0; i < items.size(); ++i) {
          if (items[i].revents & ZMQ_POLLIN) drain(watched[i], failed);
        }
        for (const auto& f : failed) callbacks.push_back(f.second->callback);
      }
      for (size_t i = 0; i < failed.size(); ++i) {
        if (callbacks[i]) callbacks[i](failed[i].first);
      }
    }
  }

  bool is_allowed(const std::string& domain, const std::string& mechanism, const std::string& credential) {
    if (mechanism != "CURVE" || credential.size() != 32) return false;
    char z85[41] = {};
    zmq_z85_encode(z85, reinterpret_cast<const uint8_t*>(credential.data()), 32);
    std::lock_guard<std::mutex> lock(mu);
    auto it = allowed.find(domain);
    return it != allowed.end() && it->second.count(z85) != 0;
  }

  // The ZAP protocol (RFC 27): request version, id, domain, address, identity, mechanism, credentials...;
  // reply version, id, status code, status text, user id, metadata.
  void serve_zap(zmq::socket_t& zap) {
    while (!stop) {
      zmq::pollitem_t item{zap.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) == 0) continue;
      std::vector<zmq::message_t> req;
      if (!zmq::recv_multipart(zap, std::back_inserter(req), zmq::recv_flags::dontwait)) continue;
      if (req.size() < 6) continue;  // libzmq never sends this; nothing sensible to answer
      std::string domain = req[2].to_string(), mechanism = req[5].to_string();
      std::string credential = req.size() > 6 ? req[6].to_string() : std::string();
      bool ok = is_allowed(domain, mechanism, credential);
      (ok ? accepted : denied).fetch_add(1);
      if (!ok) {
        Context::ZapDenial d{domain, req[3].to_string(), mechanism, ""};
        if (mechanism == "CURVE" && credential.size() == 32) {
          char z85[41] = {};
          zmq_z85_encode(z85, reinterpret_cast<const uint8_t*>(credential.data()), 32);
          d.client_key = z85;
        }
        std::function<void(const Context::ZapDenial&)> callback;
        {
          std::lock_guard<std::mutex> lock(mu);
          callback = on_denied;
        }
        if (callback) callback(d);
      }
      std::array<zmq::const_buffer, 6> reply = {
          zmq::str_buffer("1.0"),
          zmq::buffer(req[1].data(), req[1].size()),
          ok ? zmq::str_buffer("200") : zmq::str_buffer("400"),
          ok ? zmq::str_buffer("OK") : zmq::str_buffer("client key not in allow list"),
          zmq::str_buffer(""),
          zmq::str_buffer("")};
      zmq::send_multipart(zap, reply);
    }
  }

  Status start_zap() {
    if (zap_thread.joinable()) return Status();
    // Bind here, not in the thread, so that no handshake can happen before the handler exists.
    auto zap = std::make_shared<zmq::socket_t>(ctx, zmq::socket_type::rep);
    zap->set(zmq::sockopt::linger, 0);
    zap->bind(kZapEndpoint);
    zap_thread = std::thread([this, zap] {
      try {
        serve_zap(*zap);
      } catch (const zmq::error_t&) {
        // Context terminated under us: nothing left to authenticate.
      }
      zap->close();
    });
    return Status();
  }
};

Context::Context(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Context::~Context() = default;

Result<std::unique_ptr<Context>> Context::create() {
  try {
    auto impl = std::make_unique<Impl>();
    return std::unique_ptr<Context>(new Context(std::move(impl)));
  } catch (const zmq::error_t& e) {
    return zmq_status("zmq context", e);
  }
}

Status Context::allow_clients(const std::string& domain, const std::vector<std::string>& client_keys) {
  for (const auto& k : client_keys) QR_RETURN_IF_ERROR(check_z85_key(k).with_context("allowed client key"));
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->allowed[domain] = std::set<std::string>(client_keys.begin(), client_keys.end());
  }
  try {
    return impl_->start_zap();
  } catch (const zmq::error_t& e) {
    return zmq_status("ZAP handler", e);
  }
}

uint64_t Context::zap_denied() const { return impl_->denied.load(); }
void Context::on_zap_denied(std::function<void(const ZapDenial&)> callback) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->on_denied = std::move(callback);
}
uint64_t Context::zap_allowed() const { return impl_->accepted.load(); }
uint64_t Context::handshakes_failed() const { return impl_->handshakes_failed.load(); }

Status Context::watch_failed_handshakes(Socket& socket, const std::string& name,
                                        std::function<void(const HandshakeFailure&)> callback) {
  static std::atomic<uint64_t> next{0};
  const std::string endpoint = "inproc://quorate-handshake-monitor-" + std::to_string(next++);
  auto failed = [](const char* what) { return Status::io(std::string(what) + ": " + zmq_strerror(zmq_errno())); };
  if (zmq_socket_monitor(socket.native_handle(), endpoint.c_str(), ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) != 0) {
    return failed("start a socket monitor");
  }
  void* pair = zmq_socket(impl_->ctx.handle(), ZMQ_PAIR);
  const int linger = 0;
  if (pair == nullptr) return failed("make a socket monitor's reader");
  if (zmq_setsockopt(pair, ZMQ_LINGER, &linger, sizeof linger) != 0 || zmq_connect(pair, endpoint.c_str()) != 0) {
    zmq_close(pair);
    return failed("connect to a socket monitor");
  }
  {
    std::lock_guard<std::mutex> lock(impl_->watch_mu);
    impl_->watched.push_back({pair, name, std::move(callback)});
  }
  if (!impl_->watch_thread.joinable()) impl_->watch_thread = std::thread([this] { impl_->serve_watch(); });
  return Status();
}

// ---- Socket -------------------------------------------------------------------------------------------

struct Socket::Impl {
  zmq::socket_t sock;
  Transport transport = Transport::kCurve;
  bool allow_insecure_remote = false;
  std::map<std::string, std::string> connected;  // endpoint as given -> as connected (a resolved loopback name)
};

Socket::Socket(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Socket::Socket(Socket&&) noexcept = default;
Socket& Socket::operator=(Socket&&) noexcept = default;
Socket::~Socket() = default;

namespace {

void apply_options(zmq::socket_t& s, const SocketOptions& o) {
  s.set(zmq::sockopt::sndhwm, o.send_hwm);
  s.set(zmq::sockopt::rcvhwm, o.recv_hwm);
  s.set(zmq::sockopt::sndtimeo, o.send_timeout_ms);
  s.set(zmq::sockopt::linger, o.linger_ms);
  s.set(zmq::sockopt::maxmsgsize, o.max_message_bytes);
  s.set(zmq::sockopt::reconnect_ivl, o.reconnect_ivl_ms);
  s.set(zmq::sockopt::reconnect_ivl_max, o.reconnect_ivl_max_ms);
  s.set(zmq::sockopt::handshake_ivl, o.handshake_ivl_ms);
  s.set(zmq::sockopt::heartbeat_ivl, o.heartbeat_ivl_ms);
  s.set(zmq::sockopt::heartbeat_timeout, o.heartbeat_timeout_ms);
  if (o.tcp_keepalive_idle_s > 0) {
    s.set(zmq::sockopt::tcp_keepalive, 1);
    s.set(zmq::sockopt::tcp_keepalive_idle, o.tcp_keepalive_idle_s);
    s.set(zmq::sockopt::tcp_keepalive_intvl, o.tcp_keepalive_intvl_s);
    s.set(zmq::sockopt::tcp_keepalive_cnt, o.tcp_keepalive_cnt);
  }
}

}  // namespace

Result<Socket> Socket::server(Context& ctx, SocketType type, const ServerSecurity& security,
                              const SocketOptions& options) {
  try {
    auto impl = std::make_unique<Impl>();
    impl->sock = zmq::socket_t(ctx.impl().ctx, zmq_type(type));
    impl->transport = security.transport;
    impl->allow_insecure_remote = security.allow_insecure_remote;
    apply_options(impl->sock, options);
    if (type == SocketType::kRouter) impl->sock.set(zmq::sockopt::router_mandatory, false);
    // A PUB socket only ever receives subscriptions: anything large is hostile (issue 11, item 7).
    if (type == SocketType::kPub) {
      impl->sock.set(zmq::sockopt::maxmsgsize, std::min<int64_t>(options.max_message_bytes, kMaxSubscriptionBytes));
    }
    if (security.transport == Transport::kCurve) {
      QR_RETURN_IF_ERROR(check_z85_key(security.server_keys.secret_z85).with_context("server secret key"));
      QR_RETURN_IF_ERROR(ctx.allow_clients(options.zap_domain, security.allowed_clients));
      impl->sock.set(zmq::sockopt::curve_server, true);
      impl->sock.set(zmq::sockopt::curve_secretkey, security.server_keys.secret_z85);
      impl->sock.set(zmq::sockopt::zap_domain, options.zap_domain);
    }
    return Socket(std::move(impl));
  } catch (const zmq::error_t& e) {
    return zmq_status("server socket", e);
  }
}

Result<Socket> Socket::client(Context& ctx, SocketType type, const ClientSecurity& security,
                              const SocketOptions& options) {
  try {
    auto impl = std::make_unique<Impl>();
    impl->sock = zmq::socket_t(ctx.impl().ctx, zmq_type(type));
    impl->transport = security.transport;
    impl->allow_insecure_remote = security.allow_insecure_remote;
    apply_options(impl->sock, options);
    if (security.transport == Transport::kCurve) {
      QR_RETURN_IF_ERROR(check_z85_key(security.server_public).with_context("server public key"));
      QR_RETURN_IF_ERROR(check_z85_key(security.client_keys.public_z85).with_context("client public key"));
      QR_RETURN_IF_ERROR(check_z85_key(security.client_keys.secret_z85).with_context("client secret key"));
      impl->sock.set(zmq::sockopt::curve_serverkey, security.server_public);
      impl->sock.set(zmq::sockopt::curve_publickey, security.client_keys.public_z85);
      impl->sock.set(zmq::sockopt::curve_secretkey, security.client_keys.secret_z85);
    }
    return Socket(std::move(impl));
  } catch (const zmq::error_t& e) {
    return zmq_status("client socket", e);
  }
}

Result<std::string> Socket::bind(const std::string& endpoint) {
  auto target = checked_endpoint(endpoint, impl_->transport, impl_->allow_insecure_remote);
  if (!target.ok()) return target.status();
  try {
    impl_->sock.bind(*target);
    return impl_->sock.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return zmq_status(("bind " + endpoint).c_str(), e);
  }
}

Status Socket::connect(const std::string& endpoint) {
  auto target = checked_endpoint(endpoint, impl_->transport, impl_->allow_insecure_remote);
  if (!target.ok()) return target.status();
  try {
    impl_->sock.connect(*target);
    impl_->connected[endpoint] = *target;
    return Status();
  } catch (const zmq::error_t& e) {
    return zmq_status(("connect " + endpoint).c_str(), e);
  }
}

Status Socket::disconnect(const std::string& endpoint) {
  try {
    auto it = impl_->connected.find(endpoint);
    impl_->sock.disconnect(it == impl_->connected.end() ? endpoint : it->second);
    if (it != impl_->connected.end()) impl_->connected.erase(it);
    return Status();
  } catch (const zmq::error_t& e) {
    return zmq_status(("disconnect " + endpoint).c_str(), e);
  }
}

Status Socket::subscribe(const std::string& prefix) {
  try {
    impl_->sock.set(zmq::sockopt::subscribe, prefix);
    return Status();
  } catch (const zmq::error_t& e) {
    return zmq_status("subscribe", e);
  }
}

Status Socket::send(const Frames& frames) {
  try {
    for (size_t i = 0; i < frames.size(); ++i) {
      auto flags = i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      if (!impl_->sock.send(zmq::buffer(frames[i]), flags)) {
        return Status::io("send timed out (peer gone or high-water mark reached)");
      }
    }
    return Status();
  } catch (const zmq::error_t& e) {
    return zmq_status("send", e);
  }
}

Result<std::optional<Frames>> Socket::recv(int timeout_ms, size_t max_frames) {
  try {
    zmq::pollitem_t item{impl_->sock.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) == 0) return std::optional<Frames>();
    Frames frames;
    bool too_many = false;
    for (;;) {
      zmq::message_t msg;
      if (!impl_->sock.recv(msg, zmq::recv_flags::dontwait)) {
        if (frames.empty()) return std::optional<Frames>();  // poll raced with a dropped message
        break;
      }
      if (frames.size() < max_frames) {
        frames.emplace_back(static_cast<const char*>(msg.data()), msg.size());
      } else {
        too_many = true;  // keep draining: the rest of the message must not look like a new one
      }
      if (!msg.more()) break;
    }
    if (too_many) return Status::bad_input("garbage: message of more than " + std::to_string(max_frames) + " frames");
    return std::optional<Frames>(std::move(frames));
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return std::optional<Frames>();  // a signal (SIGTERM): let the caller look at its flag
    return zmq_status("recv", e);
  }
}

void* Socket::native_handle() const { return impl_->sock.handle(); }

void Socket::process_pending() {
  try {
    (void)impl_->sock.get(zmq::sockopt::events);  // processes the socket's pending commands (pipe activations)
  } catch (const zmq::error_t&) {
    // Nothing to report: the next send or receive fails with a proper Status.
  }
}

Result<std::vector<bool>> poll_readable(std::span<Socket* const> sockets, int timeout_ms) {
  std::vector<zmq::pollitem_t> items;
  items.reserve(sockets.size());
  for (Socket* s : sockets) items.push_back({s->native_handle(), 0, ZMQ_POLLIN, 0});
  try {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(timeout_ms));
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return std::vector<bool>(sockets.size(), false);
    return zmq_status("poll", e);
  }
  std::vector<bool> out;
  out.reserve(items.size());
  for (const auto& it : items) out.push_back((it.revents & ZMQ_POLLIN) != 0);
  return out;
}

// ---- ConnectionMonitor --------------------------------------------------------------------------------------

Result<std::unique_ptr<ConnectionMonitor>> ConnectionMonitor::watch(Context& ctx, Socket& socket) {
  static std::atomic<uint64_t> next{0};
  const std::string endpoint = "inproc://quorate-connection-monitor-" + std::to_string(next++);
  std::unique_ptr<ConnectionMonitor> m(new ConnectionMonitor());
  auto failed = [](const char* what) { return Status::io(std::string(what) + ": " + zmq_strerror(zmq_errno())); };
  if (zmq_socket_monitor(socket.native_handle(), endpoint.c_str(),
                         ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                             ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0) {
    return failed("start a socket monitor");
  }
  m->watched_ = socket.native_handle();
  m->pair_ = zmq_socket(ctx.impl().ctx.handle(), ZMQ_PAIR);
  const int linger = 0;
  if (m->pair_ == nullptr || zmq_setsockopt(m->pair_, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
      zmq_connect(m->pair_, endpoint.c_str()) != 0) {
    return failed("connect to a socket monitor");
  }
  return m;
}

ConnectionMonitor::~ConnectionMonitor() {
  if (watched_ != nullptr) zmq_socket_monitor(watched_, nullptr, 0);
  if (pair_ != nullptr) zmq_close(pair_);
}

std::vector<ConnectionMonitor::Event> ConnectionMonitor::take() {
  std::vector<Event> out;
  for (;;) {
    // Each event is two frames: 16-bit event number and 32-bit value, then the peer's endpoint.
    zmq::message_t first, second;
    if (zmq_msg_recv(first.handle(), pair_, ZMQ_DONTWAIT) < 0) return out;
    uint16_t event = 0;
    if (first.size() >= sizeof event) std::memcpy(&event, first.data(), sizeof event);
    if (first.more()) (void)zmq_msg_recv(second.handle(), pair_, 0);
    out.push_back(event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED ? Event::kUp
                  : event == ZMQ_EVENT_DISCONNECTED      ? Event::kDown
                                                         : Event::kHandshakeFailed);
  }
}

}  // namespace quorate::wire
