// decompressed_digest: a layer blob's diff_id, through libarchive's filters (format "raw": one entry).
#include <archive.h>
#include <archive_entry.h>

#include <span>
#include <vector>

#include "quorate/normalize/compress.h"

namespace quorate::normalize {

Result<std::string> decompressed_digest(const std::filesystem::path& blob, uint64_t max_bytes, Sink* out) {
  struct archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_raw(a);
  auto fail = [&](const std::string& what) {
    std::string msg = what + " " + blob.string() + ": " + (archive_error_string(a) ? archive_error_string(a) : "?");
    archive_read_free(a);
    return Status::bad_input(msg);
  };
  if (archive_read_open_filename(a, blob.c_str(), 1 << 20) != ARCHIVE_OK) return fail("open");
  struct archive_entry* entry = nullptr;
  int r = archive_read_next_header(a, &entry);
  Sha256 hash;
  if (r == ARCHIVE_EOF) {  // an empty blob: the raw format sees no entry
    archive_read_free(a);
    return hash.finish_digest();
  }
  if (r != ARCHIVE_OK) return fail("read");
  std::vector<uint8_t> buf(1 << 20);
  uint64_t total = 0;
  while (true) {
    la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
    if (n < 0) return fail("decompress");
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
    if (total > max_bytes) {
      archive_read_free(a);
      return Status::bad_input("layer " + blob.string() + " expands past the limit of " + std::to_string(max_bytes) +
                               " bytes");
    }
    std::span<const uint8_t> chunk(buf.data(), static_cast<size_t>(n));
    hash.update(chunk);
    if (out != nullptr) {
      Status written = out->write(chunk);
      if (!written.ok()) {
        archive_read_free(a);
        return written;
      }
    }
  }
  archive_read_free(a);
  return hash.finish_digest();
}

}  // namespace quorate::normalize
