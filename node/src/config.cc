// node.toml parsing: every key checked, unknown keys refused, paths resolved against the file's directory.
#include "quorate/node/config.h"

#include <set>

#include <toml++/toml.h>

namespace quorate::node {
namespace {

std::string where(const std::filesystem::path& file, const toml::node& n) {
  return file.string() + ":" + std::to_string(n.source().begin.line);
}

Status check_keys(const std::filesystem::path& file, const toml::table& t, const std::string& section,
                  const std::set<std::string>& allowed) {
  for (const auto& [k, v] : t) {
    if (!allowed.count(std::string(k.str()))) {
      return Status::bad_input(where(file, v) + ": unknown key '" + section + std::string(k.str()) + "'");
    }
  }
  return Status();
}

Result<std::string> get_string(const std::filesystem::path& file, const toml::table& t, const char* key,
                               const std::string& section, bool required, std::string fallback = {}) {
  const toml::node* n = t.get(key);
  if (!n) {
    if (required) return Status::bad_input(file.string() + ": missing required key '" + section + key + "'");
    return fallback;
  }
  if (!n->is_string()) return Status::bad_input(where(file, *n) + ": '" + section + key + "' must be a string");
  return std::string(n->as_string()->get());
}

Result<int64_t> get_int(const std::filesystem::path& file, const toml::table& t, const char* key,
                        const std::string& section, int64_t fallback, int64_t min, int64_t max) {
  const toml::node* n = t.get(key);
  if (!n) return fallback;
  if (!n->is_integer()) return Status::bad_input(where(file, *n) + ": '" + section + key + "' must be an integer");
  int64_t v = n->as_integer()->get();
  if (v < min || v > max) {
    return Status::bad_input(where(file, *n) + ": '" + section + key + "' must be in [" + std::to_string(min) +
                             ", " + std::to_string(max) + "]");
  }
  return v;
}

Result<bool> get_bool(const std::filesystem::path& file, const toml::table& t, const char* key,
                      const std::string& section, bool fallback) {
  const toml::node* n = t.get(key);
  if (!n) return fallback;
  if (!n->is_boolean()) return Status::bad_input(where(file, *n) + ": '" + section + key + "' must be true or false");
  return n->as_boolean()->get();
}

Result<std::vector<std::string>> get_strings(const std::filesystem::path& file, const toml::table& t,
                                             const char* key, const std::string& section) {
  std::vector<std::string> out;
  const toml::node* n = t.get(key);
  if (!n) return out;
  const toml::array* a = n->as_array();
  if (!a) return Status::bad_input(where(file, *n) + ": '" + section + key + "' must be an array of strings");
  for (const auto& e : *a) {
    if (!e.is_string()) return Status::bad_input(where(file, e) + ": '" + section + key + "' must hold strings");
    out.emplace_back(e.as_string()->get());
  }
  return out;
}

const toml::table* get_table(const toml::table& t, const char* key) {
  const toml::node* n = t.get(key);
  return n ? n->as_table() : nullptr;
}

std::filesystem::path resolve(const std::filesystem::path& base, const std::string& p) {
  if (p.empty()) return {};
  std::filesystem::path path(p);
  return path.is_relative() ? base / path : path;
}

}  // namespace

Result<NodeConfig> load_node_config(const std::filesystem::path& path) {
  toml::table root;
  try {
    root = toml::parse_file(path.string());
  } catch (const toml::parse_error& e) {
    return Status::bad_input(path.string() + ":" + std::to_string(e.source().begin.line) + ": " +
                             std::string(e.description()));
  }
  auto base = std::filesystem::absolute(path).parent_path();
  NodeConfig c;
  c.config_path = path;
  c.transport.base_dir = base;
  QR_RETURN_IF_ERROR(check_keys(path, root, "",
                                {"node_id", "data_dir", "signing_key", "key_passphrase_env", "network", "queue",
                                 "limits", "build"}));
  c.node_id = QR_TRY(get_string(path, root, "node_id", "", true));
  if (c.node_id.empty()) return Status::bad_input(path.string() + ": 'node_id' is empty");
  c.data_dir = resolve(base, QR_TRY(get_string(path, root, "data_dir", "", true)));
  c.signing_key = resolve(base, QR_TRY(get_string(path, root, "signing_key", "", true)));
  c.key_passphrase_env = QR_TRY(get_string(path, root, "key_passphrase_env", "", false));
  for (const char* section : {"network", "queue", "limits", "build"}) {
    const toml::node* n = root.get(section);
    if (n && !n->is_table()) return Status::bad_input(where(path, *n) + ": '" + section + "' must be a table");
  }

  if (const toml::table* net = get_table(root, "network")) {
    const std::string s = "network.";
    QR_RETURN_IF_ERROR(check_keys(path, *net, s,
                                  {"publish", "control", "endpoints_file", "insecure", "allow_insecure_remote",
                                   "curve_secret_key", "allowed_clients", "heartbeat_interval_ms"}));
    c.publish_endpoint = QR_TRY(get_string(path, *net, "publish", s, false, c.publish_endpoint));
    c.control_endpoint = QR_TRY(get_string(path, *net, "control", s, false, c.control_endpoint));
    c.endpoints_file = resolve(base, QR_TRY(get_string(path, *net, "endpoints_file", s, false)));
    c.transport.insecure = QR_TRY(get_bool(path, *net, "insecure", s, false));
    c.transport.allow_insecure_remote = QR_TRY(get_bool(path, *net, "allow_insecure_remote", s, false));
    c.transport.curve_secret_key = resolve(base, QR_TRY(get_string(path, *net, "curve_secret_key", s, false)));
    c.transport.allowed_clients = QR_TRY(get_strings(path, *net, "allowed_clients", s));
    c.heartbeat_interval_ms =
        static_cast<int>(QR_TRY(get_int(path, *net, "heartbeat_interval_ms", s, 1000, 50, 3600000)));
  }
  if (const toml::table* q = get_table(root, "queue")) {
    QR_RETURN_IF_ERROR(check_keys(path, *q, "queue.", {"max_pending", "history_batch"}));
    c.max_queue = static_cast<size_t>(QR_TRY(get_int(path, *q, "max_pending", "queue.", 16, 0, 100000)));
    c.history_batch = static_cast<size_t>(QR_TRY(get_int(path, *q, "history_batch", "queue.", 256, 1, 100000)));
  }
  if (const toml::table* l = get_table(root, "limits")) {
    const std::string s = "limits.";
    QR_RETURN_IF_ERROR(check_keys(path, *l, s, {"max_control_bytes", "max_attestation_bytes", "max_history_bytes"}));
    c.limits.max_control_bytes =
        static_cast<size_t>(QR_TRY(get_int(path, *l, "max_control_bytes", s, 64 << 10, 1024, 1 << 30)));
    c.limits.max_attestation_bytes =
        static_cast<size_t>(QR_TRY(get_int(path, *l, "max_attestation_bytes", s, 1 << 20, 1024, 1 << 30)));
    c.limits.max_history_bytes =
        static_cast<size_t>(QR_TRY(get_int(path, *l, "max_history_bytes", s, 32 << 20, 1024, 1 << 30)));
  }
  if (const toml::table* b = get_table(root, "build")) {
    QR_RETURN_IF_ERROR(check_keys(path, *b, "build.", {"work_dir", "path", "sandbox", "bwrap", "keep_images", "timeout_seconds",
                                                    "max_output_bytes", "image_store"}));
    auto image_store = QR_TRY(get_string(path, *b, "image_store", "build.", false));
    if (!image_store.empty()) c.image_store = resolve(base, image_store);
    c.work_dir = resolve(base, QR_TRY(get_string(path, *b, "work_dir", "build.", false)));
    c.build_path = QR_TRY(get_strings(path, *b, "path", "build."));
    auto keep = QR_TRY(get_string(path, *b, "keep_images", "build.", false));
    if (!keep.empty()) c.keep_images = resolve(base, keep);
    c.sandbox = QR_TRY(get_string(path, *b, "sandbox", "build.", false, "auto"));
    if (c.sandbox != "auto" && c.sandbox != "bubblewrap" && c.sandbox != "none") {
      return Status::bad_input(path.string() + ": 'build.sandbox' must be auto, bubblewrap or none");
    }
    auto bwrap = QR_TRY(get_string(path, *b, "bwrap", "build.", false));
    if (!bwrap.empty()) c.bwrap = resolve(base, bwrap);
    c.build_timeout_seconds = QR_TRY(get_int(path, *b, "timeout_seconds", "build.", c.build_timeout_seconds, 1, 7 * 24 * 3600));
    c.max_output_bytes = static_cast<uint64_t>(
        QR_TRY(get_int(path, *b, "max_output_bytes", "build.", static_cast<int64_t>(c.max_output_bytes), 1, int64_t{1} << 50)));
  }
  if (c.work_dir.empty()) c.work_dir = c.data_dir / "work";
  if (c.image_store.empty()) c.image_store = c.data_dir / "images";
  return c;
}

}  // namespace quorate::node
