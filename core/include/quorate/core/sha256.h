// SHA-256 through OpenSSL EVP, and "sha256:<hex>" digest strings as OCI uses them.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "quorate/core/status.h"

namespace quorate {

// Incremental SHA-256. Not thread-safe; one per stream.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void update(std::span<const uint8_t> bytes);
  void update(std::string_view bytes);
  // The 32-byte digest; the object is reset afterwards.
  std::string finish_raw();
  // "sha256:<64 lowercase hex>"; the object is reset afterwards.
  std::string finish_digest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::string_view bytes);
// "sha256:" + sha256_hex(bytes).
std::string sha256_digest(std::string_view bytes);

// bad_input unless `digest` is "sha256:" followed by 64 lowercase hex characters.
Status check_digest(std::string_view digest);
// The 64 hex characters of a checked digest.
std::string digest_hex(std::string_view digest);

}  // namespace quorate
