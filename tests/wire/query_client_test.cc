// QueryClient against a ROUTER played by the test on 127.0.0.1: a stale answer is skipped, silence is a
// bounded timeout naming the endpoint, garbage is bad_input, a query lost with a restarted verifier is asked
// again.
#include "quorate/wire/query_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "quorate/wire/socket.h"

namespace quorate::wire {
namespace {

// A ROUTER that answers each query with `script(query, identity)`'s frames (each sent as [identity, frame]).
struct QcRouter {
  std::unique_ptr<Context> ctx = Context::create().value();
  std::unique_ptr<Socket> router;
  std::string endpoint;
  std::atomic<bool> stop{false};
  std::thread thread;
  explicit QcRouter(std::function<std::vector<std::string>(const pb::Query&)> script,
                    const std::string& bind_to = "tcp://127.0.0.1:*") {
    ServerSecurity s;
    s.transport = Transport::kInsecure;
    router = std::make_unique<Socket>(Socket::server(*ctx, SocketType::kRouter, s).value());
    endpoint = router->bind(bind_to).value();
    thread = std::thread([this, script] {
      while (!stop) {
        auto got = router->recv(20);
        if (!got.ok() || !got->has_value() || (*got)->size() != 2) continue;
        pb::Query q;
        if (!decode_message((**got)[1], MessageType::kQuery, Limits{}, q).ok()) continue;
        for (const auto& frame : script(q)) (void)router->send({(**got)[0], frame});
      }
    });
  }
  ~QcRouter() {
    stop = true;
    thread.join();
    router.reset();
  }
};

ClientSecurity qc_insecure() {
  ClientSecurity c;
  c.transport = Transport::kInsecure;
  return c;
}

std::string qc_answer(const std::string& request_id, const std::string& digest) {
  pb::Answer a;
  a.set_request_id(request_id);
  a.add_decisions()->set_digest(digest);
  return encode_frame(MessageType::kAnswer, a);
}

TEST(QueryClient, SkipsAnAnswerToAnotherQuery) {
  QcRouter server([](const pb::Query& q) {
    return std::vector<std::string>{qc_answer("q0.stale", "sha256:old"), qc_answer(q.request_id(), q.image_digest())};
  });
  auto client = QueryClient::connect(server.endpoint, qc_insecure()).value();
  pb::Query q;
  q.set_image_digest("sha256:asked");
  auto a = client->ask(q, 5000);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_EQ(a->decisions_size(), 1);
  EXPECT_EQ(a->decisions(0).digest(), "sha256:asked");
}

TEST(QueryClient, SilenceIsATimeoutWithinTheBound) {
  QcRouter server([](const pb::Query&) { return std::vector<std::string>{}; });
  auto client = QueryClient::connect(server.endpoint, qc_insecure()).value();
  auto t0 = std::chrono::steady_clock::now();
  auto a = client->ask(pb::Query{}, 300);
  auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("did not answer within 300 ms"), std::string::npos) << a.status().to_string();
  EXPECT_NE(a.status().message().find(server.endpoint), std::string::npos);
  EXPECT_GE(waited, std::chrono::milliseconds(290));
  EXPECT_LT(waited, std::chrono::milliseconds(3000));
}

// A verifier that takes the first query and goes away without answering (killed); `away` later another listens
// on the same endpoint and answers. What ask() returned, how many queries the first one took, and how long after
// the second one started listening the answer came.
struct AcrossRestart {
  Result<pb::Answer> answer = Status::io("not asked");
  int taken = 0;
  std::chrono::steady_clock::duration after_listening{};
};
AcrossRestart ask_across_restart(std::chrono::milliseconds away) {
  std::atomic<int> taken{0};
  auto first = std::make_unique<QcRouter>([&](const pb::Query&) {
    ++taken;
    return std::vector<std::string>{};
  });
  const std::string endpoint = first->endpoint;
  auto client = QueryClient::connect(endpoint, qc_insecure()).value();
  std::unique_ptr<QcRouter> second;
  std::chrono::steady_clock::time_point listening;
  std::thread restart([&] {
    for (int i = 0; i < 500 && taken == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    first.reset();  // the connection goes down with the query unanswered
    std::this_thread::sleep_for(away);
    second = std::make_unique<QcRouter>(
        [](const pb::Query& q) { return std::vector<std::string>{qc_answer(q.request_id(), "sha256:second")}; },
        endpoint);
    listening = std::chrono::steady_clock::now();
  });
  pb::Query q;
  q.set_image_digest("sha256:asked");
  AcrossRestart out;
  out.answer = client->ask(q, static_cast<int>(away.count()) + 6000);
  const auto answered = std::chrono::steady_clock::now();
  restart.join();
  out.taken = taken;
  out.after_listening = answered - listening;
  return out;
}

// Once a verifier listens on the endpoint again, the query reaches it and its answer comes back within the one
// bound.
TEST(QueryClient, AsksAgainWhenTheConnectionCameBackWithoutAnAnswer) {
  auto r = ask_across_restart(std::chrono::milliseconds(200));
  EXPECT_EQ(r.taken, 1);
  ASSERT_TRUE(r.answer.ok()) << r.answer.status().to_string();
  ASSERT_EQ(r.answer->decisions_size(), 1);
  EXPECT_EQ(r.answer->decisions(0).digest(), "sha256:second");
}

// The client's reconnect backoff stops at 250 ms: a verifier back after 6 s is reached about a quarter of a
// second after it listens (measured 268-282 ms), not after libzmq's default backoff to 2 s (1,485-1,489 ms).
TEST(QueryClient, ReachesAVerifierBackAfterALongAbsenceWithinAQuarterSecond) {
  auto r = ask_across_restart(std::chrono::milliseconds(6000));
  ASSERT_TRUE(r.answer.ok()) << r.answer.status().to_string();
  EXPECT_LT(r.after_listening, std::chrono::milliseconds(1000));
}

TEST(QueryClient, GarbageIsBadInput) {
  QcRouter server([](const pb::Query&) { return std::vector<std::string>{"not a frame"}; });
  auto client = QueryClient::connect(server.endpoint, qc_insecure()).value();
  auto a = client->ask(pb::Query{}, 5000);
  ASSERT_FALSE(a.ok());
  EXPECT_TRUE(a.status().is_bad_input()) << a.status().to_string();
  EXPECT_NE(a.status().message().find("garbage"), std::string::npos) << a.status().to_string();
}

}  // namespace
}  // namespace quorate::wire
