// What a node does with a build request: rebuild, then sign. An interface, so that the daemon is tested
// without compilers and the real builder + signer plug in from one place.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "quorate/core/status.h"
#include "quorate/wire/request.h"

namespace quorate::node {

struct RebuildOutput {
  std::string envelope;               // the signed DSSE envelope (JSON bytes)
  std::string image_digest;           // the digest it attests
  std::vector<std::string> warnings;  // for the operator: the daemon logs each at warn (build_warning)
};

// Thread-compatible: the daemon calls rebuild() from its one worker thread.
class Rebuilder {
 public:
  virtual ~Rebuilder() = default;
  // Builds and signs. `cancel` turns true when the node is stopping: an implementation may abandon the
  // build (returning any error); nothing of an abandoned build is stored or published.
  // `request` is normalized (wire::normalize_request): its recipe path and checks are applied.
  virtual Result<RebuildOutput> rebuild(const wire::RebuildRequest& request, const std::atomic<bool>& cancel) = 0;
};

}  // namespace quorate::node
