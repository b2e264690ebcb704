// Server: cpp-httplib's SSLServer with a certificate callback, so that a reload swaps the pair under a lock
// without touching the SSL_CTX that connections are created from, and a callback on each connection's socket
// that bounds what a request may send and for how long (RequestBudget).
#include "quorate/gate/server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <strings.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "quorate/core/file.h"
#include "quorate/core/json.h"

namespace quorate::gate {
namespace {

using nlohmann::json;

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// A certificate with its chain and its private key, as read from the files at one moment.
struct Credentials {
  X509* cert = nullptr;
  STACK_OF(X509) * chain = nullptr;
  EVP_PKEY* key = nullptr;
  ~Credentials() {
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
  }
};

Result<std::shared_ptr<Credentials>> load_credentials(const std::filesystem::path& cert_path,
                                                      const std::filesystem::path& key_path) {
  auto key_pem = QR_TRY(read_secret_file(key_path, 64u << 10, "TLS private key file"));
  auto creds = std::make_shared<Credentials>();
  BIO* bio = BIO_new_file(cert_path.c_str(), "r");
  if (!bio) return Status::not_found(cert_path.string() + ": cannot read certificate file");
  creds->cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  if (!creds->cert) {
    BIO_free(bio);
    return Status::bad_input(cert_path.string() + ": no PEM certificate: " + openssl_error());
  }
  creds->chain = sk_X509_new_null();
  while (X509* extra = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) sk_X509_push(creds->chain, extra);
  ERR_clear_error();  // the end of the file reads as an error
  BIO_free(bio);
  bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  if (!bio) return Status::internal("cannot allocate a memory BIO: " + openssl_error());
  creds->key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  OPENSSL_cleanse(key_pem.data(), key_pem.size());
  if (!creds->key) return Status::bad_input(key_path.string() + ": no PEM private key: " + openssl_error());
  if (X509_check_private_key(creds->cert, creds->key) != 1) {
    ERR_clear_error();
    return Status::bad_input(key_path.string() + ": does not match the certificate in " + cert_path.string());
  }
  return creds;
}

// What one connection has sent since the gate last answered it, counted where OpenSSL reads the socket (a
// callback on the connection's socket BIO; cpp-httplib 0.11 bounds neither a line nor a discarded body, nor
// the time a request may take). Once a limit is passed the connection is spent: every later read fails, so
// cpp-httplib closes it after answering what it already read, if anything.
struct RequestBudget {
  std::function<int64_t()> steady_us;
  std::function<void(const std::string&)> on_spent;  // logs why
  int64_t deadline_us = 0;
  uint64_t read = 0;  // bytes since the last answer
  uint64_t limit = kMaxHeadBytes;
  uint64_t allowance = 0;   // once in_body: what the body may take
  bool in_body = false;     // the request's headers have been read
  int64_t started_us = -1;  // the first read since the last answer
  bool spent = false;
  // Server::stop waits for the connections accepted and not yet served (Impl::unserved): this one counts there
  // until its first request's headers are read, it is answered, or it is closed; `served` when it does not.
  std::atomic<int>* unserved = nullptr;
  bool served = true;

  void serving() {
    if (served) return;
    served = true;
    unserved->fetch_sub(1, std::memory_order_acq_rel);
  }
  void spend(const std::string& why) {
    if (spent) return;
    spent = true;
    on_spent(why);
  }

  // Takes n bytes just read; false when they pass a limit (and the connection is spent).
  bool admit(size_t n) {
    const int64_t now = steady_us();
    if (started_us < 0) started_us = now;
    read += n;
    if (read > limit) {
      spend(in_body ? "the request's body went past " + std::to_string(allowance) + " bytes"
                    : "more than " + std::to_string(limit) + " bytes before the request's headers ended");
    } else if (now - started_us > deadline_us) {
      spend("the request was not complete " + std::to_string(deadline_us / 1'000'000) + " s after its first byte");
    }
    return !spent;
  }
  void headers_read(uint64_t body_allowance) {
    serving();
    in_body = true;
    allowance = body_allowance;
    limit = read > UINT64_MAX - allowance ? UINT64_MAX : read + allowance;
  }
  void answered() {
    serving();
    if (spent) return;
    read = 0;
    limit = kMaxHeadBytes;
    in_body = false;
    started_us = -1;
  }
};

// The budget of the connection this thread serves: cpp-httplib runs a connection's handshake, reads, handlers
// and answers on one thread of its pool, from accept to close (its TaskQueue job).
thread_local RequestBudget* this_connection = nullptr;
// Set while this thread runs a job of CountingPool whose connection still counts in Impl::unserved and has no
// budget yet to hand the count to.
thread_local bool this_job_unserved = false;

long on_socket_io(BIO* bio, int oper, const char*, size_t, int, long, int ret, size_t* processed) {
  auto* budget = reinterpret_cast<RequestBudget*>(BIO_get_callback_arg(bio));
  if (budget == nullptr) return ret;
  switch (oper) {
    case BIO_CB_FREE:
      if (this_connection == budget) this_connection = nullptr;
      BIO_set_callback_arg(bio, nullptr);
      budget->serving();
      delete budget;
      return 1;
    case BIO_CB_READ:
      this_connection = budget;
      if (!budget->spent) return ret;
      BIO_clear_retry_flags(bio);
      return -1;
    case BIO_CB_READ | BIO_CB_RETURN:
      if (ret <= 0 || processed == nullptr || budget->admit(*processed)) return ret;
      *processed = 0;
      BIO_clear_retry_flags(bio);
      return -1;
    default:
      return ret;
  }
}

// cpp-httplib's thread pool, with a fixed number of threads (its default grows with the machine's cores, and
// with it the memory that lines buffered up to a RequestBudget's limits can take), counting each connection
// from its accept (a job) until its first request is served: cpp-httplib's stop() closes unanswered a
// connection still queued, or whose handshake is under way, when it stops.
class CountingPool : public httplib::TaskQueue {
 public:
  CountingPool(std::atomic<int>& unserved, size_t threads) : unserved_(unserved), pool_(threads) {}
  void enqueue(std::function<void()> fn) override {
    unserved_.fetch_add(1, std::memory_order_acq_rel);
    pool_.enqueue([this, fn = std::move(fn)] {
      this_job_unserved = true;
      fn();
      if (std::exchange(this_job_unserved, false)) unserved_.fetch_sub(1, std::memory_order_acq_rel);
    });
  }
  void shutdown() override { pool_.shutdown(); }

 private:
  std::atomic<int>& unserved_;
  httplib::ThreadPool pool_;
};

std::string peer_of(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (fd < 0 || ::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "";
  char host[INET6_ADDRSTRLEN] = {};
  int port = 0;
  if (addr.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

// How long Server::stop waits for connections that have not sent their first request yet.
constexpr auto kStopWait = std::chrono::seconds(5);
// Threads serving connections, one connection each at a time.
constexpr size_t kServerThreads = 8;

int ctx_server_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

}  // namespace

struct Server::Impl {
  Decider* decider = nullptr;
  ServerOptions options;
  std::mutex creds_mu;
  std::shared_ptr<Credentials> creds;
  std::unique_ptr<httplib::SSLServer> http;
  std::thread thread;
  int port = 0;
  std::once_flag stopped;
  std::atomic<bool> listen_returned{false};
  std::atomic<uint64_t> handshakes{0};
  std::atomic<int> unserved{0};  // RequestBudget::unserved

  std::shared_ptr<Credentials> current() {
    std::lock_guard lock(creds_mu);
    return creds;
  }

  // Called by OpenSSL as a connection's first handshake starts, before it reads the ClientHello: puts the
  // connection's reads under a RequestBudget.
  static void on_handshake_info(const SSL* ssl, int where, int) {
    if ((where & SSL_CB_HANDSHAKE_START) == 0) return;
    BIO* bio = SSL_get_rbio(ssl);
    if (bio == nullptr || BIO_get_callback_arg(bio) != nullptr) return;
    auto* self = static_cast<Impl*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_server_index()));
    if (self == nullptr) return;
    auto* budget = new RequestBudget;
    budget->unserved = &self->unserved;
    budget->served = !std::exchange(this_job_unserved, false);  // the budget takes the job's count over
    budget->steady_us = self->options.steady_us;
    budget->deadline_us = self->options.request_deadline_ms * 1000;
    const int fd = static_cast<int>(BIO_get_fd(bio, nullptr));
    budget->on_spent = [self, fd](const std::string& why) {
      self->log({{"event", "connection_closed"}, {"peer", peer_of(fd)}, {"why", why}});
    };
    BIO_set_callback_arg(bio, reinterpret_cast<char*>(budget));
    BIO_set_callback_ex(bio, &on_socket_io);
    this_connection = budget;
  }

  // Called by OpenSSL for each handshake: the pair loaded last.
  static int on_certificate(SSL* ssl, void* arg) {
    auto* self = static_cast<Impl*>(arg);
    self->handshakes.fetch_add(1, std::memory_order_relaxed);
    auto c = self->current();
    if (!c) return 0;
    return SSL_use_cert_and_key(ssl, c->cert, c->key, c->chain, 1) == 1 ? 1 : 0;
  }

  void log(const json& j) {
    if (options.log) options.log(display_json(j, -1));  // names from the reviewed object: no raw DEL or C1
  }
  double elapsed_ms(int64_t start) const { return static_cast<double>(options.steady_us() - start) / 1000.0; }

  void bad_request(httplib::Response& res, const std::string& error, int64_t start) {
    res.status = 400;
    res.set_content(json({{"error", error}}).dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
    log({{"event", "bad_request"}, {"status", 400}, {"error", error}, {"latency_ms", elapsed_ms(start)}});
  }

  // The body through cpp-httplib's content reader, which 0.11 does not bound for a chunked body or one without
  // Content-Length (set_payload_max_length applies to a Content-Length only): at most max_body bytes are kept,
  // the rest is read and discarded, so memory stays bounded and the connection stays in step (the client gets
  // its 400 before it is done sending), up to the request's budget (body_allowance); past it the read fails
  // and the connection is closed. A compressed body is read no further than max_body once inflated (1 MiB of
  // gzip can inflate to a gigabyte, all CPU to discard): the connection is closed after the answer. `too_large`
  // when there was more (or cpp-httplib refused the Content-Length, 413); false when the body could not be read.
  bool read_body(const httplib::Request& req, const httplib::ContentReader& reader, httplib::Response& res,
                 std::string& body, bool& too_large) {
    const std::string encoding = req.get_header_value("Content-Encoding");
    const bool compressed = !encoding.empty() && ::strcasecmp(encoding.c_str(), "identity") != 0;
    too_large = false;
    bool read = reader([&](const char* data, size_t n) {
      if (!too_large && n <= options.max_body - body.size()) {
        body.append(data, n);
      } else if (!too_large) {
        too_large = true;
        std::string().swap(body);
        if (compressed && this_connection != nullptr) {
          this_connection->spend("the " + encoding + " body inflated past " + std::to_string(options.max_body) +
                                 " bytes");
          return false;
        }
      }
      return true;
    });
    too_large = too_large || res.status == 413;
    return read || too_large;
  }

  // Bytes the request may send after its headers (read as cpp-httplib 0.11 decides how to read a body).
  uint64_t body_allowance(const httplib::Request& req) const {
    if (::strcasecmp(req.get_header_value("Transfer-Encoding").c_str(), "chunked") == 0) {
      return kChunkedAllowance(options.max_body);
    }
    const uint64_t length = std::strtoull(req.get_header_value("Content-Length").c_str(), nullptr, 10);
    return std::min(length, kLengthAllowance(options.max_body) - kMaxHeadBytes) + kMaxHeadBytes;
  }

  // Called before cpp-httplib reads a body: true, with the answer in `res`, for the requests whose body it would
  // read until the client closes: a POST, PUT, PATCH or DELETE with neither Content-Length nor Transfer-Encoding
  // (411: HTTP/1.1 gives it no body, the bytes after it are the next request); the method PRI (400, HTTP/2's
  // preface); and a multipart/form-data body (415: cpp-httplib 0.11 would fail on it with an exception). The
  // connection of the last two is closed after the answer, their bytes unread.
  bool refuse_unbounded_body(const httplib::Request& req, httplib::Response& res) {
    std::string error;
    if (req.method == "PRI") {
      res.status = 400;
      error = "method PRI is not served";
    } else if ((req.method == "POST" || req.method == "PUT" || req.method == "PATCH" || req.method == "DELETE") &&
               !req.has_header("Content-Length") && !req.has_header("Transfer-Encoding")) {
      res.status = 411;
      error = "a " + req.method + " without Content-Length is refused";
    } else if (req.is_multipart_form_data()) {
      res.status = 415;
      error = "a multipart/form-data body is not served";
    } else {
      return false;
    }
    if (res.status != 411 && this_connection != nullptr) this_connection->spend(error);
    res.set_content(json({{"error", error}}).dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
    log({{"event", "bad_request"}, {"status", res.status}, {"error", error}});
    return true;
  }

  void validate(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
    const int64_t start = options.steady_us();
    std::string body;
    bool too_large = false;
    if (!read_body(req, reader, res, body, too_large)) return bad_request(res, "the body could not be read", start);
    if (too_large) {
      return bad_request(res, "body exceeds the limit of " + std::to_string(options.max_body) + " bytes", start);
    }
    auto review = parse_review(body);
    if (!review.ok()) return bad_request(res, review.status().message(), start);
    Verdict v;
    try {
      v = decider->decide(*review);
    } catch (const std::exception& e) {
      v = Verdict{};
      v.message = std::string("quorate gate: internal error, denied (fail closed): ") + e.what();
    }
    res.status = 200;
    res.set_content(response_json(review->uid, v.allowed, v.message), "application/json");
    json images = json::array();
    for (const auto& i : v.images) {
      images.push_back({{"where", i.where}, {"image", i.image}, {"allowed", i.allowed}, {"why", i.why}});
    }
    json line = {{"event", "review"},    {"uid", review->uid},   {"namespace", review->namespace_},
                 {"kind", review->kind}, {"name", review->name}, {"operation", review->operation},
                 {"images", images},     {"allowed", v.allowed}, {"latency_ms", elapsed_ms(start)}};
    if (v.excluded) line["excluded"] = true;
    if (!v.allowed) line["message"] = v.message;
    log(line);
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { stop(); }
int Server::port() const { return impl_->port; }
uint64_t Server::handshakes() const { return impl_->handshakes.load(std::memory_order_relaxed); }

Result<std::unique_ptr<Server>> Server::start(Decider& decider, ServerOptions options) {
  if (options.cert.empty() || options.key.empty()) return Status::usage("the gate needs a TLS certificate and key");
  auto impl = std::make_unique<Impl>();
  impl->decider = &decider;
  impl->options = std::move(options);
  if (!impl->options.steady_us) return Status::usage("ServerOptions.steady_us is required");
  if (impl->options.request_deadline_ms <= 0) return Status::usage("ServerOptions.request_deadline_ms must be > 0");
  impl->creds = QR_TRY(load_credentials(impl->options.cert, impl->options.key));
  Impl* self = impl.get();
  impl->http = std::make_unique<httplib::SSLServer>([self](SSL_CTX& ctx) {
    SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
    SSL_CTX_set_cert_cb(&ctx, &Impl::on_certificate, self);
    if (SSL_CTX_set_ex_data(&ctx, ctx_server_index(), self) != 1) return false;
    SSL_CTX_set_info_callback(&ctx, &Impl::on_handshake_info);
    return true;
  });
  if (!impl->http->is_valid()) return Status::internal("cannot create the TLS context: " + openssl_error());
  auto& http = *impl->http;
  http.set_payload_max_length(impl->options.max_body);
  // Without TCP_NODELAY a response written in two parts waits for the client's delayed ACK (40 ms on Linux).
  http.set_tcp_nodelay(true);
  http.set_keep_alive_timeout(2);
  http.set_keep_alive_max_count(std::max<size_t>(1, impl->options.keep_alive_max_requests));
  http.set_read_timeout(5, 0);
  http.set_write_timeout(5, 0);
  http.Post("/validate", [self](const httplib::Request& req, httplib::Response& res,
                                const httplib::ContentReader& reader) { self->validate(req, res, reader); });
  // Every other request with a body is read the same bounded way and answered 404 (cpp-httplib would read it
  // into memory whole before finding no route). PRI is the one method it reads a body for with no such handler.
  auto not_found = [self](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
    std::string body;
    bool too_large = false;
    (void)self->read_body(req, reader, res, body, too_large);
    res.status = 404;
  };
  http.Post(".*", not_found).Put(".*", not_found).Patch(".*", not_found).Delete(".*", not_found);
  http.set_pre_routing_handler([self](const httplib::Request& req, httplib::Response& res) {
    if (this_connection != nullptr) this_connection->headers_read(self->body_allowance(req));
    return self->refuse_unbounded_body(req, res) ? httplib::Server::HandlerResponse::Handled
                                                 : httplib::Server::HandlerResponse::Unhandled;
  });
  // An answer on a spent connection says it is the last.
  http.set_post_routing_handler([](const httplib::Request&, httplib::Response& res) {
    if (this_connection == nullptr || !this_connection->spent) return;
    res.headers.erase("Keep-Alive");
    res.set_header("Connection", "close");
  });
  // Called after each answer is written: the connection's next request starts with a fresh budget. (The
  // budgets depend on it: another logger must call answered() too.)
  http.set_logger([](const httplib::Request&, const httplib::Response&) {
    if (this_connection != nullptr) this_connection->answered();
  });
  http.new_task_queue = [self] { return new CountingPool(self->unserved, kServerThreads); };
  http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  http.set_exception_handler([self](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    res.set_content("{\"error\":\"internal error\"}", "application/json");
    self->log({{"event", "internal_error"}});
  });
  if (impl->options.port == 0) {
    impl->port = http.bind_to_any_port(impl->options.host);
  } else {
    impl->port = http.bind_to_port(impl->options.host, impl->options.port) ? impl->options.port : -1;
  }
  if (impl->port <= 0) {
    return Status::io("cannot listen on " + impl->options.host + ":" + std::to_string(impl->options.port));
  }
  impl->thread = std::thread([self] {
    self->http->listen_after_bind();
    self->listen_returned = true;
  });
  self->log({{"event", "gate_started"}, {"listen", impl->options.host + ":" + std::to_string(impl->port)}});
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Status Server::reload_certificates() {
  auto loaded = load_credentials(impl_->options.cert, impl_->options.key);
  if (!loaded.ok()) {
    impl_->log({{"event", "certificate_reload_failed"}, {"error", loaded.status().to_string()}});
    return loaded.status();
  }
  {
    std::lock_guard lock(impl_->creds_mu);
    impl_->creds = *loaded;
  }
  impl_->log({{"event", "certificate_reloaded"}, {"cert", impl_->options.cert.string()}});
  return Status();
}

void Server::stop() {
  std::call_once(impl_->stopped, [this] {
    // httplib's stop() does nothing before its loop runs: wait (bounded) for the loop of a server just started.
    for (int i = 0; i < 500 && impl_->http && !impl_->http->is_running() && !impl_->listen_returned; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    // cpp-httplib's stop() ends every connection at the top of its request loop, so one accepted and not yet
    // serving its first request (queued for a thread, or in its handshake) would be closed unanswered, though
    // the client may have sent the request already (a review arriving as the gate is told to stop). Wait for
    // those, a bounded time: new connections keep coming until the listening socket closes, and a silent one
    // is cut at its read timeout or its RequestBudget deadline anyway.
    const auto wait_start = std::chrono::steady_clock::now();
    auto waited = std::chrono::steady_clock::duration::zero();
    while (impl_->unserved.load(std::memory_order_acquire) > 0 && waited < kStopWait) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      waited = std::chrono::steady_clock::now() - wait_start;
    }
    const int unserved = impl_->unserved.load(std::memory_order_acquire);
    if (impl_->http) impl_->http->stop();
    if (impl_->thread.joinable()) impl_->thread.join();
    json line = {{"event", "gate_stopped"}};
    if (waited > std::chrono::steady_clock::duration::zero()) {
      line["waited_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(waited).count();
    }
    // At most these were closed unanswered (one whose handshake ended as stop() began is still served).
    if (unserved > 0) line["unserved_connections"] = unserved;
    impl_->log(line);
  });
}

}  // namespace quorate::gate
