// Signing keys: the Signer interface every signature goes through, file keys (PKCS#8 PEM) and public keys.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "quorate/core/status.h"

namespace quorate::attest {

// The signature algorithms quorate signs and verifies with. Ed25519 signs the message itself; ECDSA P-256 signs
// its SHA-256 and writes the signature in DER (as DSSE, Sigstore and `openssl dgst -sha256` expect).
enum class KeyType { kEd25519, kEcdsaP256 };
const char* key_type_name(KeyType type);  // "ed25519" | "p256"
// "ed25519" or "p256" (also "ecdsa-p256"); bad_input otherwise.
Result<KeyType> parse_key_type(std::string_view name);

// Lowercase hex SHA-256 of a DER SubjectPublicKeyInfo: a node key's identity (DESIGN.md, Identities).
std::string keyid_of_spki(std::string_view spki_der);

// A public key. A cheap-to-copy immutable value; verify() may be called from any number of threads at once.
class PublicKey {
 public:
  // From PEM ("-----BEGIN PUBLIC KEY-----", SubjectPublicKeyInfo). bad_input when it is not PEM, unsupported
  // when the key is neither Ed25519 nor P-256.
  static Result<PublicKey> from_pem(std::string_view pem);
  // Reads a PEM file; not_found when absent, bad_input (naming the file) when malformed.
  static Result<PublicKey> load(const std::filesystem::path& path);
  // As load, for a path that a file names (a roster's public_key): bad_input when it is not a regular file
  // (a FIFO, a device, a directory), which is never opened (read_regular_file, core/file.h).
  static Result<PublicKey> load_named(const std::filesystem::path& path);
  // From a DER SubjectPublicKeyInfo (as a PKCS#11 token's key is rebuilt). Same errors as from_pem.
  static Result<PublicKey> from_der(std::string_view der);

  KeyType type() const;
  const std::string& keyid() const;
  std::string pem() const;  // canonical PEM, ends with "\n"
  std::string spki_der() const;

  // ok when `signature` is a valid signature of `message`; verification otherwise (never bad_input: a
  // garbled signature is simply not a valid one).
  Status verify(std::string_view message, std::string_view signature) const;

  struct Impl;

 private:
  explicit PublicKey(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// Everything that signs. Callers see only this, so a hardware key (PKCS#11) is one more implementation.
// Implementations must allow sign() from several threads at once.
class Signer {
 public:
  virtual ~Signer() = default;
  virtual KeyType type() const = 0;
  // The keyid of public_key(), as written in DSSE signatures and bundle hints.
  virtual const std::string& keyid() const = 0;
  virtual const PublicKey& public_key() const = 0;
  // The raw signature of `message` (Ed25519: 64 bytes; P-256: DER ECDSA over SHA-256). Ed25519 signatures are
  // deterministic: the same key and message give the same bytes. internal when the key refuses to sign.
  virtual Result<std::string> sign(std::string_view message) const = 0;
};

// A private key in PKCS#8 PEM, optionally encrypted with `passphrase` (empty: not encrypted).
// bad_input when the PEM or the passphrase is wrong, unsupported for other key types.
Result<std::unique_ptr<Signer>> signer_from_pem(std::string_view pem, const std::string& passphrase = {});

// Loads a private key file. Refuses (bad_input, with an explanation and the chmod to run) a file
// that its group or others may read, as ssh does; not_found when absent.
Result<std::unique_ptr<Signer>> load_signer(const std::filesystem::path& path, const std::string& passphrase = {});

// The public key of a key file, which holds a private key (decrypted with `passphrase`; refused as load_signer
// refuses it) or a public key, which anyone may be allowed to read. The file is opened once: a pipe
// (`--key <(pass show node-key)`) cannot be read twice, and a FIFO no one writes to reads as empty.
Result<PublicKey> public_key_in_file(const std::filesystem::path& path, const std::string& passphrase = {});

// A new key pair: the private key as PKCS#8 PEM (AES-256-CBC encrypted when `passphrase` is not empty), the
// public key as SubjectPublicKeyInfo PEM, and its keyid.
struct KeyPair {
  KeyType type = KeyType::kEd25519;
  std::string private_pem;
  std::string public_pem;
  std::string keyid;
};
Result<KeyPair> generate_key(KeyType type, const std::string& passphrase = {});

// Writes `out` (the private key, mode 0600) and `out` + ".pub.pem" (the public key, mode 0644), atomically.
// io naming the file on failure; bad_input when `out` already exists (a key is never overwritten).
Status write_key_pair(const std::filesystem::path& out, const KeyPair& pair);
// The public key file written next to a private key: NAME -> NAME.pub.pem.
std::filesystem::path public_key_path(const std::filesystem::path& private_key_path);

}  // namespace quorate::attest
