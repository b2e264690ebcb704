// quorum.toml: the verifier daemon's configuration (documented in docs/wire.md).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "quorate/core/status.h"
#include "quorate/wire/follower.h"
#include "quorate/wire/frame.h"
#include "quorate/wire/security.h"

namespace quorate::quorum {

struct VerifierConfig {
  std::filesystem::path policy;                        // required: the quorum policy (docs/policy.md)
  std::filesystem::path data_dir;                      // required: the attestation store and the follow cursors
  std::string publish_endpoint = "tcp://127.0.0.1:*";  // PUB: decisions
  std::string query_endpoint = "tcp://127.0.0.1:*";    // ROUTER: queries
  std::filesystem::path endpoints_file;                // optional: where to write the bound endpoints (JSON)
  wire::TransportConfig transport;
  wire::Limits limits;
  int history_timeout_ms = 3000;
  std::vector<wire::FollowedNode> nodes;  // [[nodes]]: id, publish, control, curve_public_key
  std::filesystem::path config_path;
};

// Reads and checks a quorum.toml; relative paths against the file's directory. bad_input naming the key.
Result<VerifierConfig> load_verifier_config(const std::filesystem::path& path);

}  // namespace quorate::quorum
