// libarchive glue shared by the layer reader and the layer inspector.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <string>

#include "quorate/core/status.h"
#include "quorate/normalize/entry.h"

namespace quorate::normalize::detail {

struct ArchiveCloser {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

// bad_input "<where>: <libarchive's message>".
Status archive_error(struct archive* a, const std::string& where);
// The entry's type; bad_input for sockets and unknown types.
Result<EntryType> entry_type(struct archive_entry* ae, const std::string& where);
// Mode (07777), owners, mtime, device numbers and xattrs of an entry; path, size and link left empty.
Entry entry_meta(struct archive_entry* ae, EntryType type);
// The entry's path as stored, or null. In the C locale (we never call setlocale) libarchive passes pax
// UTF-8 and raw header bytes through unchanged; tests pin both a UTF-8 and a Latin-1 name.
const char* raw_path(struct archive_entry* ae);

}  // namespace quorate::normalize::detail
