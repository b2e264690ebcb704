// Overlay root file systems for Containerfile stages: a private mount namespace per operation, kernel overlayfs
// mounts inside it, and the upper directory read back as an OCI layer (whiteouts, opaque directories).
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "quorate/core/status.h"
#include "quorate/normalize/layer.h"

namespace quorate::builder {

// Runs `fn` on a new thread that first unshares its mount namespace (CLONE_NEWNS, then makes every mount
// private), so that mounts `fn` makes are seen only by that thread and the processes it starts, and vanish
// with them, even when this process crashes. unsupported (saying that root is needed) when the namespace
// cannot be made; otherwise what `fn` returns.
Status in_private_mounts(const std::function<Status()>& fn);

// Inside in_private_mounts: mounts overlayfs at `merged` with `lowers` (topmost first) and, when `upper` is
// set, `upper` and `work` (empty directories on one file system). redirect_dir, metacopy, index and xino are
// off, so the upper directory holds whole files and only the OCI-expressible changes: new and modified
// entries, 0/0 character devices for deletions, `trusted.overlay.opaque` on replaced directories. Paths
// holding ':' ',' or '\' are refused (the mount option syntax cannot carry them); io with the reason otherwise.
Status mount_overlay(const std::vector<std::filesystem::path>& lowers, const std::filesystem::path& upper,
                     const std::filesystem::path& work, const std::filesystem::path& merged);

// Inside in_private_mounts: binds `merged` at a directory every user can reach, so that a process started as
// another user (a RUN under USER) can name it though the parents of `work` may be closed to others: a tmpfs
// (0755) over /run, or over /tmp when `work` is under /run, in this thread's mount namespace only. Returns the
// path; io when a mount fails.
Result<std::filesystem::path> expose_for_user(const std::filesystem::path& merged, const std::filesystem::path& work);

// Adds the upper directory `dir` of an overlay to `writer` as an OCI layer: a 0/0 character device becomes the
// whiteout `.wh.NAME`, a directory marked opaque gets `.wh..wh..opq`, everything else keeps its type, mode,
// owner and (clamped by the writer) mtime; hardlinked files stay linked. Never follows a symlink. `bytes`
// accumulates regular-file bytes against `max_bytes`. bad_input naming the entry for a socket or a limit.
// `keep_going` is asked for each entry (the build's deadline).
Status add_upper_dir(const std::filesystem::path& dir, uint64_t max_bytes, uint64_t& bytes,
                     normalize::CanonicalLayerWriter& writer, const std::function<Status()>& keep_going);

}  // namespace quorate::builder
