// QueryClient: a DEALER towards the verifier's ROUTER, request ids of its own, a fresh socket after a timeout, the
// query sent again when its connection went down before the answer came.
#include "quorate/wire/query_client.h"

#include <algorithm>
#include <chrono>

#include "quorate/wire/socket.h"

namespace quorate::wire {

struct QueryClient::Impl {
  std::string endpoint;
  ClientSecurity security;
  std::unique_ptr<Context> ctx;
  std::unique_ptr<Socket> socket;                 // destroyed before ctx (member order)
  std::unique_ptr<ConnectionMonitor> connection;  // destroyed before socket
  uint64_t next_id = 1;

  Status reconnect() {
    connection.reset();
    socket.reset();
    SocketOptions options;
    // Back within a quarter of a second of a verifier restart, however long it was away (libzmq's backoff
    // would otherwise reach 2 s, the gate's whole default bound): one connection attempt to one verifier.
    options.reconnect_ivl_max_ms = 250;
    socket = std::make_unique<Socket>(QR_TRY(Socket::client(*ctx, SocketType::kDealer, security, options)));
    connection = QR_TRY(ConnectionMonitor::watch(*ctx, *socket));
    return socket->connect(endpoint);
  }
};

namespace {
// How often ask() looks at the connection while it waits: a query lost with its connection is sent again at
// most this long after the connection is back.
constexpr int kWatchSliceMs = 20;
}  // namespace

QueryClient::QueryClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
QueryClient::~QueryClient() {
  if (!impl_) return;
  impl_->connection.reset();  // stops the monitor while its socket is still open
  impl_->socket.reset();
}
const std::string& QueryClient::endpoint() const { return impl_->endpoint; }

Result<std::unique_ptr<QueryClient>> QueryClient::connect(const std::string& endpoint, const ClientSecurity& security) {
  auto impl = std::make_unique<Impl>();
  impl->endpoint = endpoint;
  impl->security = security;
  impl->ctx = QR_TRY(Context::create());
  QR_RETURN_IF_ERROR(impl->reconnect());
  return std::unique_ptr<QueryClient>(new QueryClient(std::move(impl)));
}

Result<pb::Answer> QueryClient::ask(pb::Query query, int timeout_ms) {
  using Clock = std::chrono::steady_clock;
  Impl& m = *impl_;
  if (!m.socket) QR_RETURN_IF_ERROR(m.reconnect());
  const std::string id =
      "q" + std::to_string(m.next_id++) + (query.request_id().empty() ? "" : "." + query.request_id());
  query.set_request_id(id);
  const auto deadline = Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 1));
  auto timed_out = [&] {
    // Queries queued towards a verifier that is down would be answered, uselessly, when it comes back.
    m.connection.reset();
    m.socket.reset();
    return Status::io("the verifier at " + m.endpoint + " did not answer within " + std::to_string(timeout_ms) + " ms");
  };
  (void)m.connection->take();  // what happened before this query does not concern it
  const Frames message{encode_frame(MessageType::kQuery, query)};
  if (Status sent = m.socket->send(message); !sent.ok()) return timed_out();
  // A connection that goes down after the query left may have taken it along (a verifier killed or restarted
  // before it answered): once a connection is up again, the query is sent again. Queries are reads, and an
  // answer to either copy is the answer.
  bool lost = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return timed_out();
    auto got = m.socket->recv(static_cast<int>(std::min<int64_t>(left, kWatchSliceMs)));
    if (!got.ok())
      return Status::bad_input("the verifier at " + m.endpoint + " sent garbage: " + got.status().message());
    if (!got->has_value()) {
      for (ConnectionMonitor::Event e : m.connection->take()) {
        if (e == ConnectionMonitor::Event::kDown) {
          lost = true;
        } else if (e == ConnectionMonitor::Event::kUp && lost) {
          lost = false;
          if (!m.socket->send(message).ok()) return timed_out();
        }
      }
      continue;
    }
    const Frames& frames = **got;
    if (frames.size() != 1) {
      return Status::bad_input("the verifier at " + m.endpoint + " sent garbage: a message of " +
                               std::to_string(frames.size()) + " frames, not one Answer");
    }
    pb::Answer answer;
    if (Status s = decode_message(frames[0], MessageType::kAnswer, Limits{}, answer); !s.ok()) {
      return Status::bad_input("the verifier at " + m.endpoint + " sent garbage, not an Answer: " + s.message());
    }
    if (answer.request_id() == id) return answer;
    // A late answer to an earlier query: skip it.
  }
}

}  // namespace quorate::wire
