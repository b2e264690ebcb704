// Canonical tar headers: ustar, with a pax extended header only where a field does not fit. The layer writer
// writes through these; they are public so that tests and tools can build exact headers (for example a
// header that announces more content than follows).
#pragma once

#include <cstdint>
#include <string>

#include "quorate/normalize/entry.h"

namespace quorate::normalize::detail {

inline constexpr size_t kBlockSize = 512;

// The header block(s) for `entry`, whose fields are already final (path canonical, owners and mtime
// applied). For hardlinks, entry.link_target is the linked path. Directories get a trailing "/" in the name.
// A pax header precedes the ustar header when the path or link is longer than 100 bytes, the size is 8 GiB
// or more, uid/gid do not fit 7 octal digits, user/group names are over 31 bytes, mtime is negative or too
// large, or there are xattrs (SCHILY.xattr.<name>, sorted by name).
std::string tar_header(const Entry& entry);

// Zero bytes that pad `size` content bytes up to a block boundary.
size_t tar_padding(uint64_t size);

// The end of archive: exactly two zero blocks, no further record padding.
inline constexpr size_t kEndOfArchiveSize = 2 * kBlockSize;

}  // namespace quorate::normalize::detail
