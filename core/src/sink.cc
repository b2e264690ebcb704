// Sinks that ship with core.
#include "quorate/core/sink.h"

namespace quorate {

Status DigestingSink::write(std::span<const uint8_t> bytes) {
  sha256_.update(bytes);
  size_ += bytes.size();
  return next_ ? next_->write(bytes) : Status();
}

}  // namespace quorate
