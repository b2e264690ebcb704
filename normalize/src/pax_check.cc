// Re-reads pax extended headers to refuse records libarchive would truncate (see pax_check.h).
#include "pax_check.h"

#include "quorate/normalize/tar_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string_view>

namespace quorate::normalize::detail {
namespace {

constexpr size_t kBlock = 512;
constexpr int kMaxExtensionHeaders = 64;                   // pax, global pax, GNU long names in front of one entry
constexpr uint64_t kMaxExtensionSize = uint64_t{1} << 26;  // what we read of one extended header's data

// The size field of a ustar header: octal, or base-256 when the high bit of the first byte is set.
uint64_t header_size(const char* h) {
  const auto* f = reinterpret_cast<const unsigned char*>(h + 124);
  uint64_t v = 0;
  if (f[0] & 0x80) {
    for (int i = 1; i < 12; ++i) v = (v << 8) | f[i];
    return v;
  }
  for (int i = 0; i < 12 && f[i] != 0 && f[i] != ' '; ++i) {
    if (f[i] < '0' || f[i] > '7') break;
    v = (v << 3) | (f[i] - '0');
  }
  return v;
}

bool is_pax_format(int format) {
  return format == ARCHIVE_FORMAT_TAR_PAX_INTERCHANGE || format == ARCHIVE_FORMAT_TAR_PAX_RESTRICTED;
}

}  // namespace

PaxRecordCheck::~PaxRecordCheck() {
  second_.reset();
  if (second_fd_ >= 0) ::close(second_fd_);
}

Status PaxRecordCheck::check(struct archive* a, const std::string& where) {
  if (!is_pax_format(archive_format(a)) || !seekable_) return Status();
  int64_t start = archive_read_header_position(a);
  if (start < 0) return Status();
  uint64_t position = static_cast<uint64_t>(start);
  for (int i = 0; i < kMaxExtensionHeaders; ++i) {
    char header[kBlock];
    QR_RETURN_IF_ERROR(read_at(position, header, kBlock));
    char type = header[156];
    if (type != 'x' && type != 'X' && type != 'g' && type != 'L' && type != 'K') return Status();
    uint64_t size = header_size(header);
    if ((type == 'x' || type == 'X' || type == 'g') && size <= kMaxExtensionSize) {
      std::string records(size, '\0');
      QR_RETURN_IF_ERROR(read_at(position + kBlock, records.data(), size));
      QR_RETURN_IF_ERROR(scan_records(records, where));
    }
    position += kBlock + (size + kBlock - 1) / kBlock * kBlock;
  }
  return Status();
}

// Records are "LEN KEY=VALUE\n", LEN counting the whole record. A record libarchive would drop the header for
// (malformed, or over 999,999 bytes) is refused here too: it reports that only as a warning, which a GNU 'K'
// header in front hides entirely, or a name it cannot convert overwrites.
Status PaxRecordCheck::scan_records(const std::string& records, const std::string& where) {
  std::string_view rest(records);
  for (size_t at = 0; !rest.empty();) {
    auto malformed = [&](const std::string& why) {
      return Status::bad_input(where + ": malformed pax record at byte " + std::to_string(at) + " of its header (" +
                               why + "); libarchive would drop the whole header");
    };
    size_t space = rest.find(' ');
    if (space == std::string_view::npos || space == 0 || space > 7) return malformed("no length");
    uint64_t length = 0;
    for (char c : rest.substr(0, space)) {
      if (c < '0' || c > '9') return malformed("a length that is not a number");
      length = length * 10 + static_cast<uint64_t>(c - '0');
    }
    if (length > 999999) return malformed("over 999,999 bytes");
    if (length <= space + 1 || length > rest.size() || rest[length - 1] != '\n') return malformed("a wrong length");
    std::string_view record = rest.substr(space + 1, length - space - 2);
    size_t eq = record.find('=');
    if (eq == std::string_view::npos || eq == 0) return malformed("no key");
    std::string_view key = record.substr(0, eq);
    std::string_view value = record.substr(eq + 1);
    if ((key == "path" || key == "linkpath") && value.find('\0') != std::string_view::npos) {
      return Status::bad_input(where + ": pax record '" + std::string(key) +
                               "' holds a NUL byte (libarchive would truncate the name there)");
    }
    // Records libarchive reads and Go's archive/tar does not, or parses while a conversion warning can hide
    // its failure: star's size override (libarchive reports it as the size, Go ignores it) and Solaris holes.
    if (key == "SCHILY.realsize" || key == "SUN.holesdata") {
      return Status::bad_input(where + ": pax record '" + std::string(key) +
                               "' (libarchive and Go's tar reader disagree on it)");
    }
    if (key == "GNU.sparse.map") {  // libarchive warns and drops the map; a name it cannot convert hides that
      size_t numbers = 1;
      for (char c : value) numbers += c == ',';
      bool digits = std::all_of(value.begin(), value.end(), [](char c) { return c == ',' || (c >= '0' && c <= '9'); });
      if (!digits || numbers % 2 != 0 || value.empty() || value.find(",,") != std::string_view::npos ||
          value.starts_with(',') || value.ends_with(',')) {
        return Status::bad_input(where + ": pax record 'GNU.sparse.map' is not a list of offset,size pairs");
      }
    }
    rest.remove_prefix(length);
    at += length;
  }
  return Status();
}

Status PaxRecordCheck::read_at(uint64_t position, char* out, size_t size) {
  if (in_place_) {
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::pread(fd_, out + done, size - done, static_cast<off_t>(position + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::from_errno("reading a pax header again", errno);
      if (n == 0) return Status::bad_input("truncated: a pax header runs past the end of the input");
      done += static_cast<size_t>(n);
    }
    return Status();
  }
  if (!second_) {
    // A new open file description, so that reading does not move the first reader's file offset.
    second_fd_ = ::open(("/proc/self/fd/" + std::to_string(fd_)).c_str(), O_RDONLY | O_CLOEXEC);
    if (second_fd_ < 0) return Status::from_errno("opening the input again to check its pax headers", errno);
    second_.reset(archive_read_new());
    support_layer_compressions(second_.get());
    archive_read_support_format_raw(second_.get());
    struct archive_entry* ae;
    if (archive_read_open_fd(second_.get(), second_fd_, 1 << 16) != ARCHIVE_OK ||
        archive_read_next_header(second_.get(), &ae) != ARCHIVE_OK) {
      return archive_error(second_.get(), "reading the input again to check its pax headers");
    }
  }
  if (position < second_position_) return Status::internal("pax header positions went backwards");
  char scratch[1 << 14];
  while (second_position_ < position) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(sizeof scratch, position - second_position_));
    la_ssize_t n = archive_read_data(second_.get(), scratch, want);
    if (n < 0) return archive_error(second_.get(), "reading the input again to check its pax headers");
    if (n == 0) return Status::bad_input("truncated: a pax header runs past the end of the input");
    second_position_ += static_cast<uint64_t>(n);
  }
  size_t done = 0;
  while (done < size) {
    la_ssize_t n = archive_read_data(second_.get(), out + done, size - done);
    if (n < 0) return archive_error(second_.get(), "reading the input again to check its pax headers");
    if (n == 0) return Status::bad_input("truncated: a pax header runs past the end of the input");
    done += static_cast<size_t>(n);
  }
  second_position_ += size;
  return Status();
}

}  // namespace quorate::normalize::detail
