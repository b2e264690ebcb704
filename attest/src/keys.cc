// Ed25519 and ECDSA P-256 keys through OpenSSL 3 EVP: generation, PEM I/O, keyids, signing and verification.
#include "quorate/attest/keys.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

#include "quorate/core/file.h"
#include "quorate/core/sha256.h"

namespace quorate::attest {
namespace {

constexpr uint64_t kMaxKeyFileBytes = 64u << 10;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

// The first queued OpenSSL error as text, clearing the queue so the next call starts clean.
std::string openssl_error() {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown OpenSSL error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

std::string bio_contents(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, n > 0 ? static_cast<size_t>(n) : 0);
}

Result<KeyType> type_of(EVP_PKEY* pkey) {
  if (EVP_PKEY_is_a(pkey, "ED25519")) return KeyType::kEd25519;
  if (EVP_PKEY_is_a(pkey, "EC")) {
    char group[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, "group", group, sizeof group, &len) == 1 &&
        (std::strcmp(group, "prime256v1") == 0 || std::strcmp(group, "P-256") == 0)) {
      return KeyType::kEcdsaP256;
    }
    return Status::unsupported(std::string("EC key on curve '") + group + "': only P-256 is supported");
  }
  return Status::unsupported(std::string("key type ") + EVP_PKEY_get0_type_name(pkey) +
                             ": only Ed25519 and ECDSA P-256 are supported");
}

Result<std::string> spki_der_of(EVP_PKEY* pkey) {
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(pkey, &der);
  if (n <= 0) return Status::internal("cannot encode public key: " + openssl_error());
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}

std::string sha256_raw(std::string_view bytes) {
  Sha256 h;
  h.update(bytes);
  return h.finish_raw();
}

// Ed25519 takes no digest (it hashes internally); ECDSA signs SHA-256.
const EVP_MD* digest_for(KeyType type) { return type == KeyType::kEd25519 ? nullptr : EVP_sha256(); }

// PEM passphrase callback: never prompts on a terminal (library code), hands over the given passphrase or none.
int passphrase_cb(char* buf, int size, int /*rwflag*/, void* u) {
  const auto* pass = static_cast<const std::string*>(u);
  if (pass == nullptr || pass->empty() || static_cast<int>(pass->size()) > size) return 0;
  std::memcpy(buf, pass->data(), pass->size());
  return static_cast<int>(pass->size());
}

}  // namespace

// Verification contexts are costly to set up in OpenSSL 3 (each init fetches the algorithm from the provider),
// so a key keeps a pool of initialized ones and reuses them: Ed25519 as one-shot EVP_DigestVerify contexts,
// ECDSA as EVP_PKEY_verify contexts over a SHA-256 we compute. The pool is what makes verify() thread-safe.
struct PublicKey::Impl {
  PkeyPtr pkey;
  KeyType type;
  std::string keyid;
  std::string der;

  struct Ctx {
    EVP_MD_CTX* md = nullptr;    // Ed25519
    EVP_PKEY_CTX* pk = nullptr;  // ECDSA
  };
  mutable std::mutex mu;
  mutable std::vector<Ctx> pool;

  ~Impl() {
    for (auto& c : pool) {
      EVP_MD_CTX_free(c.md);
      EVP_PKEY_CTX_free(c.pk);
    }
  }

  // A ready context from the pool, or a new one; an empty Ctx when OpenSSL refuses.
  Ctx acquire() const {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!pool.empty()) {
        Ctx c = pool.back();
        pool.pop_back();
        return c;
      }
    }
    Ctx c;
    if (type == KeyType::kEd25519) {
      c.md = EVP_MD_CTX_new();
      if (c.md == nullptr || EVP_DigestVerifyInit(c.md, nullptr, nullptr, nullptr, pkey.get()) != 1) {
        EVP_MD_CTX_free(c.md);
        c.md = nullptr;
      }
    } else {
      c.pk = EVP_PKEY_CTX_new(pkey.get(), nullptr);
      if (c.pk == nullptr || EVP_PKEY_verify_init(c.pk) != 1 ||
          EVP_PKEY_CTX_set_signature_md(c.pk, EVP_sha256()) != 1) {
        EVP_PKEY_CTX_free(c.pk);
        c.pk = nullptr;
      }
    }
    return c;
  }
  void release(Ctx c) const {
    std::lock_guard<std::mutex> lock(mu);
    pool.push_back(c);
  }
};

const char* key_type_name(KeyType type) { return type == KeyType::kEd25519 ? "ed25519" : "p256"; }

Result<KeyType> parse_key_type(std::string_view name) {
  if (name == "ed25519") return KeyType::kEd25519;
  if (name == "p256" || name == "ecdsa-p256") return KeyType::kEcdsaP256;
  return Status::bad_input("key type '" + std::string(name) + "': expected ed25519 or p256");
}

std::string keyid_of_spki(std::string_view spki_der) { return sha256_hex(spki_der); }

Result<PublicKey> PublicKey::from_pem(std::string_view pem) {
  if (pem.find("-----BEGIN PUBLIC KEY-----") == std::string_view::npos) {
    return Status::bad_input("not a PEM public key (no '-----BEGIN PUBLIC KEY-----' line)");
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey) return Status::bad_input("malformed PEM public key: " + openssl_error());
  auto impl = std::make_shared<Impl>();
  impl->type = QR_TRY(type_of(pkey.get()));
  impl->der = QR_TRY(spki_der_of(pkey.get()));
  impl->keyid = keyid_of_spki(impl->der);
  impl->pkey = std::move(pkey);
  return PublicKey(std::move(impl));
}

Result<PublicKey> PublicKey::from_der(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  PkeyPtr pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (!pkey || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    return Status::bad_input("malformed DER public key: " + openssl_error());
  }
  auto impl = std::make_shared<Impl>();
  impl->type = QR_TRY(type_of(pkey.get()));
  impl->der = QR_TRY(spki_der_of(pkey.get()));
  impl->keyid = keyid_of_spki(impl->der);
  impl->pkey = std::move(pkey);
  return PublicKey(std::move(impl));
}

namespace {

Result<PublicKey> public_key_of_file(const std::filesystem::path& path, Result<std::string> text) {
  if (!text.ok()) return text.status();
  auto key = PublicKey::from_pem(*text);
  if (!key.ok()) return key.status().with_context(path.string());
  return key;
}

}  // namespace

Result<PublicKey> PublicKey::load(const std::filesystem::path& path) {
  return public_key_of_file(path, read_file(path, kMaxKeyFileBytes));
}

Result<PublicKey> PublicKey::load_named(const std::filesystem::path& path) {
  return public_key_of_file(path, read_regular_file(path, kMaxKeyFileBytes));
}

KeyType PublicKey::type() const { return impl_->type; }
const std::string& PublicKey::keyid() const { return impl_->keyid; }
std::string PublicKey::spki_der() const { return impl_->der; }

std::string PublicKey::pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(bio.get(), impl_->pkey.get());
  return bio_contents(bio.get());
}

Status PublicKey::verify(std::string_view message, std::string_view signature) const {
  Impl::Ctx ctx = impl_->acquire();
  if (ctx.md == nullptr && ctx.pk == nullptr) return Status::internal("cannot start verification: " + openssl_error());
  const auto* sig = reinterpret_cast<const unsigned char*>(signature.data());
  int rc;
  if (ctx.md != nullptr) {
    rc = EVP_DigestVerify(ctx.md, sig, signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size());
  } else {
    std::string digest = sha256_raw(message);
    rc = EVP_PKEY_verify(ctx.pk, sig, signature.size(), reinterpret_cast<const unsigned char*>(digest.data()),
                         digest.size());
  }
  impl_->release(ctx);
  if (rc != 1) {
    ERR_clear_error();
    return Status::verification("signature does not verify with key " + impl_->keyid);
  }
  return Status::ok_status();
}

namespace {

// A private key held in memory, read from a PEM file or text.
class FileSigner final : public Signer {
 public:
  FileSigner(PkeyPtr pkey, PublicKey pub) : pkey_(std::move(pkey)), pub_(std::move(pub)) {}
  KeyType type() const override { return pub_.type(); }
  const std::string& keyid() const override { return pub_.keyid(); }
  const PublicKey& public_key() const override { return pub_; }

  Result<std::string> sign(std::string_view message) const override {
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, digest_for(type()), nullptr, pkey_.get()) != 1) {
      return Status::internal("cannot start signing: " + openssl_error());
    }
    const auto* msg = reinterpret_cast<const unsigned char*>(message.data());
    size_t len = 0;
    if (EVP_DigestSign(ctx.get(), nullptr, &len, msg, message.size()) != 1) {
      return Status::internal("cannot sign: " + openssl_error());
    }
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, msg, message.size()) != 1) {
      return Status::internal("cannot sign: " + openssl_error());
    }
    sig.resize(len);
    return sig;
  }

 private:
  PkeyPtr pkey_;
  PublicKey pub_;
};

Result<std::string> public_pem_of(EVP_PKEY* pkey) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PUBKEY(bio.get(), pkey) != 1)
    return Status::internal("cannot write public key: " + openssl_error());
  return bio_contents(bio.get());
}

}  // namespace

Result<std::unique_ptr<Signer>> signer_from_pem(std::string_view pem, const std::string& passphrase) {
  if (pem.find("PRIVATE KEY-----") == std::string_view::npos) {
    return Status::bad_input("not a PEM private key (no '-----BEGIN PRIVATE KEY-----' line)");
  }
  bool encrypted = pem.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string_view::npos;
  if (encrypted && passphrase.empty()) return Status::bad_input("the private key is encrypted: a passphrase is needed");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, passphrase_cb, const_cast<std::string*>(&passphrase)));
  if (!pkey) {
    return Status::bad_input(std::string(encrypted ? "cannot decrypt the private key (wrong passphrase?): "
                                                   : "malformed PEM private key: ") +
                             openssl_error());
  }
  QR_TRY(type_of(pkey.get()));
  auto pub_pem = QR_TRY(public_pem_of(pkey.get()));
  auto pub = QR_TRY(PublicKey::from_pem(pub_pem));
  return std::unique_ptr<Signer>(new FileSigner(std::move(pkey), std::move(pub)));
}

Result<std::unique_ptr<Signer>> load_signer(const std::filesystem::path& path, const std::string& passphrase) {
  auto text = read_secret_file(path, kMaxKeyFileBytes, "private key file");
  // A public key given where the private one belongs is told so, before any advice about its mode.
  std::error_code ec;
  auto head = text.ok() || !std::filesystem::is_regular_file(path, ec) ? text : read_file(path, kMaxKeyFileBytes);
  if (head.ok() && head->find("-----BEGIN PUBLIC KEY-----") != std::string::npos &&
      head->find("PRIVATE KEY-----") == std::string::npos) {
    return Status::bad_input(path.string() +
                             ": this is a public key; signing needs the private key (the file "
                             "`quorate key generate --out NAME` wrote as NAME, not NAME.pub.pem)");
  }
  if (!text.ok()) return text.status();
  auto signer = signer_from_pem(*text, passphrase);
  if (!signer.ok()) return signer.status().with_context(path.string());
  return signer;
}

Result<PublicKey> public_key_in_file(const std::filesystem::path& path, const std::string& passphrase) {
  auto text = read_secret_file(path, kMaxKeyFileBytes, "key file");
  if (!text.ok()) {
    // Others may read a public key: it is read again, unless it is a FIFO or device (refused unopened) or
    // holds a private key, whose refusal (with the chmod to run) stands.
    auto open = read_regular_file(path, kMaxKeyFileBytes);
    if (!open.ok() || open->find("PRIVATE KEY-----") != std::string::npos) return text.status();
    text = std::move(open);
  }
  if (text->find("PRIVATE KEY-----") == std::string::npos) return public_key_of_file(path, std::move(text));
  auto signer = signer_from_pem(*text, passphrase);
  OPENSSL_cleanse(text->data(), text->size());
  if (!signer.ok()) return signer.status().with_context(path.string());
  return (*signer)->public_key();
}

Result<KeyPair> generate_key(KeyType type, const std::string& passphrase) {
  PkeyPtr pkey(type == KeyType::kEd25519 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                                         : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!pkey) return Status::internal("cannot generate key: " + openssl_error());
  KeyPair pair;
  pair.type = type;
  BioPtr bio(BIO_new(BIO_s_mem()));
  const EVP_CIPHER* cipher = passphrase.empty() ? nullptr : EVP_aes_256_cbc();
  int rc = PEM_write_bio_PKCS8PrivateKey(bio.get(), pkey.get(), cipher, nullptr, 0, passphrase_cb,
                                         const_cast<std::string*>(&passphrase));
  if (rc != 1) return Status::internal("cannot write private key: " + openssl_error());
  pair.private_pem = bio_contents(bio.get());
  pair.public_pem = QR_TRY(public_pem_of(pkey.get()));
  pair.keyid = keyid_of_spki(QR_TRY(spki_der_of(pkey.get())));
  return pair;
}

std::filesystem::path public_key_path(const std::filesystem::path& private_key_path) {
  return std::filesystem::path(private_key_path.string() + ".pub.pem");
}

Status write_key_pair(const std::filesystem::path& out, const KeyPair& pair) {
  auto pub = public_key_path(out);
  for (const auto& p : {out, pub}) {
    std::error_code ec;
    if (std::filesystem::exists(p, ec)) return Status::bad_input(p.string() + ": exists; a key is never overwritten");
  }
  // Missing parent directories are made, mode 0700 (only the owner lists a key directory); existing ones are
  // left as they are.
  std::filesystem::path parent = out.parent_path();
  if (!parent.empty()) {
    std::vector<std::filesystem::path> missing;
    std::error_code ec;
    for (auto p = parent; !p.empty() && !std::filesystem::exists(p, ec); p = p.parent_path()) {
      missing.push_back(p);
      if (p == p.parent_path()) break;
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
      if (::mkdir(it->c_str(), 0700) != 0 && errno != EEXIST)
        return Status::from_errno("create " + it->string(), errno);
      if (::chmod(it->c_str(), 0700) != 0) return Status::from_errno("chmod 700 " + it->string(), errno);
    }
  }
  QR_RETURN_IF_ERROR(write_file_atomic(out, pair.private_pem, 0600));
  return write_file_atomic(pub, pair.public_pem, 0644);
}

}  // namespace quorate::attest
