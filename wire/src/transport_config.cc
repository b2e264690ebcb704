// [network] transport keys and [limits]: one reader for node.toml and quorum.toml.
#include "quorate/wire/transport_config.h"

namespace quorate::wire {

const std::set<std::string>& transport_keys() {
  static const std::set<std::string> keys = {"insecure", "allow_insecure_remote", "curve_secret_key",
                                             "allowed_clients"};
  return keys;
}

Result<TransportConfig> read_transport_config(const config::TomlFile& f, const toml::table& net,
                                              const std::string& section, const std::set<std::string>& own_keys) {
  std::set<std::string> allowed = own_keys;
  allowed.insert(transport_keys().begin(), transport_keys().end());
  QR_RETURN_IF_ERROR(f.check_keys(net, section, allowed));
  TransportConfig t;
  t.base_dir = f.base_dir();
  t.insecure = QR_TRY(f.boolean(net, "insecure", section, false));
  t.allow_insecure_remote = QR_TRY(f.boolean(net, "allow_insecure_remote", section, false));
  t.curve_secret_key = f.resolve(QR_TRY(f.string(net, "curve_secret_key", section, false)));
  t.allowed_clients = QR_TRY(f.strings(net, "allowed_clients", section));
  if (const toml::node* key = net.get("curve_secret_key")) {
    t.curve_secret_key_origin = f.where(*key) + ": '" + section + "curve_secret_key'";
    if (t.insecure) {
      return Status::bad_input(t.curve_secret_key_origin + " and '" + section +
                               "insecure = true' are both set; CURVE or plain TCP, choose one");
    }
  }
  return t;
}

Result<Limits> read_limits(const config::TomlFile& f, const toml::table& t, const std::string& section,
                           bool decisions) {
  std::set<std::string> keys = {"max_control_bytes", "max_attestation_bytes", "max_history_bytes"};
  if (decisions) keys.insert("max_decision_bytes");
  QR_RETURN_IF_ERROR(f.check_keys(t, section, keys));
  Limits l;
  for (auto [key, value] : {std::pair<const char*, size_t*>{"max_control_bytes", &l.max_control_bytes},
                            {"max_attestation_bytes", &l.max_attestation_bytes},
                            {"max_history_bytes", &l.max_history_bytes},
                            {"max_decision_bytes", &l.max_decision_bytes}}) {
    *value = static_cast<size_t>(QR_TRY(f.integer(t, key, section, static_cast<int64_t>(*value), 1024, 1 << 30)));
  }
  return l;
}

}  // namespace quorate::wire
