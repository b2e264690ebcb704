// The baselines of the signature benchmarks, in the benchmark's own process so that they alternate with ours
// run for run (bench_stats.h): OpenSSL verifying signatures and nothing else.
//
//   SpeedVerify  what `openssl speed ed25519` / `openssl speed ecdsap256` time (OpenSSL 3.0 apps/speed.c): one
//                key, a 20-byte message signed once, the verify context set up once, then verify in a loop
//                (EVP_DigestVerify for Ed25519, EVP_PKEY_verify of the 20 bytes as a digest for P-256).
//   RawVerify    the same loop over given messages (the PAE bytes our envelopes carry) under their signers'
//                Ed25519 public keys: one context per key, set up once, EVP_DigestVerify for each message.
// Both exit the process with a message when OpenSSL fails or a signature does not verify: a baseline that
// verifies nothing would make every ratio meaningless.
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_stats.h"

namespace bench {

inline void raw_verify_die(const char* what) {
  std::fprintf(stderr, "baseline: %s failed\n", what);
  std::exit(2);
}

inline EVP_PKEY* pkey_from_pem(const std::string& pem, bool is_private) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* k = is_private ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr)
                           : PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (k == nullptr) raw_verify_die("reading a PEM key");
  return k;
}

class SpeedVerify {
 public:
  // `private_pem`: an Ed25519 or P-256 private key (PKCS#8 PEM), as attest::generate_key writes it.
  explicit SpeedVerify(const std::string& private_pem) : key_(pkey_from_pem(private_pem, true)) {
    for (int i = 0; i < 20; ++i) msg_[i] = static_cast<unsigned char>(i * 7 + 1);
    eddsa_ = EVP_PKEY_get_id(key_) == EVP_PKEY_ED25519;
    if (eddsa_) {
      EVP_MD_CTX* sctx = EVP_MD_CTX_new();
      size_t len = sizeof sig_;
      if (EVP_DigestSignInit(sctx, nullptr, nullptr, nullptr, key_) != 1 ||
          EVP_DigestSign(sctx, sig_, &len, msg_, sizeof msg_) != 1) {
        raw_verify_die("Ed25519 sign");
      }
      EVP_MD_CTX_free(sctx);
      sig_len_ = len;
      md_ctx_ = EVP_MD_CTX_new();
      if (EVP_DigestVerifyInit(md_ctx_, nullptr, nullptr, nullptr, key_) != 1) raw_verify_die("Ed25519 verify init");
    } else {
      EVP_PKEY_CTX* sctx = EVP_PKEY_CTX_new(key_, nullptr);
      size_t len = sizeof sig_;
      if (sctx == nullptr || EVP_PKEY_sign_init(sctx) != 1 || EVP_PKEY_sign(sctx, sig_, &len, msg_, sizeof msg_) != 1) {
        raw_verify_die("ECDSA sign");
      }
      EVP_PKEY_CTX_free(sctx);
      sig_len_ = len;
      pkey_ctx_ = EVP_PKEY_CTX_new(key_, nullptr);
      if (pkey_ctx_ == nullptr || EVP_PKEY_verify_init(pkey_ctx_) != 1) raw_verify_die("ECDSA verify init");
    }
  }
  ~SpeedVerify() {
    EVP_MD_CTX_free(md_ctx_);
    EVP_PKEY_CTX_free(pkey_ctx_);
    EVP_PKEY_free(key_);
  }
  SpeedVerify(const SpeedVerify&) = delete;
  SpeedVerify& operator=(const SpeedVerify&) = delete;

  bool verify() {
    return eddsa_ ? EVP_DigestVerify(md_ctx_, sig_, sig_len_, msg_, sizeof msg_) == 1
                  : EVP_PKEY_verify(pkey_ctx_, sig_, sig_len_, msg_, sizeof msg_) == 1;
  }

 private:
  EVP_PKEY* key_;
  bool eddsa_ = false;
  unsigned char msg_[20];
  unsigned char sig_[160];
  size_t sig_len_ = 0;
  EVP_MD_CTX* md_ctx_ = nullptr;
  EVP_PKEY_CTX* pkey_ctx_ = nullptr;
};

class RawVerify {
 public:
  // `public_pems[k]`: signer k's Ed25519 public key (SPKI PEM). As openssl speed does, each key's verify context
  // is set up once and EVP_DigestVerify (Ed25519's one-shot verify) called on it for every message.
  explicit RawVerify(const std::vector<std::string>& public_pems) {
    for (const auto& pem : public_pems) {
      EVP_PKEY* k = pkey_from_pem(pem, false);
      if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) raw_verify_die("RawVerify takes Ed25519 keys only");
      EVP_MD_CTX* ctx = EVP_MD_CTX_new();
      if (ctx == nullptr || EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, k) != 1) {
        raw_verify_die("Ed25519 verify init");
      }
      keys_.push_back(k);
      ctxs_.push_back(ctx);
    }
  }
  ~RawVerify() {
    for (auto* c : ctxs_) EVP_MD_CTX_free(c);
    for (auto* k : keys_) EVP_PKEY_free(k);
  }
  RawVerify(const RawVerify&) = delete;
  RawVerify& operator=(const RawVerify&) = delete;

  // Adds one item: `message` (the PAE bytes) signed with `sig` by signer `key`.
  void add(std::string message, std::string sig, size_t key) {
    if (key >= ctxs_.size()) raw_verify_die("RawVerify::add: no such key");
    items_.push_back({std::move(message), std::move(sig), key});
  }
  size_t size() const { return items_.size(); }

  // Verifies every item once, timed: a Run of size() verifications.
  Run run() {
    Timer t;
    for (const auto& it : items_) {
      if (EVP_DigestVerify(ctxs_[it.key], reinterpret_cast<const unsigned char*>(it.sig.data()), it.sig.size(),
                           reinterpret_cast<const unsigned char*>(it.message.data()), it.message.size()) != 1) {
        raw_verify_die("verifying a signature of the benchmark's own attestations");
      }
    }
    return t.stop(static_cast<double>(items_.size()));
  }

 private:
  struct Item {
    std::string message, sig;
    size_t key;
  };
  std::vector<EVP_PKEY*> keys_;
  std::vector<EVP_MD_CTX*> ctxs_;
  std::vector<Item> items_;
};

// Runs `fn` (one verification, returning whether it verified) in batches of 64 until `seconds` of this process's
// CPU time have passed: a Run of the verifications done. Exits when one fails.
template <class Fn>
Run run_for_cpu_seconds(Fn&& fn, double seconds) {
  Timer t;
  double start = cpu_seconds();
  long n = 0;
  while (cpu_seconds() - start < seconds) {
    for (int i = 0; i < 64; ++i) {
      if (!fn()) {
        std::fprintf(stderr, "verification failed in the benchmark\n");
        std::exit(1);
      }
    }
    n += 64;
  }
  return t.stop(static_cast<double>(n));
}

}  // namespace bench
