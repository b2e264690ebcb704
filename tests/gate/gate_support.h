// Shared by the gate tests: signed attestations for a three-node roster, a self-signed certificate made with
// openssl, AdmissionReview documents shaped like the API server's, and an HTTPS client.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "quorate/attest/attest.h"
#include "quorate/attest/keys.h"
#include "quorate/core/sha256.h"
#include "support/sample_build_result.h"
#include "support/test_util.h"

namespace quorate::gate_test {

using nlohmann::json;
namespace fs = std::filesystem;

inline const std::string& kRepo = testing::kSampleRepo;
inline std::string commit_id(const std::string& name) { return testing::sample_commit(name); }
// The image digest a build of `image` attests (its manifest digest), and a reference pinned to it.
inline std::string image_digest(const std::string& image) { return testing::sample_image_digest(image); }
inline std::string pinned(const std::string& image) { return "registry.example/hello@" + image_digest(image); }
inline std::string build_result(const std::string& commit, const std::string& image) {
  return testing::sample_build_result(commit, image);
}

// Keys for nodes a, b, c in `dir` and a policy file naming them (threshold, on_conflict = reject).
struct Roster {
  std::map<std::string, std::unique_ptr<attest::Signer>> signers;
  Roster(const fs::path& dir, const std::string& policy_name, int threshold) {
    std::ofstream policy(dir / policy_name);
    policy << "threshold = " << threshold << "\non_conflict = \"reject\"\n";
    for (const char* id : {"a", "b", "c"}) {
      fs::path key = dir / (std::string(id) + ".key.pem");
      if (!fs::exists(key)) {
        auto pair = attest::generate_key(attest::KeyType::kEd25519).value();
        EXPECT_TRUE(attest::write_key_pair(key, pair).ok());
      }
      signers[id] = attest::signer_from_pem(testing::slurp(key)).value();
      policy << "\n[[nodes]]\nid = \"" << id << "\"\npublic_key = \"" << id << ".key.pem.pub.pem\"\n";
    }
  }
  std::string attestation(const std::string& node, const std::string& commit, const std::string& image) {
    return attest::attest_build_result(build_result(commit, image), *signers.at(node), node).value();
  }
};

// A self-signed certificate for 127.0.0.1 with common name `cn`; the key mode 0600.
inline void make_certificate(const fs::path& cert, const fs::path& key, const std::string& cn) {
  auto r = testing::run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=" + cn +
                        " -addext subjectAltName=IP:127.0.0.1 -keyout " + testing::sh(key.string()) + " -out " +
                        testing::sh(cert.string()));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  fs::permissions(key, fs::perms::owner_read | fs::perms::owner_write);
}

// The subject the server at `port` presents, as openssl s_client sees it ("subject=CN = gate-one").
inline std::string served_subject(int port) {
  auto r = testing::run("openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                        " </dev/null 2>/dev/null | openssl x509 -noout -subject");
  return r.out;
}

// An AdmissionReview as the API server sends it (Kubernetes documentation, "Dynamic Admission Control").
inline json review(const std::string& uid, const std::string& group, const std::string& version,
                   const std::string& kind, const std::string& resource, const std::string& ns, json object) {
  json gvk = {{"group", group}, {"version", version}, {"kind", kind}};
  json gvr = {{"group", group}, {"version", version}, {"resource", resource}};
  std::string name = object["metadata"].value("name", "");
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", uid},
            {"kind", gvk},
            {"resource", gvr},
            {"requestKind", gvk},
            {"requestResource", gvr},
            {"name", name},
            {"namespace", ns},
            {"operation", "CREATE"},
            {"userInfo",
             {{"username", "admin"}, {"uid", "014fbff9a07c"}, {"groups", {"system:authenticated", "my-admin-group"}}}},
            {"object", object},
            {"oldObject", nullptr},
            {"dryRun", false},
            {"options", {{"apiVersion", "meta.k8s.io/v1"}, {"kind", "CreateOptions"}}}}}};
}

inline json containers(const std::vector<std::string>& images) {
  json list = json::array();
  for (size_t i = 0; i < images.size(); ++i) list.push_back({{"name", "c" + std::to_string(i)}, {"image", images[i]}});
  return list;
}

inline json pod_review(const std::string& uid, const std::vector<std::string>& images,
                       const std::string& ns = "default") {
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "hello"}, {"namespace", ns}}},
              {"spec", {{"containers", containers(images)}}}};
  return review(uid, "", "v1", "Pod", "pods", ns, pod);
}

inline json deployment_review(const std::string& uid, const std::vector<std::string>& images) {
  json d = {{"apiVersion", "apps/v1"},
            {"kind", "Deployment"},
            {"metadata", {{"name", "hello"}, {"namespace", "default"}}},
            {"spec",
             {{"replicas", 2},
              {"selector", {{"matchLabels", {{"app", "hello"}}}}},
              {"template",
               {{"metadata", {{"labels", {{"app", "hello"}}}}}, {"spec", {{"containers", containers(images)}}}}}}}};
  return review(uid, "apps", "v1", "Deployment", "deployments", "default", d);
}

// An HTTPS client that trusts only `ca` and checks the host.
inline std::unique_ptr<httplib::SSLClient> client(int port, const fs::path& ca) {
  auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", port);
  c->set_ca_cert_path(ca.c_str());
  c->enable_server_certificate_verification(true);
  c->set_connection_timeout(5, 0);
  c->set_read_timeout(10, 0);
  return c;
}

// A TLS connection to the gate made with OpenSSL directly, for byte streams no HTTP client sends. Every wait is
// bounded by the socket's 10 s timeouts.
struct RawTls {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = nullptr;
  int fd = -1;
  bool connected = false;

  // `handshake`: false to send the ClientHello only; wait_hello() then waits for the ServerHello (the gate has
  // begun the handshake), finish() completes it.
  explicit RawTls(int port, bool handshake = true) {
    ::signal(SIGPIPE, SIG_IGN);  // a write to a connection the gate closed fails instead of killing the test
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (handshake) {
      connected = SSL_connect(ssl) == 1;
      return;
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    int r = SSL_connect(ssl);
    // Under load the gate's whole flight can arrive between the ClientHello's write and the read after it:
    // SSL_connect then completes the handshake (TLS 1.3 needs no further round trip). Begun all the same.
    handshake_done = r == 1;
    hello_sent = handshake_done || SSL_get_error(ssl, r) == SSL_ERROR_WANT_READ;
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  }
  bool hello_sent = false;
  bool handshake_done = false;
  bool wait_hello() {
    if (handshake_done) return true;
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 10'000) == 1;
  }
  bool finish() { return connected = SSL_connect(ssl) == 1; }
  ~RawTls() {
    SSL_free(ssl);
    if (fd >= 0) ::close(fd);
    SSL_CTX_free(ctx);
  }
  bool write(const std::string& bytes) {
    return SSL_write(ssl, bytes.data(), static_cast<int>(bytes.size())) == static_cast<int>(bytes.size());
  }
  // Writes what `next` gives until a write fails or `most` bytes went; the bytes written.
  size_t write_until_refused(const std::function<std::string()>& next, size_t most) {
    size_t sent = 0;
    while (sent < most) {
      std::string bytes = next();
      if (!write(bytes)) break;
      sent += bytes.size();
    }
    return sent;
  }
  // What the gate sent until it closed the connection; nullopt when it did not close it within 10 s.
  std::optional<std::string> read_until_closed() {
    std::string got;
    char buf[4096];
    for (;;) {
      int n = SSL_read(ssl, buf, sizeof buf);
      if (n > 0) {
        got.append(buf, static_cast<size_t>(n));
        continue;
      }
      int e = SSL_get_error(ssl, n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return std::nullopt;  // the timeout
      return got;
    }
  }
};

}  // namespace quorate::gate_test
