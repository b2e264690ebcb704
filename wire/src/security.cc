// CURVE keys in Z85 and the endpoint rules for plain TCP.
#include "quorate/wire/security.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <zmq.h>

#include <array>
#include <cstring>
#include <optional>

#include "quorate/core/file.h"

namespace quorate::wire {
namespace {

constexpr size_t kZ85KeyLength = 40;
constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\n' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\n' || s[e - 1] == '\r')) --e;
  return std::string(s.substr(b, e - b));
}

// The key in `text`, read from `path`.
Result<std::string> key_text(const std::filesystem::path& path, const Result<std::string>& text) {
  if (!text.ok()) return text.status();
  std::string key = trim(*text);
  Status s = check_z85_key(key);
  if (!s.ok()) return s.with_context(path.string());
  return key;
}

}  // namespace

Status check_z85_key(std::string_view key) {
  if (key.size() != kZ85KeyLength) {
    return Status::bad_input("CURVE key must be 40 Z85 characters, got " + std::to_string(key.size()));
  }
  for (char c : key) {
    if (kZ85Alphabet.find(c) == std::string_view::npos) {
      return Status::bad_input(std::string("CURVE key has a non-Z85 character '") + c + "'");
    }
  }
  std::array<uint8_t, 32> raw{};
  std::string copy(key);
  if (zmq_z85_decode(raw.data(), copy.c_str()) == nullptr) return Status::bad_input("CURVE key does not decode");
  return Status();
}

Result<CurveKeyPair> generate_curve_keypair() {
  std::array<char, 41> pub{}, sec{};
  if (zmq_curve_keypair(pub.data(), sec.data()) != 0) {
    return Status::internal(std::string("zmq_curve_keypair: ") + zmq_strerror(zmq_errno()));
  }
  return CurveKeyPair{std::string(pub.data()), std::string(sec.data())};
}

Status write_curve_keypair(const CurveKeyPair& keys, const std::filesystem::path& prefix) {
  QR_RETURN_IF_ERROR(check_z85_key(keys.public_z85));
  QR_RETURN_IF_ERROR(check_z85_key(keys.secret_z85));
  QR_RETURN_IF_ERROR(write_file_atomic(prefix.string() + ".curve.key", keys.secret_z85 + "\n", 0600));
  return write_file_atomic(prefix.string() + ".curve.pub", keys.public_z85 + "\n", 0644);
}

Result<CurveKeyPair> read_curve_secret_key(const std::filesystem::path& path) {
  auto secret = key_text(path, read_secret_file(path, 4096, "CURVE secret key file"));
  if (!secret.ok()) return secret.status();
  std::array<char, 41> pub{};
  if (zmq_curve_public(pub.data(), secret->c_str()) != 0) {
    return Status::bad_input(path.string() + ": cannot derive the CURVE public key");
  }
  return CurveKeyPair{std::string(pub.data()), *secret};
}

Result<std::string> read_curve_public_key(const std::filesystem::path& path) {
  return key_text(path, read_regular_file(path, 4096));
}

Result<std::string> resolve_curve_public_key(std::string_view key_or_path, const std::filesystem::path& base_dir) {
  if (check_z85_key(key_or_path).ok()) return std::string(key_or_path);
  std::filesystem::path p(key_or_path);
  if (p.is_relative()) p = base_dir / p;
  return read_curve_public_key(p);
}

namespace {

struct TcpEndpoint {
  std::string prefix;  // "tcp://" plus an optional "source;" part, kept as given
  std::string host;    // without IPv6 brackets
  std::string port;    // as given ("*" for a wildcard bind)
};

// tcp://[src;]HOST:PORT split into its parts; nullopt when malformed.
std::optional<TcpEndpoint> split_tcp(std::string_view endpoint) {
  if (!endpoint.starts_with("tcp://")) return std::nullopt;
  TcpEndpoint e;
  std::string_view rest = endpoint.substr(6);
  e.prefix = "tcp://";
  // A connect endpoint may name a source interface: "tcp://src;dst". Judge the destination.
  if (auto semi = rest.find(';'); semi != std::string_view::npos) {
    e.prefix += std::string(rest.substr(0, semi + 1));
    rest = rest.substr(semi + 1);
  }
  if (rest.starts_with("[")) {
    auto close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') return std::nullopt;
    e.host = std::string(rest.substr(1, close - 1));
    e.port = std::string(rest.substr(close + 2));
  } else {
    auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    e.host = std::string(rest.substr(0, colon));
    e.port = std::string(rest.substr(colon + 1));
  }
  if (e.host.empty() || e.port.empty()) return std::nullopt;
  return e;
}

bool loopback_v4(const in_addr& a) { return (ntohl(a.s_addr) >> 24) == 127; }
bool loopback_v6(const in6_addr& a) {
  if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
  if (IN6_IS_ADDR_V4MAPPED(&a)) {
    in_addr v4{};
    std::memcpy(&v4, a.s6_addr + 12, 4);
    return loopback_v4(v4);
  }
  return false;
}

}  // namespace

std::vector<std::string> system_resolve(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) return {};
  std::vector<std::string> out;
  for (addrinfo* p = res; p != nullptr; p = p->ai_next) {
    std::array<char, INET6_ADDRSTRLEN> buf{};
    const void* src = nullptr;
    if (p->ai_family == AF_INET) src = &reinterpret_cast<sockaddr_in*>(p->ai_addr)->sin_addr;
    if (p->ai_family == AF_INET6) src = &reinterpret_cast<sockaddr_in6*>(p->ai_addr)->sin6_addr;
    if (src != nullptr && ::inet_ntop(p->ai_family, src, buf.data(), buf.size()) != nullptr)
      out.emplace_back(buf.data());
  }
  ::freeaddrinfo(res);
  return out;
}

Result<std::string> resolve_loopback_endpoint(std::string_view endpoint, const Resolver& resolve) {
  if (endpoint.starts_with("ipc://") || endpoint.starts_with("inproc://")) return std::string(endpoint);
  auto e = split_tcp(endpoint);
  if (!e) return Status::usage("endpoint '" + std::string(endpoint) + "': expected tcp://HOST:PORT");
  // A literal address is judged as it is; a name is resolved, and every address it resolves to must be
  // loopback (a name such as 127.attacker.example is a DNS name like any other).
  std::vector<std::string> addresses;
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, e->host.c_str(), &v4) == 1 || ::inet_pton(AF_INET6, e->host.c_str(), &v6) == 1) {
    addresses.push_back(e->host);
  } else {
    addresses = resolve ? resolve(e->host) : system_resolve(e->host);
    if (addresses.empty()) {
      return Status::usage("endpoint '" + std::string(endpoint) + "': host '" + e->host +
                           "' does not resolve, so it cannot be shown to be loopback");
    }
  }
  std::string chosen;
  for (const auto& a : addresses) {
    bool ok = false, is_v4 = false;
    if (::inet_pton(AF_INET, a.c_str(), &v4) == 1) {
      ok = loopback_v4(v4);
      is_v4 = true;
    } else if (::inet_pton(AF_INET6, a.c_str(), &v6) == 1) {
      ok = loopback_v6(v6);
    }
    if (!ok) {
      return Status::usage("endpoint '" + std::string(endpoint) + "': host '" + e->host + "' is " +
                           (a == e->host ? std::string("not a loopback address") : "resolved to " + a) +
                           ", not loopback (127.0.0.0/8 or ::1)");
    }
    // Prefer an IPv4 address: ZeroMQ sockets speak IPv6 only when asked to.
    if (chosen.empty() || (is_v4 && chosen.find(':') != std::string::npos)) chosen = a;
  }
  // The caller connects to the address judged here, never to the name again (no second lookup to race).
  if (chosen.find(':') != std::string::npos) chosen = "[" + chosen + "]";
  return e->prefix + chosen + ":" + e->port;
}

bool is_loopback_endpoint(std::string_view endpoint) { return resolve_loopback_endpoint(endpoint).ok(); }

Result<std::string> checked_endpoint(std::string_view endpoint, Transport transport, bool allow_insecure_remote,
                                     const Resolver& resolve) {
  bool tcp = endpoint.starts_with("tcp://");
  if (!tcp && !endpoint.starts_with("ipc://") && !endpoint.starts_with("inproc://")) {
    return Status::usage("endpoint '" + std::string(endpoint) + "': expected tcp://HOST:PORT, ipc:// or inproc://");
  }
  if (tcp && endpoint.find(':', 6) == std::string_view::npos) {
    return Status::usage("endpoint '" + std::string(endpoint) + "': no port");
  }
  if (transport == Transport::kInsecure && !allow_insecure_remote) {
    auto resolved = resolve_loopback_endpoint(endpoint, resolve);
    if (!resolved.ok()) {
      return Status::usage(resolved.status().message() +
                           "; plain TCP (insecure) is allowed on loopback only unless insecure remote is "
                           "explicitly allowed; configure CURVE keys instead");
    }
    return *resolved;
  }
  return std::string(endpoint);
}

Status check_endpoint(std::string_view endpoint, Transport transport, bool allow_insecure_remote) {
  return checked_endpoint(endpoint, transport, allow_insecure_remote).status();
}

}  // namespace quorate::wire

namespace quorate::wire {

namespace {
std::filesystem::path under(const std::filesystem::path& base, const std::filesystem::path& p) {
  return p.is_relative() ? base / p : p;
}
// The configured secret key; an error reading it names where the config file set it.
Result<CurveKeyPair> read_configured_secret_key(const TransportConfig& config) {
  auto keys = read_curve_secret_key(under(config.base_dir, config.curve_secret_key));
  if (!keys.ok() && !config.curve_secret_key_origin.empty()) {
    return keys.status().with_context(config.curve_secret_key_origin);
  }
  return keys;
}
}  // namespace

Result<ServerSecurity> make_server_security(const TransportConfig& config) {
  ServerSecurity s;
  s.allow_insecure_remote = config.allow_insecure_remote;
  if (config.insecure) {
    s.transport = Transport::kInsecure;
    return s;
  }
  if (config.curve_secret_key.empty()) {
    return Status::usage(
        "no CURVE secret key configured; set one (curve_secret_key) or ask for plain TCP "
        "explicitly (insecure = true / --insecure)");
  }
  s.server_keys = QR_TRY(read_configured_secret_key(config));
  for (const auto& k : config.allowed_clients) {
    s.allowed_clients.push_back(QR_TRY(resolve_curve_public_key(k, config.base_dir)));
  }
  return s;
}

Result<ClientSecurity> make_client_security(const TransportConfig& config, std::string_view server_key) {
  ClientSecurity c;
  c.allow_insecure_remote = config.allow_insecure_remote;
  if (config.insecure) {
    c.transport = Transport::kInsecure;
    return c;
  }
  if (config.curve_secret_key.empty()) {
    return Status::usage(
        "no CURVE secret key configured; set one (curve_secret_key) or ask for plain TCP "
        "explicitly (insecure = true / --insecure)");
  }
  if (server_key.empty()) return Status::usage("no CURVE public key configured for the server connected to");
  c.client_keys = QR_TRY(read_configured_secret_key(config));
  c.server_public = QR_TRY(resolve_curve_public_key(server_key, config.base_dir));
  return c;
}

}  // namespace quorate::wire
