// libarchive glue shared by the layer reader and the layer inspector (tar_reader.h: what every tar reader shares).
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <string>

#include "quorate/core/status.h"
#include "quorate/normalize/entry.h"
#include "quorate/normalize/tar_reader.h"

namespace quorate::normalize::detail {

// The entry's type; bad_input for sockets and unknown types.
Result<EntryType> entry_type(struct archive_entry* ae, const std::string& where);
// Mode (07777), owners, mtime, device numbers and xattrs of an entry; path, size and link left empty.
Entry entry_meta(struct archive_entry* ae, EntryType type);

// What a layer's paths and link targets may weigh: each, and together (they are held until the layer is
// written or compared; a pax header makes a path of any length, and 3 MB of gzip held 2.9 GB of them).
inline constexpr size_t kMaxNameBytesEach = size_t{64} << 10;
inline constexpr uint64_t kMaxNameBytes = uint64_t{1} << 30;
// Adds the entry's path and link target (hardlink or symlink; `link` may be null) to `names`; bad_input
// naming the entry (`where`, cut to 200 bytes) past either bound.
Status count_names(const std::string& where, const std::string& path, const char* link, uint64_t& names);
// Adds what else of the entry is held with its name (owner names, xattr names and values) to `names`, under
// the same two bounds: a pax header gives each up to 1 MB, and 139 KB of zstd held 2 GB of xattrs. No file
// system stores an xattr value of more than 64 KiB (Linux's XATTR_SIZE_MAX).
Status count_metadata(const std::string& where, const Entry& meta, uint64_t& names);

}  // namespace quorate::normalize::detail
