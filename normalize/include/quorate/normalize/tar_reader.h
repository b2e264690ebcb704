// Reading tars from outside with libarchive: one rule, for every reader (normalize, `quorate diff`, image
// archives, the image store's unpacker, a Containerfile's ADD), for which of libarchive's reports an entry may
// pass with.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "quorate/core/status.h"

struct archive;
struct archive_entry;

namespace quorate::normalize {

struct ArchiveCloser {
  void operator()(struct archive* a) const;
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveCloser>;

// Registers with `a` the compressions a layer or archive from outside may come in: gzip, zstd, xz and bzip2,
// each through libarchive's own decoder (one whose library libarchive was built without is left out). libarchive's
// "all" also takes lrzip, lzop, grzip and others by running the program of that name found on PATH (seen: `lrzip -d -q`
// looked for along PATH for a file starting with "LRZI"), so the input chose which program quorate started on its
// bytes.
void support_layer_compressions(struct archive* a);

// A reader of the tar at `path` under any of those compressions, reading `block` bytes at a time; bad_input
// "<path>: <libarchive's message>" when it cannot be opened.
Result<ArchivePtr> open_tar(const std::filesystem::path& path, size_t block = size_t{1} << 16);

// The next entry's header, or null at the end of the archive. libarchive reports two different things as a
// warning: a name, owner or link target it could not convert to the locale (we run in the C locale; it keeps
// the bytes as stored, and tests pin them), and input it skipped. A pax header holding one malformed record
// is dropped whole, so the entry keeps its ustar name: "innocent" instead of "etc/cron.d/evil", where Go's
// archive/tar (container runtimes) refuses the archive. Only the first kind passes; every other warning, and
// every error, is bad_input "<where>: <libarchive's message>". So is a link, directory, device or fifo whose
// pax header gives it data, which libarchive would skip and Go's reader take as the next entries.
Result<struct archive_entry*> next_entry(struct archive* a, const std::string& where);

// A tar file from outside (a layer blob, an image archive), read entry by entry by next_entry's rules and,
// in front of each entry, the pax scan normalize reads layers with (pax records libarchive would drop, truncate
// or read unlike Go's reader: normalize/src/pax_check.h). Movable, not thread-safe.
class TarReader {
 public:
  // bad_input "<path>: <libarchive's message>" when it cannot be opened as a tar (any compression); io when
  // it cannot be opened at all.
  static Result<TarReader> open(const std::filesystem::path& path, size_t block = size_t{1} << 16);
  TarReader(TarReader&& other) noexcept;
  TarReader& operator=(TarReader&& other) noexcept;
  ~TarReader();

  // The next entry's header, or null at the end; bad_input naming `where` and the entry as next_entry does,
  // or for its pax records.
  Result<struct archive_entry*> next(const std::string& where);
  // The archive, positioned at the entry next() returned, for reading its data.
  struct archive* archive() const;

 private:
  struct Impl;
  explicit TarReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// bad_input "<where>: <libarchive's message>".
Status archive_error(struct archive* a, const std::string& where);

// The entry's path as stored, or null. In the C locale (we never call setlocale) libarchive passes pax UTF-8
// and raw header bytes through unchanged; tests pin both a UTF-8 and a Latin-1 name.
const char* raw_path(struct archive_entry* ae);

}  // namespace quorate::normalize
