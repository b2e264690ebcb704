// The pax records libarchive reads but cannot report faithfully: a `path` or `linkpath` value holding a NUL
// byte, which libarchive truncates at the NUL (so "evil\0suffix" would pass as "evil"). Go's archive/tar,
// which container runtimes use, refuses such a record; so do we.
#pragma once

#include <archive.h>

#include <cstdint>
#include <memory>
#include <string>

#include "archive_util.h"
#include "quorate/core/status.h"

namespace quorate::normalize::detail {

// Reads the extended headers in front of an entry again, from the decompressed stream, at the position
// libarchive reports for the entry (archive_read_header_position). Only entries libarchive marks as pax are
// looked at, so plain ustar layers cost nothing. An uncompressed input is read in place (pread); a compressed
// one through a second decompressing reader over the same open file, advanced as entries go by (a pax entry
// costs at most one more decompression of the input up to it). A non-seekable input cannot be read twice:
// its pax records are not checked (docs/decisions.md).
class PaxRecordCheck {
 public:
  // `fd`: the input, open for reading; `seekable`: a regular file; `in_place`: uncompressed.
  PaxRecordCheck(int fd, bool seekable, bool in_place) : fd_(fd), seekable_(seekable), in_place_(in_place) {}
  ~PaxRecordCheck();
  PaxRecordCheck(const PaxRecordCheck&) = delete;
  PaxRecordCheck& operator=(const PaxRecordCheck&) = delete;

  // Call after archive_read_next_header returned `a`'s current entry. bad_input "<where>: pax record 'path'
  // holds a NUL byte" and the like; io when the input cannot be read again.
  Status check(struct archive* a, const std::string& where);

 private:
  Status read_at(uint64_t position, char* out, size_t size);
  Status scan_records(const std::string& records, const std::string& where);

  int fd_;
  bool seekable_;
  bool in_place_;
  int second_fd_ = -1;
  std::unique_ptr<struct archive, ArchiveCloser> second_;
  uint64_t second_position_ = 0;
};

}  // namespace quorate::normalize::detail
