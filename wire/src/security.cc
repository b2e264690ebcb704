// CURVE keys in Z85 and the endpoint rules for plain TCP.
#include "quorate/wire/security.h"

#include <sys/stat.h>
#include <zmq.h>

#include <array>
#include <cstring>

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

Result<std::string> read_key_text(const std::filesystem::path& path) {
  auto text = read_file(path, 4096);
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
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::from_errno(path.string(), errno);
  if ((st.st_mode & 077) != 0) {
    return Status::bad_input(path.string() + ": CURVE secret key file is readable by group or others; chmod 600 it");
  }
  auto secret = read_key_text(path);
  if (!secret.ok()) return secret.status();
  std::array<char, 41> pub{};
  if (zmq_curve_public(pub.data(), secret->c_str()) != 0) {
    return Status::bad_input(path.string() + ": cannot derive the CURVE public key");
  }
  return CurveKeyPair{std::string(pub.data()), *secret};
}

Result<std::string> read_curve_public_key(const std::filesystem::path& path) { return read_key_text(path); }

Result<std::string> resolve_curve_public_key(std::string_view key_or_path, const std::filesystem::path& base_dir) {
  if (check_z85_key(key_or_path).ok()) return std::string(key_or_path);
  std::filesystem::path p(key_or_path);
  if (p.is_relative()) p = base_dir / p;
  return read_curve_public_key(p);
}

bool is_loopback_endpoint(std::string_view endpoint) {
  if (endpoint.starts_with("ipc://") || endpoint.starts_with("inproc://")) return true;
  if (!endpoint.starts_with("tcp://")) return false;
  std::string_view rest = endpoint.substr(6);
  // A connect endpoint may name a source interface: "tcp://src;dst". Judge the destination.
  if (auto semi = rest.find(';'); semi != std::string_view::npos) rest = rest.substr(semi + 1);
  std::string_view host;
  if (rest.starts_with("[")) {
    auto close = rest.find(']');
    if (close == std::string_view::npos) return false;
    host = rest.substr(1, close - 1);
  } else {
    auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = rest.substr(0, colon);
  }
  return host.starts_with("127.") || host == "localhost" || host == "::1";
}

Status check_endpoint(std::string_view endpoint, Transport transport, bool allow_insecure_remote) {
  bool tcp = endpoint.starts_with("tcp://");
  if (!tcp && !endpoint.starts_with("ipc://") && !endpoint.starts_with("inproc://")) {
    return Status::usage("endpoint '" + std::string(endpoint) + "': expected tcp://HOST:PORT, ipc:// or inproc://");
  }
  if (tcp && endpoint.find(':', 6) == std::string_view::npos) {
    return Status::usage("endpoint '" + std::string(endpoint) + "': no port");
  }
  if (transport == Transport::kInsecure && !allow_insecure_remote && !is_loopback_endpoint(endpoint)) {
    return Status::usage("endpoint '" + std::string(endpoint) +
                         "': plain TCP (insecure) is allowed on loopback only unless insecure remote is "
                         "explicitly allowed; configure CURVE keys instead");
  }
  return Status();
}

}  // namespace quorate::wire

namespace quorate::wire {

namespace {
std::filesystem::path under(const std::filesystem::path& base, const std::filesystem::path& p) {
  return p.is_relative() ? base / p : p;
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
    return Status::usage("no CURVE secret key configured; set one (curve_secret_key) or ask for plain TCP "
                         "explicitly (insecure = true / --insecure)");
  }
  s.server_keys = QR_TRY(read_curve_secret_key(under(config.base_dir, config.curve_secret_key)));
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
    return Status::usage("no CURVE secret key configured; set one (curve_secret_key) or ask for plain TCP "
                         "explicitly (insecure = true / --insecure)");
  }
  if (server_key.empty()) return Status::usage("no CURVE public key configured for the server connected to");
  c.client_keys = QR_TRY(read_curve_secret_key(under(config.base_dir, config.curve_secret_key)));
  c.server_public = QR_TRY(resolve_curve_public_key(server_key, config.base_dir));
  return c;
}

}  // namespace quorate::wire
