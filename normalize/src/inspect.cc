// read_layer_entries: a plain libarchive walk that hashes content instead of keeping it.
#include "quorate/normalize/inspect.h"

#include "archive_util.h"
#include "quorate/core/sha256.h"
#include "quorate/normalize/layer.h"

namespace quorate::normalize {

Status read_layer_entries(const std::filesystem::path& layer, const std::function<Status(LayerEntry&&)>& visit,
                          uint64_t max_expanded_bytes, ExpandedTotal* total) {
  TarReader reader = QR_TRY(TarReader::open(layer, size_t{1} << 20));
  struct archive* a = reader.archive();
  std::string buffer(1 << 20, '\0');
  uint64_t expanded = 0, names = 0;
  for (uint64_t index = 0;; ++index) {
    std::string where = layer.string() + " entry " + std::to_string(index);
    struct archive_entry* ae = QR_TRY(reader.next(where));
    if (ae == nullptr) return Status();
    // The caller keeps every entry (quorate diff): normalize's bounds on their count and names hold here too.
    if (index >= kDefaultMaxEntries) {
      return Status::bad_input(layer.string() + ": more than " + std::to_string(kDefaultMaxEntries) + " entries");
    }
    const char* raw = raw_path(ae);
    if (raw == nullptr) return Status::bad_input(where + " has no name");
    auto path = canonical_path(raw);
    if (!path.ok()) return path.status().with_context(where);
    const char* link = archive_entry_hardlink(ae) ? archive_entry_hardlink(ae) : archive_entry_symlink(ae);
    QR_RETURN_IF_ERROR(detail::count_names(where, *path, link, names));
    if (path->empty()) continue;
    LayerEntry out;
    if (const char* target = archive_entry_hardlink(ae)) {
      auto canonical_target = canonical_path(target);
      if (!canonical_target.ok()) return canonical_target.status().with_context(where + " hardlink target");
      out.entry.type = EntryType::kHardlink;
      out.entry.link_target = std::move(canonical_target).value();
    } else {
      auto type = detail::entry_type(ae, where);
      if (!type.ok()) return type.status();
      out.entry = detail::entry_meta(ae, *type);
      QR_RETURN_IF_ERROR(detail::count_metadata(where, out.entry, names));
      if (*type == EntryType::kSymlink) {
        const char* symlink = archive_entry_symlink(ae);
        out.entry.link_target = symlink ? symlink : "";
      }
    }
    out.entry.path = std::move(path).value();
    if (out.entry.type == EntryType::kFile) {
      Sha256 hash;
      for (;;) {
        la_ssize_t n = archive_read_data(a, buffer.data(), buffer.size());
        if (n < 0) return archive_error(a, where);
        if (n == 0) break;
        expanded += static_cast<uint64_t>(n);
        if (expanded > max_expanded_bytes) {
          return Status::bad_input(where + ": expanded layer size exceeds the limit of " +
                                   std::to_string(max_expanded_bytes) + " bytes");
        }
        if (total != nullptr) QR_RETURN_IF_ERROR(total->add(static_cast<uint64_t>(n), where));
        hash.update(std::string_view(buffer.data(), static_cast<size_t>(n)));
        out.entry.size += static_cast<uint64_t>(n);
      }
      out.content_digest = hash.finish_digest();
    }
    QR_RETURN_IF_ERROR(visit(std::move(out)));
  }
}

}  // namespace quorate::normalize
