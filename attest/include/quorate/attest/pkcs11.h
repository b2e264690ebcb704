// Keys on PKCS#11 tokens (HSMs, smart cards, TPMs through tpm2-pkcs11, SoftHSM): RFC 7512 URIs, a Signer that
// keeps one logged-in session, public keys read from the token, and key pairs generated on it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "quorate/attest/keys.h"
#include "quorate/core/status.h"

namespace quorate::attest {

// An RFC 7512 "pkcs11:" URI, percent-decoded. Path attributes select the token (token, manufacturer, model,
// serial, slot-id) and the key (object = CKA_LABEL, id = CKA_ID bytes, type = private|public); query
// attributes say how to reach it (module-path, module-name) and how to log in (pin-value, pin-source).
struct Pkcs11Uri {
  std::optional<std::string> token, manufacturer, model, serial, object, id, type;
  std::optional<unsigned long> slot_id;
  std::string module_path;  // a PKCS#11 module (.so) to load
  std::string module_name;  // a module registered with p11-kit (/usr/share/p11-kit/modules/NAME.module)
  std::optional<std::string> pin_value;
  std::string pin_source;  // file:PATH or PATH: the PIN is the file's first line
  // The URI without pin-value (safe to print).
  std::string redacted;
};

// True when `key` is meant as a PKCS#11 URI (starts with "pkcs11:").
bool is_pkcs11_uri(std::string_view key);

// Parses and percent-decodes a URI. bad_input naming the part when an attribute is unknown, repeated, empty
// where a value is needed, badly percent-encoded, or when both module-path and module-name are given.
Result<Pkcs11Uri> parse_pkcs11_uri(std::string_view uri);

// The module loaded when the URI names none: p11-kit's proxy, which offers every module p11-kit knows.
const char* default_pkcs11_module();

// A Signer on a token's private key (Ed25519 through CKM_EDDSA; P-256 through CKM_ECDSA over SHA-256, the
// token's r||s turned into DER). The public key is read from the token's public key object with the same
// CKA_ID (or, without id=, CKA_LABEL) and checked against the private key by one signature at open.
// One logged-in session serves all sign() calls (serialized). When the session or the module fails
// (session closed, token removed, device error) sign() opens a new session, logs in again, finds the key,
// checks it is the same key and retries once; if that fails too, the call fails and the next one tries again.
// A PIN the token refuses is bad_input ("PIN refused") and is never tried again by this signer: tokens lock
// after a few failures. bad_input for an unknown token or object, a module that is not a PKCS#11 module,
// or a key type other than Ed25519 and P-256.
Result<std::unique_ptr<Signer>> open_pkcs11_signer(std::string_view uri);

// The public key of the URI's key pair, read from the token (logging in only when the token requires it).
Result<PublicKey> pkcs11_public_key(std::string_view uri);

// Generates a key pair on the token: the private key non-extractable and sensitive, both objects stored on the
// token (CKA_TOKEN), labelled object= and with CKA_ID id= when given. bad_input when the URI names no object
// and no id, or when a key with that label or id already exists (a key is never overwritten).
Result<PublicKey> pkcs11_generate_key(std::string_view uri, KeyType type);

// What every command and the node call for a signing key: a PKCS#11 URI, or a private key file
// (load_signer, with `passphrase`).
Result<std::unique_ptr<Signer>> open_signer(const std::string& key_or_uri, const std::string& passphrase = {});

// A public key from a public or private key file, or from a token URI.
Result<PublicKey> public_key_of(const std::string& key_or_uri, const std::string& passphrase = {});

}  // namespace quorate::attest
