// QueryClient: a DEALER towards the verifier's ROUTER, request ids of its own, a fresh socket after a timeout.
#include "quorate/wire/query_client.h"

#include <algorithm>
#include <chrono>

#include "quorate/wire/socket.h"

namespace quorate::wire {

struct QueryClient::Impl {
  std::string endpoint;
  ClientSecurity security;
  std::unique_ptr<Context> ctx;
  std::unique_ptr<Socket> socket;  // destroyed before ctx (member order)
  uint64_t next_id = 1;

  Status reconnect() {
    socket.reset();
    socket = std::make_unique<Socket>(QR_TRY(Socket::client(*ctx, SocketType::kDealer, security)));
    return socket->connect(endpoint);
  }
};

QueryClient::QueryClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
QueryClient::~QueryClient() {
  if (impl_) impl_->socket.reset();
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
    m.socket.reset();
    return Status::io("the verifier at " + m.endpoint + " did not answer within " + std::to_string(timeout_ms) + " ms");
  };
  if (Status sent = m.socket->send({encode_frame(MessageType::kQuery, query)}); !sent.ok()) return timed_out();
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return timed_out();
    auto got = m.socket->recv(static_cast<int>(left));
    if (!got.ok())
      return Status::bad_input("the verifier at " + m.endpoint + " sent garbage: " + got.status().message());
    if (!got->has_value()) return timed_out();
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
