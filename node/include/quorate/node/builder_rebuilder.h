// The production Rebuilder: the builder module rebuilds, the attest module signs with the node's key.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "quorate/core/status.h"
#include "quorate/node/config.h"
#include "quorate/node/rebuilder.h"

namespace quorate::node {

// Loads the signing key named by `config` (refusing a key file readable by others) and returns a Rebuilder
// that builds in `config.work_dir`. `clock_ms` gives the wall clock for the attestation's start and finish
// times. bad_input/not_found naming the key file on failure.
Result<std::unique_ptr<Rebuilder>> make_builder_rebuilder(const NodeConfig& config, std::function<int64_t()> clock_ms,
                                                          std::function<std::string(const std::string&)> getenv);

}  // namespace quorate::node
