// quorum.toml parsing: every key checked, unknown keys refused, paths resolved against the file's directory.
#include "quorate/quorumd/verifier_config.h"

#include <set>

#include "quorate/config/toml_file.h"
#include "quorate/wire/transport_config.h"

namespace quorate::quorum {
namespace {

Status read_network(const config::TomlFile& f, const toml::table& net, VerifierConfig& c) {
  const std::string s = "network.";
  c.transport =
      QR_TRY(wire::read_transport_config(f, net, s, {"publish", "query", "endpoints_file", "history_timeout_ms"}));
  c.publish_endpoint = QR_TRY(f.string(net, "publish", s, false, c.publish_endpoint));
  c.query_endpoint = QR_TRY(f.string(net, "query", s, false, c.query_endpoint));
  c.endpoints_file = f.resolve(QR_TRY(f.string(net, "endpoints_file", s, false)));
  c.history_timeout_ms = static_cast<int>(QR_TRY(f.integer(net, "history_timeout_ms", s, 3000, 100, 600000)));
  return Status();
}

// [[nodes]]: the nodes followed, each id once.
Status read_nodes(const config::TomlFile& f, const toml::node& n, VerifierConfig& c) {
  const toml::array* arr = n.as_array();
  if (!arr) return Status::bad_input(f.where(n) + ": 'nodes' must be an array of tables ([[nodes]])");
  std::set<std::string> seen;
  for (const auto& e : *arr) {
    const toml::table* t = e.as_table();
    if (!t) return Status::bad_input(f.where(e) + ": 'nodes' entries must be tables");
    const std::string s = "nodes.";
    QR_RETURN_IF_ERROR(f.check_keys(*t, s, {"id", "publish", "control", "curve_public_key"}));
    wire::FollowedNode fn;
    fn.node_id = QR_TRY(f.string(*t, "id", s, true));
    fn.publish_endpoint = QR_TRY(f.string(*t, "publish", s, true));
    fn.control_endpoint = QR_TRY(f.string(*t, "control", s, true));
    fn.server_key = QR_TRY(f.string(*t, "curve_public_key", s, false));
    if (!seen.insert(fn.node_id).second) {
      return Status::bad_input(f.where(e) + ": node '" + fn.node_id + "' listed twice");
    }
    c.nodes.push_back(std::move(fn));
  }
  return Status();
}

}  // namespace

Result<VerifierConfig> load_verifier_config(const std::filesystem::path& path) {
  auto f = QR_TRY(config::TomlFile::read(path));
  const toml::table& root = f.root();
  VerifierConfig c;
  c.config_path = path;
  c.transport.base_dir = f.base_dir();
  QR_RETURN_IF_ERROR(f.check_keys(root, "", {"policy", "data_dir", "network", "limits", "nodes"}));
  c.policy = f.resolve(QR_TRY(f.string(root, "policy", "", true)));
  c.data_dir = f.resolve(QR_TRY(f.string(root, "data_dir", "", true)));
  // Sections are checked as they are read, in this order.
  if (const toml::table* net = QR_TRY(f.table(root, "network"))) QR_RETURN_IF_ERROR(read_network(f, *net, c));
  if (const toml::table* limits = QR_TRY(f.table(root, "limits")))
    c.limits = QR_TRY(wire::read_limits(f, *limits, "limits.", true));
  if (const toml::node* nodes = root.get("nodes")) QR_RETURN_IF_ERROR(read_nodes(f, *nodes, c));
  return c;
}

}  // namespace quorate::quorum
