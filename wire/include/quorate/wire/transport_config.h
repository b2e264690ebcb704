// The transport keys of a daemon's [network] section and its [limits] (node.toml, quorum.toml), read in one place.
#pragma once

#include <set>
#include <string>

#include "quorate/config/toml_file.h"
#include "quorate/core/status.h"
#include "quorate/wire/frame.h"
#include "quorate/wire/security.h"

namespace quorate::wire {

// The keys read_transport_config reads: insecure, allow_insecure_remote, curve_secret_key, allowed_clients.
const std::set<std::string>& transport_keys();

// Reads the transport keys of `net` (the table the file `f` calls `section`, e.g. "network."); every other key
// of `net` must be in `own_keys` (the daemon's own keys there, read by the caller) or is refused as unknown.
// Paths resolve against the file's directory (base_dir is set). bad_input, naming file:line, for an unknown
// key, a mistyped value, or both `insecure = true` and `curve_secret_key`. The key file is read when the
// transport is made (make_server_security / make_client_security): an error reading it (a missing file, group
// or world readable) then names the file:line that configured it.
Result<TransportConfig> read_transport_config(const config::TomlFile& f, const toml::table& net,
                                              const std::string& section, const std::set<std::string>& own_keys);

// Reads a daemon's [limits] section (`section`, e.g. "limits."): max_control_bytes, max_attestation_bytes,
// max_history_bytes, and max_decision_bytes when `decisions` (the verifier publishes decisions; a node does not).
// Each in [1024, 2^30], defaults those of Limits; unknown keys refused.
Result<Limits> read_limits(const config::TomlFile& f, const toml::table& t, const std::string& section, bool decisions);

}  // namespace quorate::wire
