// quorum.toml parsing: every key checked, unknown keys refused, paths resolved against the file's directory.
#include "quorate/quorumd/verifier_config.h"

#include <set>

#include <toml++/toml.h>

namespace quorate::quorum {
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

std::filesystem::path resolve(const std::filesystem::path& base, const std::string& p) {
  if (p.empty()) return {};
  std::filesystem::path path(p);
  return path.is_relative() ? base / path : path;
}

}  // namespace

Result<VerifierConfig> load_verifier_config(const std::filesystem::path& path) {
  toml::table root;
  try {
    root = toml::parse_file(path.string());
  } catch (const toml::parse_error& e) {
    return Status::bad_input(path.string() + ":" + std::to_string(e.source().begin.line) + ": " +
                             std::string(e.description()));
  }
  auto base = std::filesystem::absolute(path).parent_path();
  VerifierConfig c;
  c.config_path = path;
  c.transport.base_dir = base;
  QR_RETURN_IF_ERROR(check_keys(path, root, "", {"policy", "data_dir", "network", "limits", "nodes"}));
  c.policy = resolve(base, QR_TRY(get_string(path, root, "policy", "", true)));
  c.data_dir = resolve(base, QR_TRY(get_string(path, root, "data_dir", "", true)));
  if (const toml::node* n = root.get("network")) {
    const toml::table* net = n->as_table();
    if (!net) return Status::bad_input(where(path, *n) + ": 'network' must be a table");
    const std::string s = "network.";
    QR_RETURN_IF_ERROR(check_keys(path, *net, s,
                                  {"publish", "query", "endpoints_file", "insecure", "allow_insecure_remote",
                                   "curve_secret_key", "allowed_clients", "history_timeout_ms"}));
    c.publish_endpoint = QR_TRY(get_string(path, *net, "publish", s, false, c.publish_endpoint));
    c.query_endpoint = QR_TRY(get_string(path, *net, "query", s, false, c.query_endpoint));
    c.endpoints_file = resolve(base, QR_TRY(get_string(path, *net, "endpoints_file", s, false)));
    c.transport.insecure = QR_TRY(get_bool(path, *net, "insecure", s, false));
    c.transport.allow_insecure_remote = QR_TRY(get_bool(path, *net, "allow_insecure_remote", s, false));
    c.transport.curve_secret_key = resolve(base, QR_TRY(get_string(path, *net, "curve_secret_key", s, false)));
    c.transport.allowed_clients = QR_TRY(get_strings(path, *net, "allowed_clients", s));
    c.history_timeout_ms = static_cast<int>(QR_TRY(get_int(path, *net, "history_timeout_ms", s, 3000, 100, 600000)));
  }
  if (const toml::node* n = root.get("limits")) {
    const toml::table* l = n->as_table();
    if (!l) return Status::bad_input(where(path, *n) + ": 'limits' must be a table");
    const std::string s = "limits.";
    QR_RETURN_IF_ERROR(check_keys(path, *l, s,
                                  {"max_control_bytes", "max_attestation_bytes", "max_history_bytes",
                                   "max_decision_bytes"}));
    c.limits.max_control_bytes =
        static_cast<size_t>(QR_TRY(get_int(path, *l, "max_control_bytes", s, 64 << 10, 1024, 1 << 30)));
    c.limits.max_attestation_bytes =
        static_cast<size_t>(QR_TRY(get_int(path, *l, "max_attestation_bytes", s, 1 << 20, 1024, 1 << 30)));
    c.limits.max_history_bytes =
        static_cast<size_t>(QR_TRY(get_int(path, *l, "max_history_bytes", s, 32 << 20, 1024, 1 << 30)));
    c.limits.max_decision_bytes =
        static_cast<size_t>(QR_TRY(get_int(path, *l, "max_decision_bytes", s, 1 << 20, 1024, 1 << 30)));
  }
  if (const toml::node* n = root.get("nodes")) {
    const toml::array* arr = n->as_array();
    if (!arr) return Status::bad_input(where(path, *n) + ": 'nodes' must be an array of tables ([[nodes]])");
    std::set<std::string> seen;
    for (const auto& e : *arr) {
      const toml::table* t = e.as_table();
      if (!t) return Status::bad_input(where(path, e) + ": 'nodes' entries must be tables");
      const std::string s = "nodes.";
      QR_RETURN_IF_ERROR(check_keys(path, *t, s, {"id", "publish", "control", "curve_public_key"}));
      wire::FollowedNode fn;
      fn.node_id = QR_TRY(get_string(path, *t, "id", s, true));
      fn.publish_endpoint = QR_TRY(get_string(path, *t, "publish", s, true));
      fn.control_endpoint = QR_TRY(get_string(path, *t, "control", s, true));
      fn.server_key = QR_TRY(get_string(path, *t, "curve_public_key", s, false));
      if (!seen.insert(fn.node_id).second) {
        return Status::bad_input(where(path, e) + ": node '" + fn.node_id + "' listed twice");
      }
      c.nodes.push_back(std::move(fn));
    }
  }
  return c;
}

}  // namespace quorate::quorum
