// The gate in process, over real TLS on 127.0.0.1: AdmissionReviews from an httplib client and from curl
// against a store of real signed attestations.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "gate_support.h"
#include "quorate/core/time.h"
#include "quorate/gate/admission.h"
#include "quorate/gate/decider.h"
#include "quorate/gate/server.h"
#include "quorate/quorum/verifier.h"
#include "quorate/wire/security.h"

namespace quorate::gate_test {
namespace {

int64_t steady_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A store decided under threshold 2 of a, b, c:
//   "good":   a and b attest it                        -> accepted
//   "split":  a attests split-x, b attests split-y      -> rejected (conflict)
//   "lonely": only a attests it                         -> rejected, b and c missing
struct Gate : ::testing::Test {
  testing::ScratchDir dir;
  fs::path store_path = dir / "store.db", cert = dir / "cert.pem", key = dir / "key.pem";
  std::unique_ptr<Roster> roster;
  std::mutex log_mu;  // before the server, which logs until it is destroyed
  std::vector<std::string> log_lines;
  std::unique_ptr<gate::Decider> decider;
  std::unique_ptr<gate::Server> server;

  void SetUp() override {
    roster = std::make_unique<Roster>(dir.path(), "policy.toml", 2);
    make_certificate(cert, key, "gate-one");
    auto verifier = quorum::Verifier::load(dir / "policy.toml").value();
    auto store = quorum::Store::open(store_path).value();
    std::vector<std::string> atts = {roster->attestation("a", commit_id("good"), "good"),
                                     roster->attestation("b", commit_id("good"), "good"),
                                     roster->attestation("a", commit_id("split"), "split-x"),
                                     roster->attestation("b", commit_id("split"), "split-y"),
                                     roster->attestation("a", commit_id("lonely"), "lonely")};
    auto outcomes = quorum::import_attestations(*store, verifier, atts, 1795000000).value();
    for (const auto& o : outcomes) ASSERT_EQ(o.kind, quorum::ImportOutcome::Kind::kStored) << o.reason.to_string();
  }

  void start(gate::GateConfig config = {}, int64_t request_deadline_ms = 30'000) {
    decider = gate::Decider::open({dir / "policy.toml", store_path, std::move(config),
                                   [] { return parse_rfc3339("2026-11-24T00:00:00Z").value(); }})
                  .value();
    gate::ServerOptions o;
    o.cert = cert;
    o.key = key;
    o.steady_us = steady_us;
    o.request_deadline_ms = request_deadline_ms;
    o.log = [this](std::string_view line) {
      std::lock_guard lock(log_mu);
      log_lines.emplace_back(line);
    };
    auto s = gate::Server::start(*decider, o);
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    server = std::move(*s);
  }

  // POSTs `body` to /validate with the in-test client.
  httplib::Result post(const std::string& body) {
    return client(server->port(), cert)->Post("/validate", body, "application/json");
  }
  // The response of an AdmissionReview that must be answered 200.
  json ask(const json& review) {
    auto r = post(review.dump());
    EXPECT_TRUE(r) << httplib::to_string(r.error());
    if (!r) return {};
    EXPECT_EQ(r->status, 200) << r->body;
    auto j = json::parse(r->body, nullptr, false);
    EXPECT_EQ(j.value("apiVersion", ""), "admission.k8s.io/v1");
    EXPECT_EQ(j.value("kind", ""), "AdmissionReview");
    EXPECT_EQ(j["response"].value("uid", ""), review["request"]["uid"]);
    return j["response"];
  }
  std::string message(const json& response) {
    EXPECT_FALSE(response.value("allowed", true));
    json status = response.value("status", json::object());
    EXPECT_EQ(status.value("code", 0), 403);
    return status.value("message", "");
  }
  // curl's status code and body for a POST of the file `body` (made here).
  std::pair<int, std::string> curl(const std::string& bytes) {
    fs::path f = dir / "curl-body";
    testing::spit(f, bytes);
    auto r = testing::run("curl -sS --max-time 20 --cacert " + testing::sh(cert.string()) +
                          " -H 'Content-Type: application/json' --data-binary @" + testing::sh(f.string()) +
                          " -w '\\n%{http_code}' https://127.0.0.1:" + std::to_string(server->port()) + "/validate");
    auto nl = r.out.rfind('\n');
    if (r.exit_code != 0 || nl == std::string::npos) return {-1, r.out};
    return {std::atoi(r.out.c_str() + nl + 1), r.out.substr(0, nl)};
  }
};

TEST_F(Gate, AcceptedDigestIsAllowedFromTheClientAndFromCurl) {
  start();
  json r = ask(pod_review("705ab4f5-6393-11e8-b7cc-42010a800002", {pinned("good")}));
  EXPECT_TRUE(r.value("allowed", false)) << r.dump();
  EXPECT_FALSE(r.contains("status"));
  auto [code, body] = curl(pod_review("uid-curl", {pinned("good")}).dump());
  ASSERT_EQ(code, 200) << body;
  auto j = json::parse(body);
  EXPECT_EQ(j["response"]["uid"], "uid-curl");
  EXPECT_TRUE(j["response"]["allowed"].get<bool>());
}

TEST_F(Gate, UnacceptedDigestIsDeniedWithNoDecision) {
  start();
  std::string m = message(ask(pod_review("u1", {pinned("never-built")})));
  EXPECT_NE(m.find(pinned("never-built")), std::string::npos) << m;
  EXPECT_NE(m.find("no decision"), std::string::npos) << m;
}

TEST_F(Gate, RejectedDigestIsDeniedWithTheDecisionsReason) {
  start();
  std::string m = message(ask(pod_review("u2", {pinned("split-x")})));
  EXPECT_NE(m.find(pinned("split-x")), std::string::npos) << m;
  EXPECT_NE(m.find("rejected: "), std::string::npos) << m;
  EXPECT_NE(m.find("conflict"), std::string::npos) << m;
  m = message(ask(pod_review("u3", {pinned("lonely")})));
  EXPECT_NE(m.find("rejected: "), std::string::npos) << m;
  EXPECT_NE(m.find("missing nodes: b, c"), std::string::npos) << m;
}

// Under on_conflict = "majority" a and b outvote c on the same subject key: c's digest is denied, naming the
// digest the quorum accepted instead.
TEST_F(Gate, MinorityDigestIsDeniedNamingTheDigestTheQuorumAccepted) {
  std::string policy = testing::slurp(dir / "policy.toml");
  policy.replace(policy.find("on_conflict = \"reject\""), 22, "on_conflict = \"majority\"");
  testing::spit(dir / "policy.toml", policy);
  {
    auto verifier = quorum::Verifier::load(dir / "policy.toml").value();
    auto store = quorum::Store::open(store_path).value();
    std::vector<std::string> atts = {roster->attestation("a", commit_id("multi"), "multi-y"),
                                     roster->attestation("b", commit_id("multi"), "multi-y"),
                                     roster->attestation("c", commit_id("multi"), "multi-x")};
    auto outcomes = quorum::import_attestations(*store, verifier, atts, 1795000000).value();
    for (const auto& o : outcomes) ASSERT_EQ(o.kind, quorum::ImportOutcome::Kind::kStored) << o.reason.to_string();
  }
  start();
  std::string m = message(ask(pod_review("minority", {pinned("multi-x")})));
  EXPECT_NE(m.find(pinned("multi-x")), std::string::npos) << m;
  EXPECT_NE(m.find("the quorum accepted " + image_digest("multi-y") + ", not this image"), std::string::npos) << m;
  EXPECT_TRUE(ask(pod_review("majority", {pinned("multi-y")})).value("allowed", false));
}

TEST_F(Gate, TagOnlyReferenceIsDenied) {
  start();
  std::string m = message(ask(pod_review("u4", {"registry.example/hello:1.0"})));
  EXPECT_NE(m.find("registry.example/hello:1.0"), std::string::npos) << m;
  EXPECT_NE(m.find("not pinned by digest"), std::string::npos) << m;
  // A digest of another algorithm, or a malformed one, is no pin either.
  m = message(ask(pod_review("u5", {"hello@sha512:" + std::string(128, 'a')})));
  EXPECT_NE(m.find("not pinned by digest"), std::string::npos) << m;
}

TEST_F(Gate, DeploymentWithOneGoodAndOneBadContainerIsDeniedNamingTheBadOne) {
  start();
  std::string m = message(ask(deployment_review("u6", {pinned("good"), pinned("split-y")})));
  EXPECT_NE(m.find("1 of 2 image(s)"), std::string::npos) << m;
  EXPECT_NE(m.find(pinned("split-y")), std::string::npos) << m;
  EXPECT_NE(m.find("spec.template.spec.containers[1] (c1)"), std::string::npos) << m;
  EXPECT_EQ(m.find(pinned("good")), std::string::npos) << m;
  EXPECT_TRUE(ask(deployment_review("u7", {pinned("good"), pinned("good")})).value("allowed", false));
}

TEST_F(Gate, MalformedBodiesGet400AndTheNextRequestIsAnswered) {
  start();
  json wrong_api = pod_review("u8", {pinned("good")});
  wrong_api["apiVersion"] = "admission.k8s.io/v1beta1";
  json no_uid = pod_review("", {pinned("good")});
  std::string huge = std::string(10 * 1024 * 1024, ' ') + pod_review("u9", {pinned("good")}).dump();
  for (const std::string& body :
       {std::string("{{{ not json"), std::string(), wrong_api.dump(), no_uid.dump(), std::string("[1,2,3]"), huge}) {
    auto r = post(body);
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 400) << body.substr(0, 60) << " -> " << r->body;
    EXPECT_TRUE(ask(pod_review("after", {pinned("good")})).value("allowed", false));
  }
  // The same from curl, the 10 MiB body included.
  for (const std::string& body : {std::string("garbage"), wrong_api.dump(), huge}) {
    auto [code, text] = curl(body);
    EXPECT_EQ(code, 400) << text;
    auto [ok_code, ok_text] = curl(pod_review("after-curl", {pinned("good")}).dump());
    EXPECT_EQ(ok_code, 200) << ok_text;
  }
  std::lock_guard lock(log_mu);
  size_t bad = 0;
  for (const auto& l : log_lines) bad += json::parse(l).value("event", "") == "bad_request" ? 1 : 0;
  EXPECT_EQ(bad, 9u);
}

// cpp-httplib 0.11 buffers a request line, a header line or a chunk-size line without bound, reads a body it
// discards for as long as it comes, and lets a request take as long as each byte comes within 5 s. The gate
// counts what each connection sends where OpenSSL reads the socket: past 64 KiB before the headers end, past
// twice the body limit in a chunked body or sixteen times in one with a Content-Length, or past the request
// deadline, the connection is closed, logged, and the gate goes on answering others.
TEST_F(Gate, EndlessLinesAndBodiesAndSlowRequestsAreCutOff) {
  start();
  const std::string head = "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";
  const std::string spaces(64 * 1024, ' ');
  constexpr size_t kMost = 64u << 20;
  auto closed_reasons = [&] {
    std::lock_guard lock(log_mu);
    std::vector<std::string> why;
    for (const auto& l : log_lines) {
      auto j = json::parse(l);
      if (j.value("event", "") == "connection_closed") {
        EXPECT_EQ(j.value("peer", "").rfind("127.0.0.1:", 0), 0u) << l;
        why.push_back(j.value("why", ""));
      }
    }
    return why;
  };

  {  // A request line that never ends: cut off at 64 KiB (what the sockets' buffers hold on top).
    RawTls c(server->port());
    ASSERT_TRUE(c.connected);
    ASSERT_TRUE(c.write("GET /"));
    size_t sent = c.write_until_refused([&] { return spaces; }, kMost);
    EXPECT_LT(sent, kMost / 2);
    EXPECT_TRUE(c.read_until_closed().has_value());
  }
  EXPECT_TRUE(ask(pod_review("after-line", {pinned("good")})).value("allowed", false));
  {  // An endless chunked body: cut off past 2 MiB and 64 KiB.
    RawTls c(server->port());
    ASSERT_TRUE(c.connected);
    ASSERT_TRUE(c.write(head + "Transfer-Encoding: chunked\r\n\r\n"));
    const std::string chunk = "10000\r\n" + spaces + "\r\n";
    size_t sent = c.write_until_refused([&] { return chunk; }, kMost);
    EXPECT_LT(sent, kMost / 2);
    EXPECT_TRUE(c.read_until_closed().has_value());
  }
  EXPECT_TRUE(ask(pod_review("after-chunks", {pinned("good")})).value("allowed", false));
  {  // A body of a terabyte by its Content-Length: cut off past 16 MiB and 64 KiB.
    RawTls c(server->port());
    ASSERT_TRUE(c.connected);
    ASSERT_TRUE(c.write(head + "Content-Length: 1099511627776\r\n\r\n"));
    size_t sent = c.write_until_refused([&] { return spaces; }, size_t{1} << 30);
    EXPECT_LT(sent, size_t{64} << 20);
    EXPECT_TRUE(c.read_until_closed().has_value());
  }
  EXPECT_TRUE(ask(pod_review("after-length", {pinned("good")})).value("allowed", false));

  // The deadline, 1 s here: a header trickled a byte every 100 ms is cut off 1 s after its first byte (for a
  // connection's first request, its ClientHello).
  start({}, 1'000);
  {
    RawTls c(server->port());
    ASSERT_TRUE(c.connected);
    ASSERT_TRUE(c.write("GET /healthz HTTP/1.1\r\nX-Slow: "));
    const auto t0 = std::chrono::steady_clock::now();
    bool refused = false;
    for (int i = 0; i < 100 && !refused; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      refused = !c.write("a");
    }
    // The gate notices at the first byte past the deadline; the client at its next write or read.
    if (!refused) {
      EXPECT_TRUE(c.read_until_closed().has_value());
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(s, 8.0);
  }
  EXPECT_TRUE(ask(pod_review("after-slow", {pinned("good")})).value("allowed", false));

  EXPECT_EQ(closed_reasons(), (std::vector<std::string>{
                                  "more than 65536 bytes before the request's headers ended",
                                  "the request's body went past 2162688 bytes",
                                  "the request's body went past 16842752 bytes",
                                  "the request was not complete 1 s after its first byte",
                              }));
}

// The budgets count from the gate's last answer on a connection: a keep-alive client (like the API server's)
// sends far more than 64 KiB and for longer than the deadline over one connection, a request at a time, and is
// never cut off.
TEST_F(Gate, AKeepAliveConnectionGetsAFreshBudgetForEachRequest) {
  start({}, 1'000);
  auto cli = client(server->port(), cert);
  cli->set_keep_alive(true);
  json review = pod_review("padded", {pinned("good")});
  review["request"]["object"]["metadata"]["annotations"] = {{"padding", std::string(30 * 1024, 'x')}};
  const std::string body = review.dump();
  const auto t0 = std::chrono::steady_clock::now();
  int answered = 0;
  for (int i = 0; i < 25; ++i) {
    auto r = cli->Post("/validate", body, "application/json");
    ASSERT_TRUE(r) << i << ": " << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 200) << r->body;
    answered += json::parse(r->body)["response"].value("allowed", false) ? 1 : 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2'500));
  EXPECT_EQ(answered, 25);
  EXPECT_EQ(server->handshakes(), 1u);
  std::lock_guard lock(log_mu);
  for (const auto& l : log_lines) EXPECT_EQ(l.find("connection_closed"), std::string::npos) << l;
}

// cpp-httplib 0.11 throws reading a multipart/form-data body through a plain content reader: refused 415 before
// its body is read, the connection closed after the answer.
TEST_F(Gate, MultipartBodiesGet415) {
  start();
  auto r = testing::run("curl -sS --max-time 20 --cacert " + testing::sh(cert.string()) +
                        " -F 'review={}' -w '\\n%{http_code}' https://127.0.0.1:" + std::to_string(server->port()) +
                        "/validate");
  EXPECT_NE(r.out.find("a multipart/form-data body is not served\"}\n415"), std::string::npos) << r.out;
  EXPECT_TRUE(ask(pod_review("after-multipart", {pinned("good")})).value("allowed", false));
}

// cpp-httplib 0.11 bounds only a Content-Length body. A chunked body is read through the gate's own bounded
// reader (too large: 400, as with a Content-Length; the memory it takes: GateProcess.LargeChunkedOrCompressed...),
// a POST with neither length nor chunks is refused 411 before its body is read, and the gate keeps serving.
TEST_F(Gate, ChunkedBodiesAreBoundedAndAPostWithoutLengthGets411) {
  start();
  const std::string base = "https://127.0.0.1:" + std::to_string(server->port());
  // curl sends what it reads from a pipe chunked; `-w` appends the status.
  auto chunked = [&](const std::string& producer, const std::string& path) {
    auto r = testing::run(producer + " | curl -sS --max-time 20 --cacert " + testing::sh(cert.string()) +
                          " -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @- "
                          "-w '\\n%{http_code}' " +
                          base + path);
    auto nl = r.out.rfind('\n');
    return nl == std::string::npos
               ? std::pair<int, std::string>{-1, r.out}
               : std::pair<int, std::string>{std::atoi(r.out.c_str() + nl + 1), r.out.substr(0, nl)};
  };
  auto [code, body] = chunked("head -c 1572864 /dev/zero | tr '\\0' ' '", "/validate");
  EXPECT_EQ(code, 400) << body;
  EXPECT_NE(body.find("body exceeds the limit of 1048576 bytes"), std::string::npos) << body;
  EXPECT_TRUE(ask(pod_review("after-chunked", {pinned("good")})).value("allowed", false));
  // A review of fitting size is read chunked and answered.
  fs::path small = dir / "small.json";
  testing::spit(small, pod_review("chunked-ok", {pinned("good")}).dump());
  std::tie(code, body) = chunked("cat " + testing::sh(small.string()), "/validate");
  ASSERT_EQ(code, 200) << body;
  EXPECT_TRUE(json::parse(body)["response"]["allowed"].get<bool>()) << body;
  // Elsewhere: read the same bounded way, then 404.
  std::tie(code, body) = chunked("head -c 1572864 /dev/zero", "/elsewhere");
  EXPECT_EQ(code, 404) << body;

  // Neither Content-Length nor chunks: cpp-httplib would read until the client closes (openssl s_client -quiet
  // does not; the gate would answer 400 only at its 5 s read timeout).
  auto raw = testing::run(
      "printf 'POST /validate HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nContent-Type: "
      "application/json\\r\\n\\r\\n{}' | timeout 15 openssl s_client -quiet -connect 127.0.0.1:" +
      std::to_string(server->port()) + " 2>/dev/null");
  EXPECT_NE(raw.out.find("HTTP/1.1 411 Length Required"), std::string::npos) << raw.out;
  EXPECT_NE(raw.out.find("a POST without Content-Length is refused"), std::string::npos) << raw.out;
  EXPECT_TRUE(ask(pod_review("after-no-length", {pinned("good")})).value("allowed", false));

  std::lock_guard lock(log_mu);
  std::vector<int> refused;
  for (const auto& l : log_lines) {
    auto j = json::parse(l);
    if (j.value("event", "") == "bad_request") refused.push_back(j.value("status", 0));
  }
  EXPECT_EQ(refused, (std::vector<int>{400, 411}));
}

TEST_F(Gate, StoreReplacedByACorruptFileDeniesNeverAllows) {
  start();
  ASSERT_TRUE(ask(pod_review("before", {pinned("good")})).value("allowed", false));
  // Replaced (a new file renamed over the path), as a careless restore would.
  fs::path tmp = dir / "corrupt.tmp";
  testing::spit(tmp, "SQLite format 3" + std::string(4096, '\x5a'));
  fs::rename(tmp, store_path);
  std::string m = message(ask(pod_review("corrupt", {pinned("good")})));
  EXPECT_NE(m.find("fail closed"), std::string::npos) << m;
  // Overwritten in place.
  testing::spit(store_path, std::string(8192, '\x01'));
  m = message(ask(pod_review("overwritten", {pinned("good")})));
  EXPECT_NE(m.find("fail closed"), std::string::npos) << m;
  // Gone.
  fs::remove(store_path);
  m = message(ask(pod_review("gone", {pinned("good")})));
  EXPECT_NE(m.find("fail closed"), std::string::npos) << m;
}

TEST_F(Gate, HealthzAnswers200) {
  start();
  auto r = client(server->port(), cert)->Get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// HTTPS only, TLS 1.2 or newer: plain HTTP gets no answer, TLS 1.1 the server's protocol_version alert.
TEST_F(Gate, PlainHttpAndTlsBelow12AreRefused) {
  start();
  const std::string port = std::to_string(server->port());
  const std::string curl = "curl -sS --max-time 10 --cacert " + testing::sh(cert.string()) + " ";
  auto plain = testing::run(curl + "http://127.0.0.1:" + port + "/healthz");
  EXPECT_EQ(plain.exit_code, 52) << plain.out;  // empty reply
  EXPECT_EQ(plain.out.find("ok"), std::string::npos) << plain.out;
  // The client allows TLS 1.1 (security level 0); the refusal is the server's alert.
  auto old =
      testing::run(curl + "--tls-max 1.1 --ciphers 'DEFAULT:@SECLEVEL=0' https://127.0.0.1:" + port + "/healthz");
  EXPECT_EQ(old.exit_code, 35) << old.out;
  EXPECT_NE(old.out.find("alert protocol version"), std::string::npos) << old.out;
  auto tls12 = testing::run(curl + "--tlsv1.2 --tls-max 1.2 https://127.0.0.1:" + port + "/healthz");
  EXPECT_EQ(tls12.exit_code, 0) << tls12.out;
  EXPECT_EQ(tls12.out, "ok\n");
}

TEST_F(Gate, OneJsonLogLinePerReview) {
  start();
  (void)ask(pod_review("log-1", {pinned("good")}, "team-a"));
  (void)ask(deployment_review("log-2", {pinned("good"), "hello:latest"}));
  std::lock_guard lock(log_mu);
  std::vector<json> reviews;
  for (const auto& l : log_lines) {
    auto j = json::parse(l, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << l;
    if (j.value("event", "") == "review") reviews.push_back(j);
  }
  ASSERT_EQ(reviews.size(), 2u);
  EXPECT_EQ(reviews[0]["uid"], "log-1");
  EXPECT_EQ(reviews[0]["namespace"], "team-a");
  EXPECT_EQ(reviews[0]["images"][0]["image"], pinned("good"));
  EXPECT_TRUE(reviews[0]["allowed"].get<bool>());
  EXPECT_TRUE(reviews[0]["latency_ms"].is_number());
  EXPECT_EQ(reviews[1]["uid"], "log-2");
  EXPECT_FALSE(reviews[1]["allowed"].get<bool>());
  EXPECT_EQ(reviews[1]["images"].size(), 2u);
}

TEST_F(Gate, NamespaceRulesExcludeOrApplyAStricterPolicy) {
  Roster strict(dir.path(), "strict.toml", 3);
  testing::spit(dir / "gate.toml",
                "[[namespaces]]\nname = \"kube-system\"\nexclude = true\n\n"
                "[[namespaces]]\nname = \"payments\"\npolicy = \"strict.toml\"\n");
  auto config = gate::load_gate_config(dir / "gate.toml");
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  start(*config);
  EXPECT_TRUE(ask(pod_review("ns-1", {"busybox:latest"}, "kube-system")).value("allowed", false));
  EXPECT_TRUE(ask(pod_review("ns-2", {pinned("good")}, "default")).value("allowed", false));
  std::string m = message(ask(pod_review("ns-3", {pinned("good")}, "payments")));
  EXPECT_NE(m.find("missing nodes: c"), std::string::npos) << m;

  testing::spit(dir / "bad.toml", "[[namespaces]]\nname = \"x\"\nexclude = true\npolicy = \"strict.toml\"\n");
  EXPECT_TRUE(gate::load_gate_config(dir / "bad.toml").status().is_bad_input());
  testing::spit(dir / "bad.toml", "[[namespaces]]\nname = \"x\"\nexcluded = true\n");
  EXPECT_NE(gate::load_gate_config(dir / "bad.toml").status().message().find("unknown key"), std::string::npos);
}

TEST_F(Gate, ReloadServesTheRotatedCertificate) {
  start();
  EXPECT_NE(served_subject(server->port()).find("gate-one"), std::string::npos);
  make_certificate(cert, key, "gate-two");
  // Not yet reloaded: the old pair is still served.
  EXPECT_NE(served_subject(server->port()).find("gate-one"), std::string::npos);
  ASSERT_TRUE(server->reload_certificates().ok());
  EXPECT_NE(served_subject(server->port()).find("gate-two"), std::string::npos);
  EXPECT_TRUE(ask(pod_review("after-rotation", {pinned("good")})).value("allowed", false));
  // A broken key leaves the working pair in place.
  testing::spit(key, "not a key");
  EXPECT_FALSE(server->reload_certificates().ok());
  EXPECT_NE(served_subject(server->port()).find("gate-two"), std::string::npos);
}

TEST_F(Gate, GroupReadableKeyIsRefused) {
  fs::permissions(key, fs::perms::group_read, fs::perm_options::add);
  decider = gate::Decider::open({dir / "policy.toml", store_path, {}, [] { return int64_t{1795000000}; }}).value();
  gate::ServerOptions o;
  o.cert = cert;
  o.key = key;
  o.steady_us = steady_us;
  auto s = gate::Server::start(*decider, o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("chmod 600"), std::string::npos) << s.status().message();
}

// examples/kubernetes cannot rot: gate.toml and the strict-policy.toml it names load as `quorate gate --store`
// loads them (examples/policy.toml as --policy, keys generated where the policies expect them); with --quorum
// gate.toml is refused and gate-quorum.toml taken; the webhook configuration fails closed, speaks v1 and posts
// to /validate, and each Deployment names its own gate.toml.
TEST(KubernetesExample, GateConfigsLoadAndTheWebhookFailsClosed) {
  testing::ScratchDir dir;
  const fs::path examples = testing::source_dir() / "examples";
  fs::create_directories(dir / "keys");
  fs::copy_file(examples / "policy.toml", dir / "policy.toml");
  for (const char* name : {"gate.toml", "gate-quorum.toml", "strict-policy.toml"}) {
    fs::copy_file(examples / "kubernetes" / name, dir / name);
  }
  for (const char* id : {"node-a", "node-b", "node-c", "node-d"}) {
    auto pair = attest::generate_key(attest::KeyType::kEd25519).value();
    ASSERT_TRUE(attest::write_key_pair(dir / "keys" / (std::string(id) + ".key.pem"), pair).ok());
  }
  ASSERT_TRUE(quorum::Store::open(dir / "store.db").ok());
  auto clock = [] { return int64_t{1795000000}; };

  auto config = gate::load_gate_config(dir / "gate.toml");
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  ASSERT_EQ(config->namespaces.size(), 2u);
  EXPECT_EQ(config->namespaces[0].name, "kube-system");
  EXPECT_TRUE(config->namespaces[0].exclude);
  EXPECT_EQ(config->namespaces[1].name, "payments");
  EXPECT_EQ(config->namespaces[1].policy, dir / "strict-policy.toml");
  auto strict = quorum::Verifier::load(dir / "strict-policy.toml");
  ASSERT_TRUE(strict.ok()) << strict.status().to_string();
  EXPECT_EQ(strict->policy().rules().threshold, 4);
  EXPECT_EQ(strict->policy().rules().required, (std::vector<std::string>{"node-a", "node-b"}));
  auto with_store = gate::Decider::open({dir / "policy.toml", dir / "store.db", *config, clock});
  EXPECT_TRUE(with_store.ok()) << with_store.status().to_string();

  gate::QuorumSource verifier;
  verifier.endpoint = "tcp://127.0.0.1:1";  // connected lazily: nothing needs to listen
  verifier.security.client_keys = wire::generate_curve_keypair().value();
  verifier.security.server_public = wire::generate_curve_keypair().value().public_z85;
  auto refused = gate::Decider::open({dir / "policy.toml", {}, *config, clock, verifier});
  EXPECT_EQ(refused.status().code(), Code::kUsage) << refused.status().to_string();
  EXPECT_NE(refused.status().message().find("'payments'"), std::string::npos) << refused.status().to_string();
  auto quorum_config = gate::load_gate_config(dir / "gate-quorum.toml");
  ASSERT_TRUE(quorum_config.ok()) << quorum_config.status().to_string();
  auto with_quorum = gate::Decider::open({dir / "policy.toml", {}, *quorum_config, clock, verifier});
  EXPECT_TRUE(with_quorum.ok()) << with_quorum.status().to_string();

  const std::string webhook = testing::slurp(examples / "kubernetes" / "webhook.yaml");
  EXPECT_NE(webhook.find("\n    failurePolicy: Fail\n"), std::string::npos);
  EXPECT_NE(webhook.find("\n    admissionReviewVersions: [\"v1\"]\n"), std::string::npos);
  EXPECT_NE(webhook.find("\n        path: /validate\n"), std::string::npos);
  EXPECT_NE(testing::slurp(examples / "kubernetes" / "gate.yaml").find("- --config=/policy/gate.toml\n"),
            std::string::npos);
  EXPECT_NE(testing::slurp(examples / "kubernetes" / "gate-quorum.yaml").find("- --config=/policy/gate-quorum.toml "),
            std::string::npos);
}

// Where the images of each workload kind are, as the API server sends them.
TEST(AdmissionReview, ImagesOfEveryWorkloadKind) {
  json spec = {{"initContainers", containers({"init@sha256:" + std::string(64, '1')})},
               {"containers", containers({"main@sha256:" + std::string(64, '2')})},
               {"ephemeralContainers", containers({"debug@sha256:" + std::string(64, '3')})}};
  json tmpl = {{"template", {{"spec", spec}}}};
  struct Case {
    std::string group, kind, resource;
    json object_spec;
    std::string prefix;
  };
  std::vector<Case> cases = {
      {"", "Pod", "pods", spec, "spec"},
      {"apps", "Deployment", "deployments", tmpl, "spec.template.spec"},
      {"apps", "StatefulSet", "statefulsets", tmpl, "spec.template.spec"},
      {"apps", "DaemonSet", "daemonsets", tmpl, "spec.template.spec"},
      {"apps", "ReplicaSet", "replicasets", tmpl, "spec.template.spec"},
      {"", "ReplicationController", "replicationcontrollers", tmpl, "spec.template.spec"},
      {"batch", "Job", "jobs", tmpl, "spec.template.spec"},
      {"batch",
       "CronJob",
       "cronjobs",
       {{"schedule", "@hourly"}, {"jobTemplate", {{"spec", tmpl}}}},
       "spec.jobTemplate.spec.template.spec"},
  };
  for (const auto& c : cases) {
    json object = {{"kind", c.kind}, {"metadata", {{"name", "x"}}}, {"spec", c.object_spec}};
    auto r = gate::parse_review(review("uid", c.group, "v1", c.kind, c.resource, "ns", object).dump());
    ASSERT_TRUE(r.ok()) << c.kind << ": " << r.status().to_string();
    ASSERT_EQ(r->images.size(), 3u) << c.kind;
    EXPECT_EQ(r->images[0].where, c.prefix + ".initContainers[0] (c0)");
    EXPECT_EQ(r->images[1].where, c.prefix + ".containers[0] (c0)");
    EXPECT_EQ(r->images[2].where, c.prefix + ".ephemeralContainers[0] (c0)");
    EXPECT_EQ(r->namespace_, "ns");
  }
  // Other kinds and DELETE name no images; a container without an image is malformed.
  json cm = {{"kind", "ConfigMap"}, {"metadata", {{"name", "x"}}}, {"data", {{"k", "v"}}}};
  EXPECT_TRUE(gate::parse_review(review("u", "", "v1", "ConfigMap", "configmaps", "ns", cm).dump())->images.empty());
  json del = review("u", "", "v1", "Pod", "pods", "ns", {{"metadata", {{"name", "x"}}}});
  del["request"]["object"] = nullptr;
  EXPECT_TRUE(gate::parse_review(del.dump())->images.empty());
  json bad = review("u", "", "v1", "Pod", "pods", "ns",
                    {{"metadata", {{"name", "x"}}}, {"spec", {{"containers", {{{"name", "x"}}}}}}});
  EXPECT_NE(gate::parse_review(bad.dump()).status().message().find("spec.containers[0] has no image"),
            std::string::npos);
}

TEST(AdmissionReview, PinnedDigest) {
  const std::string hex(64, 'a');
  EXPECT_EQ(gate::pinned_digest("registry.example:5000/a/b@sha256:" + hex).value(), "sha256:" + hex);
  EXPECT_EQ(gate::pinned_digest("a/b:1.0@sha256:" + hex).value(), "sha256:" + hex);
  EXPECT_FALSE(gate::pinned_digest("a/b:1.0").ok());
  EXPECT_FALSE(gate::pinned_digest("@sha256:" + hex).ok());
  EXPECT_FALSE(gate::pinned_digest("a@sha256:" + hex.substr(1)).ok());
  EXPECT_FALSE(gate::pinned_digest("a@sha256:" + std::string(64, 'A')).ok());
}

}  // namespace
}  // namespace quorate::gate_test
