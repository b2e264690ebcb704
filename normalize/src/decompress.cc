// decompressed_digest: a layer blob's diff_id, through libarchive's filters (format "raw": one entry).
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <span>
#include <vector>

#include "quorate/core/sha256.h"
#include "quorate/normalize/compress.h"
#include "quorate/normalize/tar_reader.h"

namespace quorate::normalize {
namespace {

// The blob as libarchive reads it, each byte also hashed as stored when `stored` is set.
struct Reader {
  int fd = -1;
  Sha256* stored = nullptr;
  std::vector<uint8_t> buf = std::vector<uint8_t>(1 << 20);
  int error = 0;

  bool at_end = false;  // every byte was read (and hashed)

  // Reads the next chunk into buf: its size, 0 at the end, -1 on an error (errno in `error`).
  ssize_t next() {
    while (true) {
      ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        error = errno;
        return -1;
      }
      if (stored != nullptr) stored->update(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
      at_end = n == 0;
      return n;
    }
  }

  static la_ssize_t read(struct archive* a, void* self, const void** out) {
    auto* r = static_cast<Reader*>(self);
    ssize_t n = r->next();
    if (n < 0) archive_set_error(a, r->error, "read: %s", std::strerror(r->error));
    *out = r->buf.data();
    return n;
  }
};

// `read_whole`, when given, says whether every byte of the blob was read, so that `stored` hashed all of it.
Result<std::string> read_layer(const std::filesystem::path& blob, uint64_t max_bytes, Sink* out, Sha256* stored,
                               ExpandedTotal* together = nullptr, uint64_t* expanded = nullptr,
                               bool* read_whole = nullptr) {
  Reader reader;
  reader.stored = stored;
  reader.fd = ::open(blob.c_str(), O_RDONLY | O_CLOEXEC);
  if (reader.fd < 0) return Status::from_errno("open " + blob.string(), errno);
  struct archive* a = archive_read_new();
  auto done = [&] {
    archive_read_free(a);
    ::close(reader.fd);
    if (read_whole != nullptr) *read_whole = reader.at_end;
  };
  support_layer_compressions(a);
  archive_read_support_format_raw(a);
  auto fail = [&](const std::string& what) {
    std::string msg = what + " " + blob.string() + ": " + (archive_error_string(a) ? archive_error_string(a) : "?");
    if (reader.error != 0) {  // the file, not its content
      done();
      return Status::from_errno("read " + blob.string(), reader.error);
    }
    while (stored != nullptr && reader.next() > 0) {  // the stored digest is told before a corrupt stream
    }
    done();
    return Status::bad_input(msg);
  };
  if (archive_read_open(a, &reader, nullptr, &Reader::read, nullptr) != ARCHIVE_OK) return fail("open");
  struct archive_entry* entry = nullptr;
  int r = archive_read_next_header(a, &entry);
  Sha256 hash;
  if (r != ARCHIVE_OK && r != ARCHIVE_EOF) return fail("read");  // ARCHIVE_EOF: an empty blob, no entry
  std::vector<uint8_t> buf(r == ARCHIVE_OK ? 1 << 20 : 0);
  uint64_t total = 0;
  while (r == ARCHIVE_OK) {
    la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
    if (n < 0) return fail("decompress");
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
    if (total > max_bytes) {
      done();
      return Status::bad_input("layer " + blob.string() + " expands past the limit of " + std::to_string(max_bytes) +
                               " bytes");
    }
    if (together != nullptr) {
      Status within = together->add(static_cast<uint64_t>(n), "layer " + blob.string());
      if (!within.ok()) {
        done();
        return within;
      }
    }
    std::span<const uint8_t> chunk(buf.data(), static_cast<size_t>(n));
    hash.update(chunk);
    if (out != nullptr) {
      Status written = out->write(chunk);
      if (!written.ok()) {
        done();
        return written;
      }
    }
  }
  // Bytes after the compressed stream (libarchive stops reading there) are still part of the stored blob.
  while (stored != nullptr) {
    ssize_t n = reader.next();
    if (n < 0) {
      done();
      return Status::from_errno("read " + blob.string(), reader.error);
    }
    if (n == 0) break;
  }
  done();
  if (expanded != nullptr) *expanded = total;
  return hash.finish_digest();
}

}  // namespace

Result<std::string> decompressed_digest(const std::filesystem::path& blob, uint64_t max_bytes, Sink* out) {
  return read_layer(blob, max_bytes, out, nullptr);
}

Result<LayerBlobDigests> layer_blob_digests(const std::filesystem::path& blob, const std::string& digest,
                                            uint64_t max_bytes, ExpandedTotal* together) {
  Sha256 stored;
  LayerBlobDigests out;
  bool read_whole = false;
  auto diff_id = read_layer(blob, max_bytes, nullptr, &stored, together, &out.expanded, &read_whole);
  out.digest = stored.finish_digest();
  if (read_whole && out.digest != digest) {  // a bound that ended the read is its own error
    return Status::bad_input("digest mismatch: blob " + blob.string() + " holds " + out.digest + ", not the pinned " +
                             digest);
  }
  out.diff_id = QR_TRY(std::move(diff_id));
  return out;
}

}  // namespace quorate::normalize
