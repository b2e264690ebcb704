// node.toml parsing: every key checked, unknown keys refused, paths resolved against the file's directory.
#include "quorate/node/config.h"

#include "quorate/attest/pkcs11.h"
#include "quorate/attest/statement.h"
#include "quorate/builder/source.h"
#include "quorate/config/toml_file.h"
#include "quorate/wire/transport_config.h"

namespace quorate::node {
namespace {

Status read_network(const config::TomlFile& f, const toml::table& net, NodeConfig& c) {
  const std::string s = "network.";
  c.transport =
      QR_TRY(wire::read_transport_config(f, net, s, {"publish", "control", "endpoints_file", "heartbeat_interval_ms"}));
  c.publish_endpoint = QR_TRY(f.string(net, "publish", s, false, c.publish_endpoint));
  c.control_endpoint = QR_TRY(f.string(net, "control", s, false, c.control_endpoint));
  c.endpoints_file = f.resolve(QR_TRY(f.string(net, "endpoints_file", s, false)));
  c.heartbeat_interval_ms = static_cast<int>(QR_TRY(f.integer(net, "heartbeat_interval_ms", s, 1000, 50, 3600000)));
  return Status();
}

Status read_queue(const config::TomlFile& f, const toml::table& q, NodeConfig& c) {
  QR_RETURN_IF_ERROR(f.check_keys(q, "queue.", {"max_pending", "history_batch"}));
  c.max_queue = static_cast<size_t>(QR_TRY(f.integer(q, "max_pending", "queue.", 16, 0, 100000)));
  c.history_batch = static_cast<size_t>(QR_TRY(f.integer(q, "history_batch", "queue.", 256, 1, 100000)));
  return Status();
}

Status read_build(const config::TomlFile& f, const toml::table& b, NodeConfig& c) {
  const std::string s = "build.";
  QR_RETURN_IF_ERROR(f.check_keys(b, s,
                                  {"work_dir", "path", "sandbox", "bwrap", "keep_images", "timeout_seconds",
                                   "max_output_bytes", "image_store", "repositories"}));
  c.repositories = QR_TRY(f.strings(b, "repositories", s));
  for (const auto& r : c.repositories) {
    if (r.empty()) return Status::bad_input(f.path().string() + ": 'build.repositories' holds an empty entry");
  }
  auto image_store = QR_TRY(f.string(b, "image_store", s, false));
  if (!image_store.empty()) c.image_store = f.resolve(image_store);
  c.work_dir = f.resolve(QR_TRY(f.string(b, "work_dir", s, false)));
  c.build_path = QR_TRY(f.strings(b, "path", s));
  auto keep = QR_TRY(f.string(b, "keep_images", s, false));
  if (!keep.empty()) c.keep_images = f.resolve(keep);
  c.sandbox = QR_TRY(f.string(b, "sandbox", s, false, "auto"));
  if (c.sandbox != "auto" && c.sandbox != "bubblewrap" && c.sandbox != "none") {
    return Status::bad_input(f.path().string() + ": 'build.sandbox' must be auto, bubblewrap or none");
  }
  auto bwrap = QR_TRY(f.string(b, "bwrap", s, false));
  if (!bwrap.empty()) c.bwrap = f.resolve(bwrap);
  c.build_timeout_seconds = QR_TRY(f.integer(b, "timeout_seconds", s, c.build_timeout_seconds, 1, 7 * 24 * 3600));
  c.max_output_bytes = static_cast<uint64_t>(
      QR_TRY(f.integer(b, "max_output_bytes", s, static_cast<int64_t>(c.max_output_bytes), 1, int64_t{1} << 50)));
  return Status();
}

// The path part of `repo` (after "scheme://host" for a URL) with %XX escapes decoded: libgit2 decodes them in a
// file:// URL ("file:///srv/git/app/%2e%2e/secret" opens /srv/git/secret) and HTTP servers that normalize a path
// decode them before resolving dot segments; an undecodable escape is kept as it is.
std::string decoded_path(const std::string& repo) {
  size_t path_start = 0;
  if (auto scheme = repo.find("://"); scheme != std::string::npos) path_start = repo.find('/', scheme + 3);
  if (path_start == std::string::npos) return {};
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = path_start; i < repo.size(); ++i) {
    if (repo[i] == '%' && i + 2 < repo.size() && hex(repo[i + 1]) >= 0 && hex(repo[i + 2]) >= 0) {
      out += static_cast<char>(hex(repo[i + 1]) * 16 + hex(repo[i + 2]));
      i += 2;
    } else {
      out += repo[i];
    }
  }
  return out;
}

}  // namespace

Status check_repository(const std::vector<std::string>& allowed, const std::string& repo) {
  const bool url = builder::is_remote(repo);
  // A "." or ".." segment of the path part, also when spelled with escapes (%2e%2e, .%2E, ..%2f) or separated
  // by a backslash (which some servers take for a slash).
  const std::string path = decoded_path(repo);
  for (size_t at = 0; at <= path.size();) {
    size_t end = path.find_first_of("/\\", at);
    if (end == std::string::npos) end = path.size();
    std::string_view segment(path.data() + at, end - at);
    if (segment == "." || segment == "..") {
      return Status::bad_input(
          "repo " + repo + " holds a '" + std::string(segment) + "' path segment" +
          (repo.find_first_of("%\\") != std::string::npos ? " (%XX escapes decoded, '\\' a separator)" : ""));
    }
    at = end + 1;
  }
  if (allowed.empty()) return Status();
  if (!url && (repo.empty() || repo[0] != '/')) {
    return Status::bad_input("repo " + repo +
                             " is a relative path; this node builds only what build.repositories lists");
  }
  for (const auto& a : allowed) {
    if (repo.compare(0, a.size(), a) != 0) continue;
    if (repo.size() == a.size() || a.back() == '/' || repo[a.size()] == '/') return Status();
  }
  return Status::bad_input("repo " + repo + " is not one this node builds (build.repositories)");
}

Result<NodeConfig> load_node_config(const std::filesystem::path& path) {
  auto f = QR_TRY(config::TomlFile::read(path));
  const toml::table& root = f.root();
  NodeConfig c;
  c.config_path = path;
  c.transport.base_dir = f.base_dir();
  QR_RETURN_IF_ERROR(f.check_keys(root, "",
                                  {"node_id", "builder_id", "data_dir", "signing_key", "key_passphrase_env", "network",
                                   "queue", "limits", "build"}));
  c.node_id = QR_TRY(f.string(root, "node_id", "", true));
  if (c.node_id.empty()) return Status::bad_input(path.string() + ": 'node_id' is empty");
  c.builder_id = QR_TRY(f.string(root, "builder_id", "", false));
  if (!c.builder_id.empty() && !attest::is_uri(c.builder_id)) {
    return Status::bad_input(path.string() +
                             ": 'builder_id' is not a URI (scheme:…, for example https://builders.example.org/" +
                             c.node_id + ")");
  }
  c.data_dir = f.resolve(QR_TRY(f.string(root, "data_dir", "", true)));
  // A PKCS#11 URI is kept as written; a file path resolves against the config file's directory.
  std::string key = QR_TRY(f.string(root, "signing_key", "", true));
  c.signing_key = attest::is_pkcs11_uri(key) ? std::filesystem::path(key) : f.resolve(key);
  c.key_passphrase_env = QR_TRY(f.string(root, "key_passphrase_env", "", false));
  // Every section is checked to be a table before any is read.
  const toml::table* net = QR_TRY(f.table(root, "network"));
  const toml::table* queue = QR_TRY(f.table(root, "queue"));
  const toml::table* limits = QR_TRY(f.table(root, "limits"));
  const toml::table* build = QR_TRY(f.table(root, "build"));
  if (net) QR_RETURN_IF_ERROR(read_network(f, *net, c));
  if (queue) QR_RETURN_IF_ERROR(read_queue(f, *queue, c));
  if (limits) c.limits = QR_TRY(wire::read_limits(f, *limits, "limits.", false));
  if (build) QR_RETURN_IF_ERROR(read_build(f, *build, c));
  if (c.work_dir.empty()) c.work_dir = c.data_dir / "work";
  if (c.image_store.empty()) c.image_store = c.data_dir / "images";
  return c;
}

}  // namespace quorate::node
