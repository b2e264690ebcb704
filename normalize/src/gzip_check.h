// The integrity check of gzip input that libarchive skips: its gzip reader never reads the CRC-32 and length
// of a member's trailer (and stops reading at the end of the tar), so corrupt data passed as good.
#pragma once

#include <zlib.h>

#include <string>
#include <string_view>

#include "quorate/core/status.h"

namespace quorate::normalize::detail {

// Inflates the raw input a second time, discarding the output, only to have zlib check every member's
// trailer. Members may follow one another; bytes after the last member that do not start another one are
// ignored, as libarchive ignores them. Not thread-safe.
class GzipCheck {
 public:
  // Whether `start` (the first bytes of an input) is gzip: 1f 8b 08, what libarchive's gzip reader takes.
  static bool is_gzip(std::string_view start);

  GzipCheck();
  ~GzipCheck();
  GzipCheck(const GzipCheck&) = delete;
  GzipCheck& operator=(const GzipCheck&) = delete;

  // The next bytes of the input. bad_input naming the problem ("gzip CRC-32 mismatch", a length mismatch,
  // corrupt deflate data) as soon as zlib sees it.
  Status update(std::string_view bytes);
  // After the last byte: bad_input when the input ended inside a member (a missing or cut trailer).
  Status finish() const;

 private:
  z_stream z_{};
  std::string scratch_ = std::string(1 << 16, '\0');
  bool in_member_ = true;  // a member has started and its trailer was not seen yet
  bool done_ = false;      // trailing bytes after the last member: ignored
  int members_ = 0;        // members whose trailer checked out
};

}  // namespace quorate::normalize::detail
