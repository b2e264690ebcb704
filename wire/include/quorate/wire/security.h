// Transport security: CURVE key pairs (Z85 text, key files) and the rules for when plain TCP is allowed.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "quorate/core/status.h"

namespace quorate::wire {

// A CURVE key pair as 40-character Z85 strings (ZeroMQ's text form of a 32-byte key).
struct CurveKeyPair {
  std::string public_z85;
  std::string secret_z85;
};

// A fresh key pair from libzmq (which draws from the OS random source). internal if libzmq lacks CURVE.
Result<CurveKeyPair> generate_curve_keypair();
// bad_input unless `key` is 40 Z85 characters encoding 32 bytes.
Status check_z85_key(std::string_view key);

// Key files hold one Z85 key on one line. `<prefix>.curve.key` (secret, mode 0600) and `<prefix>.curve.pub`.
Status write_curve_keypair(const CurveKeyPair& keys, const std::filesystem::path& prefix);
// Reads a secret key file and derives its public key; refuses (bad_input) a file readable by group or world.
Result<CurveKeyPair> read_curve_secret_key(const std::filesystem::path& path);
// Reads a public key file, which a config names: a regular file (read_regular_file), so a FIFO never holds a
// daemon's start.
Result<std::string> read_curve_public_key(const std::filesystem::path& path);
// A public key given either inline (40 Z85 characters) or as a key file path (relative to `base_dir`).
Result<std::string> resolve_curve_public_key(std::string_view key_or_path, const std::filesystem::path& base_dir);

enum class Transport {
  kCurve,     // CURVE encryption and authentication; servers check clients against a ZAP allow list
  kInsecure,  // plain TCP: only when asked for explicitly
};

// A server's (bind side's) transport settings.
struct ServerSecurity {
  Transport transport = Transport::kCurve;
  CurveKeyPair server_keys;                  // for kCurve
  std::vector<std::string> allowed_clients;  // Z85 public keys; empty under kCurve: every client is refused
  bool allow_insecure_remote = false;        // under kInsecure, allow binding to non-loopback addresses
};

// A client's (connect side's) transport settings.
struct ClientSecurity {
  Transport transport = Transport::kCurve;
  CurveKeyPair client_keys;   // for kCurve
  std::string server_public;  // for kCurve: the Z85 public key of the server connected to
  bool allow_insecure_remote = false;
};

// Name resolution as check_endpoint uses it: every address (numeric text) `host` resolves to; empty when
// it does not resolve. Tests pass their own to cover names that resolve off loopback.
using Resolver = std::function<std::vector<std::string>(const std::string& host)>;
std::vector<std::string> system_resolve(const std::string& host);

// usage error when `endpoint` is not tcp://HOST:PORT, ipc:// or inproc://, or when `transport` is
// kInsecure and the endpoint is not loopback while allow_insecure_remote is false. Loopback means ipc,
// inproc, or a host that is (a literal address) or resolves to (a name, through `resolve`, default the
// system resolver) only addresses in 127.0.0.0/8 or ::1. A name is never judged by its spelling.
Status check_endpoint(std::string_view endpoint, Transport transport, bool allow_insecure_remote);
// As check_endpoint, and returns the endpoint to use: under the loopback rule, the address that was
// judged in place of the name (so the socket does not look the name up a second time).
Result<std::string> checked_endpoint(std::string_view endpoint, Transport transport, bool allow_insecure_remote,
                                     const Resolver& resolve = {});
// The endpoint with its host replaced by the loopback address it is or resolves to; usage error otherwise.
Result<std::string> resolve_loopback_endpoint(std::string_view endpoint, const Resolver& resolve = {});
// True for loopback endpoints as check_endpoint understands them.
bool is_loopback_endpoint(std::string_view endpoint);

}  // namespace quorate::wire

namespace quorate::wire {

// Transport settings as daemons' config files state them; paths are relative to `base_dir`.
struct TransportConfig {
  bool insecure = false;                     // plain TCP (requires an explicit flag or config key)
  bool allow_insecure_remote = false;        // with insecure: also on non-loopback addresses
  std::filesystem::path curve_secret_key;    // this process's CURVE secret key file
  std::vector<std::string> allowed_clients;  // Z85 keys or key files of clients allowed to connect
  std::filesystem::path base_dir;
  std::string curve_secret_key_origin;  // "<file>:<line>: '<key>'" that named the key file; empty if none
};

// The server side of `config`: usage error when neither insecure nor a CURVE key is configured.
Result<ServerSecurity> make_server_security(const TransportConfig& config);
// The client side of `config` towards a server whose public key is `server_key` (Z85 or key file).
Result<ClientSecurity> make_client_security(const TransportConfig& config, std::string_view server_key);

}  // namespace quorate::wire
