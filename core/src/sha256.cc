// SHA-256 over OpenSSL EVP.
#include "quorate/core/sha256.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

#include "quorate/core/encoding.h"
#include "quorate/core/sha256_file.h"

namespace quorate {
namespace {

// OpenSSL 3 looks EVP_sha256() up in its providers again at every EVP_DigestInit_ex (an "implicit fetch"),
// which costs more than hashing a small message; the algorithm is fetched once and shared by every context.
const EVP_MD* sha256_md() {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
  static const EVP_MD* const md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : EVP_sha256();
  }();
  return md;
#else
  return EVP_sha256();
#endif
}

}  // namespace

struct Sha256::Impl {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Impl() {
    if (ctx == nullptr || EVP_DigestInit_ex(ctx, sha256_md(), nullptr) != 1) std::abort();
  }
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::span<const uint8_t> bytes) { EVP_DigestUpdate(impl_->ctx, bytes.data(), bytes.size()); }

void Sha256::update(std::string_view bytes) { EVP_DigestUpdate(impl_->ctx, bytes.data(), bytes.size()); }

std::string Sha256::finish_raw() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, md, &len);
  EVP_DigestInit_ex(impl_->ctx, sha256_md(), nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string Sha256::finish_digest() { return "sha256:" + hex_encode(finish_raw()); }

std::string sha256_hex(std::string_view bytes) {
  Sha256 h;
  h.update(bytes);
  return hex_encode(h.finish_raw());
}

std::string sha256_digest(std::string_view bytes) { return "sha256:" + sha256_hex(bytes); }

Status check_digest(std::string_view digest) {
  constexpr std::string_view kPrefix = "sha256:";
  if (digest.substr(0, kPrefix.size()) != kPrefix || !is_lower_hex(digest.substr(kPrefix.size()), 64)) {
    return Status::bad_input("not a sha256 digest (want \"sha256:\" and 64 lowercase hex): \"" +
                             std::string(digest.substr(0, 80)) + "\"");
  }
  return Status();
}

std::string digest_hex(std::string_view digest) { return std::string(digest.substr(7)); }

Result<std::string> sha256_file_digest(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno("open " + path.string(), errno);
  Sha256 hash;
  std::vector<uint8_t> buf(1 << 20);
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return Status::from_errno("read " + path.string(), e);
    }
    if (n == 0) break;
    hash.update(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
  }
  ::close(fd);
  return hash.finish_digest();
}

}  // namespace quorate
