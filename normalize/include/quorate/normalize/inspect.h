// Reading a layer's entries as they are, for comparison (quorate diff) rather than rewriting.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "quorate/core/status.h"
#include "quorate/normalize/entry.h"
#include "quorate/normalize/options.h"

namespace quorate::normalize {

struct LayerEntry {
  Entry entry;                 // path canonical (as canonical_path), link_target set for links
  std::string content_digest;  // "sha256:…" of the content, regular files only
};

// Streams the entries of a layer (any compression) in archive order, hashing content on the way; memory
// does not grow with content size. Stops at the first non-ok status `visit` returns and passes it on.
// bad_input naming the entry for hostile paths, truncation, corrupt data, or expanded size over the limit.
// `total`, when not null, counts every byte of content too, as it is read, and its error (passing its limit)
// stops the read (quorate diff's bound on what the layers of its images expand to together).
Status read_layer_entries(const std::filesystem::path& layer, const std::function<Status(LayerEntry&&)>& visit,
                          uint64_t max_expanded_bytes = kDefaultMaxExpandedBytes, ExpandedTotal* total = nullptr);

}  // namespace quorate::normalize
