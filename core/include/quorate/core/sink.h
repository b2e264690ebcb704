// Byte sinks: where streamed output goes (a file, a hash, a compressor, memory).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "quorate/core/sha256.h"
#include "quorate/core/status.h"

namespace quorate {

// A destination for bytes. Implementations are not thread-safe.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual Status write(std::span<const uint8_t> bytes) = 0;
  Status write(std::string_view bytes) {
    return write(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  }
  // Flushes this sink's own buffered state (and trailer, for a compressor) to its downstream; called once at
  // the end of a stream. It does not finish the downstream sink: whoever built a chain finishes each stage.
  virtual Status finish() { return Status(); }
};

// Appends to a string it owns.
class StringSink final : public Sink {
 public:
  Status write(std::span<const uint8_t> bytes) override {
    data_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return Status();
  }
  using Sink::write;
  const std::string& data() const { return data_; }
  std::string take() { return std::move(data_); }

 private:
  std::string data_;
};

// Hashes and counts what passes through, then forwards it to `next` (which it does not own; may be null).
class DigestingSink final : public Sink {
 public:
  explicit DigestingSink(Sink* next) : next_(next) {}
  Status write(std::span<const uint8_t> bytes) override;
  using Sink::write;
  // "sha256:<hex>" of everything written; call once.
  std::string digest() { return sha256_.finish_digest(); }
  uint64_t size() const { return size_; }

 private:
  Sink* next_;
  Sha256 sha256_;
  uint64_t size_ = 0;
};

}  // namespace quorate
