// node.toml: the rebuild node daemon's configuration (documented in docs/node.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "quorate/core/status.h"
#include "quorate/wire/frame.h"
#include "quorate/wire/security.h"

namespace quorate::node {

struct NodeConfig {
  std::string node_id;     // required
  std::string builder_id;  // optional: runDetails.builder.id (a URI); default https://quorate.dev/node/<node_id>
  std::filesystem::path data_dir;     // required: node.db and build work directories
  std::filesystem::path signing_key;  // required: the attestation private key (PKCS#8 PEM) or a pkcs11: URI
  std::string key_passphrase_env;     // optional: name of an env variable holding the passphrase
  std::string publish_endpoint = "tcp://127.0.0.1:*";  // PUB: attestations and heartbeats
  std::string control_endpoint = "tcp://127.0.0.1:*";  // ROUTER: build requests, job status, history
  std::filesystem::path endpoints_file;                // optional: where to write the bound endpoints (JSON)
  wire::TransportConfig transport;
  size_t max_queue = 16;       // pending builds beyond the running one; more are rejected
  size_t history_batch = 256;  // attestations per HistoryResponse at most
  int heartbeat_interval_ms = 1000;
  wire::Limits limits;
  // [build]: passed to the builder.
  std::filesystem::path work_dir;                  // default: <data_dir>/work
  std::vector<std::string> build_path;             // PATH directories for run steps (default: the builder's)
  std::string sandbox = "auto";                    // auto | bubblewrap | none
  std::filesystem::path bwrap = "/usr/bin/bwrap";  // the bubblewrap binary run steps are started through
  int64_t build_timeout_seconds = 3600;            // all run steps of one build together
  uint64_t max_output_bytes = uint64_t{4} << 30;   // regular-file bytes of all run steps' outputs
  std::filesystem::path keep_images;               // when set: each built image kept as <dir>/<manifest digest hex>
  std::filesystem::path image_store;               // builder images ([build] image); default: <data_dir>/images
  std::vector<std::string> repositories;           // build.repositories: what a request's repo may name; empty: any
  std::filesystem::path config_path;               // the file this was read from
};

// Whether a build request's `repo` is one the node builds: with `allowed` empty, any (the node logs that at
// start); otherwise `repo` must be `allowed[i]` or lie under it (the next character a '/', or the entry ends with
// one: "https://git.example.org/acme" admits ".../acme/app", not ".../acme-evil/app"), and a local path must be
// absolute. A repo with a "." or ".." path segment is refused whatever the list says: it could climb out of
// an entry; segments are looked for once %XX escapes are decoded and with '\' a separator too (libgit2 decodes a
// file:// URL's escapes; HTTP servers normalize paths). bad_input naming the repo otherwise.
Status check_repository(const std::vector<std::string>& allowed, const std::string& repo);

// Reads and checks a node.toml; relative paths are resolved against the file's directory. bad_input naming
// the key (and line) for unknown keys, wrong types and missing required keys.
Result<NodeConfig> load_node_config(const std::filesystem::path& path);

}  // namespace quorate::node
