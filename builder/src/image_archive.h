// Single-file outputs: an oci-archive (tar of the layout) and a docker-archive (what `docker load` reads).
#pragma once

#include <filesystem>
#include <string>

#include "quorate/core/status.h"

namespace quorate::builder {

// Writes the OCI layout at `layout` as a canonical tar (sorted, mtime = epoch, owners 0) to `target`,
// atomically. io/bad_input on failure; nothing at `target` then.
Status write_oci_archive(const std::filesystem::path& layout, const std::filesystem::path& target, int64_t epoch,
                         const std::filesystem::path& temp_dir, const std::string& ref_name = {});

// Writes manifest.json (Config, RepoTags, Layers), the config as <hex>.json and each layer uncompressed as
// <diff_id hex>/layer.tar, read from the image `manifest_digest` in `layout`; checks every decompressed layer
// against its diff_id. Atomic like write_oci_archive.
Status write_docker_archive(const std::filesystem::path& layout, const std::string& manifest_digest,
                            const std::string& repo_tag, const std::filesystem::path& target, int64_t epoch,
                            const std::filesystem::path& temp_dir);

}  // namespace quorate::builder
