// skopeo from a registry, bounded by the pinned manifest. skopeo 1.9 (Debian 12) writes as many bytes of a blob as
// the registry sends, whatever its descriptor's size says (measured: 1.9 GB for a layer declared as 100 bytes,
// until the stream ended), so a hostile registry could fill the disk of whoever pulls or verifies from it.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

#include "quorate/core/disk_usage.h"
#include "quorate/core/process.h"
#include "quorate/core/status.h"

namespace quorate::imagestore::internal {

struct PinnedManifest {
  std::string bytes;        // hashes to the pin
  uint64_t blob_bytes = 0;  // the sizes its config and its distinct layers declare, added
};

// `skopeo inspect --raw docker://NAME@DIGEST`: the manifest the registry serves for the pin, which must hash to
// it and be one image's manifest (an index is bad_input naming the manifests it lists: pin one of them).
// `what` begins every error ("pull REF"); skopeo's own failure is io with its output.
Result<PinnedManifest> inspect_pinned(const std::filesystem::path& skopeo, const std::string& name,
                                      const std::string& digest, bool insecure_registry,
                                      std::chrono::steady_clock::time_point deadline, std::chrono::seconds timeout,
                                      const std::string& what);

// A watch on the directory a `skopeo copy` of that manifest writes into: exceeded once it takes more than twice
// the declared bytes and 64 MiB (the allocation a file system may make ahead of a growing file, the layout's
// own files), looked at every 10 ms.
DiskWatch copy_watch(const std::filesystem::path& dir, const PinnedManifest& manifest);

// "skopeo exited with status 1: OUTPUT" and the like, for a copy or inspect that did not succeed; `watched` is
// the byte count a kStopped run passed.
std::string skopeo_failure(const ProcessResult& run, std::chrono::seconds timeout, size_t max_output,
                           uint64_t watched_bytes);

}  // namespace quorate::imagestore::internal
