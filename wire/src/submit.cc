// submit_build: BuildRequest to each node, JobStatus polling, then Query polling at the verifier.
#include "quorate/wire/submit.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <memory>
#include <set>
#include <thread>

#include "quorate/core/build_args.h"
#include "quorate/core/encoding.h"
#include "quorate/wire/query_client.h"
#include "quorate/wire/socket.h"

namespace quorate::wire {
namespace {

using SteadyClock = std::chrono::steady_clock;

bool finished(pb::JobStatus::State s) {
  return s != pb::JobStatus::QUEUED && s != pb::JobStatus::RUNNING && s != pb::JobStatus::STATE_UNSPECIFIED;
}

// One request, one reply, on a DEALER; nullopt on timeout or a bad reply.
template <class Reply>
std::optional<Reply> call(Socket& s, MessageType type, const google::protobuf::MessageLite& msg, MessageType reply_type,
                          int timeout_ms) {
  if (!s.send({encode_frame(type, msg)}).ok()) return std::nullopt;
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(timeout_ms);
  while (SteadyClock::now() < deadline) {
    int left =
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count());
    auto got = s.recv(std::max(left, 1));
    if (!got.ok() || !got->has_value()) return std::nullopt;
    if ((*got)->size() != 1) continue;
    Reply out;
    if (decode_message((**got)[0], reply_type, Limits{}, out).ok()) return out;
  }
  return std::nullopt;
}

// Why a node did not answer, as far as a client can tell: a TCP connection attempt tells "nothing listening"
// from "listening but silent"; under CURVE a silent node most likely refused the handshake.
std::string no_answer_hint(const std::string& endpoint, bool curve) {
  if (!endpoint.starts_with("tcp://")) return "";
  std::string rest = endpoint.substr(6);
  if (auto semi = rest.find(';'); semi != std::string::npos) rest = rest.substr(semi + 1);
  auto colon = rest.rfind(':');
  if (colon == std::string::npos) return "";
  std::string host = rest.substr(0, colon), port = rest.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
    return "; " + host + " does not resolve";
  }
  int verdict = -1;  // 1 connected, 0 refused, -1 no answer in time
  for (addrinfo* p = res; p != nullptr && verdict != 1; p = p->ai_next) {
    int fd = ::socket(p->ai_family, p->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, p->ai_protocol);
    if (fd < 0) continue;
    int rc = ::connect(fd, p->ai_addr, p->ai_addrlen);
    if (rc == 0) {
      verdict = 1;
    } else if (errno == EINPROGRESS) {
      pollfd pfd{fd, POLLOUT, 0};
      if (::poll(&pfd, 1, 2000) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        verdict = err == 0 ? 1 : (err == ECONNREFUSED ? 0 : verdict);
      }
    } else if (errno == ECONNREFUSED) {
      verdict = std::max(verdict, 0);
    }
    ::close(fd);
  }
  ::freeaddrinfo(res);
  if (verdict == 0) return "; nothing is listening there (is the node running, and is this its control endpoint?)";
  if (verdict < 0) return "; no TCP connection within 2 s (a wrong address, or a firewall)";
  if (curve) {
    return "; the port accepts connections but the node did not answer: most likely the CURVE handshake failed, "
           "because the node's server key given here is wrong, or because this client's public key is not in the "
           "node's allowed_clients (the node then logs zap_denied with this client's key)";
  }
  return "; the port accepts connections but nothing answered (is it a quorate node's control endpoint, and does "
         "it also run with --insecure?)";
}

std::set<std::string> voters(const pb::Decision& d) {
  std::set<std::string> out(d.agreeing().begin(), d.agreeing().end());
  for (const auto& x : d.dissenters()) out.insert(x.node_id());
  out.insert(d.void_nodes().begin(), d.void_nodes().end());
  return out;
}

}  // namespace

Result<SubmitReport> submit_build(const SubmitOptions& options) {
  if (options.nodes.empty()) return Status::usage("no node to submit to");
  if (options.request.request_id().empty()) return Status::usage("request id is empty");
  if (options.wait && options.quorum.endpoint.empty())
    return Status::usage("--wait needs the verifier's endpoint (--quorum)");
  auto ctx = QR_TRY(Context::create());
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(options.timeout_ms);
  auto left_ms = [&] {
    return std::max<int>(
        1,
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count()));
  };
  SubmitReport report;
  std::vector<std::unique_ptr<Socket>> sockets;
  std::unique_ptr<QueryClient> quorum;
  // Sockets must go before the context: a scope guard for every return below.
  struct Closer {
    std::vector<std::unique_ptr<Socket>>& s;
    std::unique_ptr<QueryClient>& q;
    ~Closer() {
      s.clear();
      q.reset();
    }
  } closer{sockets, quorum};

  for (const auto& n : options.nodes) {
    auto security = QR_TRY(make_client_security(options.transport, n.server_key));
    sockets.push_back(std::make_unique<Socket>(QR_TRY(Socket::client(*ctx, SocketType::kDealer, security))));
    QR_RETURN_IF_ERROR(sockets.back()->connect(n.endpoint));
  }
  for (size_t i = 0; i < sockets.size(); ++i) {
    auto st = call<pb::JobStatus>(*sockets[i], MessageType::kBuildRequest, options.request, MessageType::kJobStatus,
                                  std::min(left_ms(), 10000));
    pb::JobStatus js;
    if (st) {
      js = *st;
    } else {
      js.set_request_id(options.request.request_id());
      js.set_state(pb::JobStatus::REJECTED);
      js.set_message("no answer from " + options.nodes[i].endpoint +
                     no_answer_hint(options.nodes[i].endpoint, !options.transport.insecure));
    }
    if (js.node_id().empty()) js.set_node_id(options.nodes[i].endpoint);
    if (options.on_status) options.on_status(js);
    report.jobs.push_back(js);
  }
  if (!options.wait) return report;

  // Follow the jobs until all have finished.
  pb::JobStatusRequest sreq;
  sreq.set_request_id(options.request.request_id());
  for (;;) {
    bool all = true;
    for (size_t i = 0; i < sockets.size(); ++i) {
      if (finished(report.jobs[i].state())) continue;
      auto st = call<pb::JobStatus>(*sockets[i], MessageType::kJobStatusRequest, sreq, MessageType::kJobStatus,
                                    std::min(left_ms(), 5000));
      if (st && st->state() != report.jobs[i].state()) {
        report.jobs[i] = *st;
        if (options.on_status) options.on_status(*st);
      }
      all = all && finished(report.jobs[i].state());
    }
    if (all) break;
    if (SteadyClock::now() >= deadline) {
      report.timed_out = true;
      return report;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(options.poll_interval_ms));
  }

  // Ask the verifier until its decision counts every node that succeeded.
  std::set<std::string> expected;
  std::string digest;
  for (const auto& j : report.jobs) {
    if (j.state() == pb::JobStatus::SUCCEEDED) {
      expected.insert(j.node_id());
      if (digest.empty()) digest = j.image_digest();
    }
  }
  auto security = QR_TRY(make_client_security(options.transport, options.quorum.server_key));
  quorum = QR_TRY(QueryClient::connect(options.quorum.endpoint, security));
  // The subject key's build args this request asked for: the decisions of other sets are not about it.
  const std::string build_args =
      QR_TRY(build_args_text(BuildArgMap(options.request.build_args().begin(), options.request.build_args().end())));
  pb::Query q;
  q.set_request_id(options.request.request_id());
  // A full commit id is what the attestations record; anything else (a branch, a short id) is found
  // through the digest a node attested.
  if (options.request.commit().size() == 40 && is_lower_hex(options.request.commit(), 40)) {
    q.mutable_subject()->set_commit(options.request.commit());
  } else if (!digest.empty()) {
    q.set_image_digest(digest);
  } else {
    return report;  // nothing succeeded: there is nothing to decide
  }
  for (;;) {
    // No answer in time, or garbage: asked again at the next poll, until the deadline.
    auto asked = quorum->ask(q, std::min(left_ms(), 5000));
    std::optional<pb::Answer> answer;
    if (asked.ok()) answer = std::move(*asked);
    if (answer && !answer->error().empty()) return Status::bad_input("verifier: " + answer->error());
    if (answer) {
      for (const auto& d : answer->decisions()) {
        if (!options.request.recipe_path().empty() && !d.subject().recipe_path().empty() &&
            d.subject().recipe_path() != options.request.recipe_path()) {
          continue;
        }
        // Another epoch is another subject key: its decision says nothing about this request.
        if (options.request.has_source_date_epoch() &&
            d.subject().source_date_epoch() != options.request.source_date_epoch()) {
          continue;
        }
        // So is another set of build args (none included): compared as their canonical text.
        if (d.subject().build_args() != build_args) continue;
        auto seen = voters(d);
        std::vector<std::string> missing;
        for (const auto& e : expected) {
          if (!seen.count(e)) missing.push_back(e);
        }
        if (!report.decision || missing.size() <= report.uncounted.size()) {
          report.decision = d;
          report.uncounted = missing;
        }
      }
      if (report.decision && report.uncounted.empty()) return report;
    }
    if (SteadyClock::now() >= deadline) {
      report.timed_out = true;
      return report;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(options.poll_interval_ms));
  }
}

}  // namespace quorate::wire
