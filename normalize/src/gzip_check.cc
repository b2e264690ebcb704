// GzipCheck: zlib inflates the raw gzip input beside libarchive so that each member's CRC-32 and length are
// checked.
#include "gzip_check.h"

#include <cstring>

namespace quorate::normalize::detail {

bool GzipCheck::is_gzip(std::string_view start) {
  return start.size() >= 3 && start[0] == '\x1f' && start[1] == '\x8b' && start[2] == '\x08';
}

GzipCheck::GzipCheck() {
  // 15 + 16: a gzip wrapper, whose trailer zlib checks (Z_DATA_ERROR "incorrect data check" on a bad CRC).
  if (inflateInit2(&z_, 15 + 16) != Z_OK) done_ = true;  // out of memory: the reader will fail on its own
}

GzipCheck::~GzipCheck() { inflateEnd(&z_); }

Status GzipCheck::update(std::string_view bytes) {
  z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z_.avail_in = static_cast<uInt>(bytes.size());
  while (z_.avail_in > 0 && !done_) {
    if (!in_member_) {
      // After a member: another one, or trailing bytes (zero padding, garbage) that libarchive ignores too.
      if (*z_.next_in != 0x1f) {
        done_ = true;
        break;
      }
      inflateReset(&z_);
      in_member_ = true;
    }
    z_.next_out = reinterpret_cast<Bytef*>(scratch_.data());
    z_.avail_out = static_cast<uInt>(scratch_.size());
    int r = inflate(&z_, Z_NO_FLUSH);
    if (r == Z_STREAM_END) {
      in_member_ = false;
      ++members_;
      continue;
    }
    if (r == Z_OK || r == Z_BUF_ERROR) continue;
    if (members_ > 0 && z_.total_in <= 10) {  // a later "member" whose header is not gzip: trailing bytes
      done_ = true;
      break;
    }
    std::string msg = z_.msg ? z_.msg : "zlib error " + std::to_string(r);
    if (msg == "incorrect data check") {
      return Status::bad_input("gzip CRC-32 mismatch in member " + std::to_string(members_ + 1) +
                               ": the compressed data is corrupt (its CRC check failed)");
    }
    if (msg == "incorrect length check") {
      return Status::bad_input("gzip length mismatch in member " + std::to_string(members_ + 1) +
                               ": the compressed data is corrupt (its length check failed)");
    }
    return Status::bad_input("corrupt gzip data in member " + std::to_string(members_ + 1) + ": " + msg);
  }
  return Status();
}

Status GzipCheck::finish() const {
  if (in_member_ && !done_) {
    return Status::bad_input("gzip data ends inside member " + std::to_string(members_ + 1) +
                             ", before its CRC and length trailer (truncated)");
  }
  return Status();
}

}  // namespace quorate::normalize::detail
