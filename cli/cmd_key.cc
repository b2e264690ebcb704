// `quorate key generate`, `quorate key public` and `quorate key id`: a node operator's signing keys, in files or
// on PKCS#11 tokens.
#include <CLI/CLI.hpp>

#include <iostream>

#include "quorate/attest/keys.h"
#include "quorate/attest/pkcs11.h"
#include "quorate/cli/cli.h"
#include "quorate/core/file.h"

namespace quorate::cli {
namespace {

struct KeyArgs {
  std::string out;
  std::string type = "ed25519";
  std::string passphrase_file;
  std::string pub;
  std::string pkcs11;
  std::string key;
};

Status run_generate(const KeyArgs& a) {
  auto type = QR_TRY(attest::parse_key_type(a.type));
  if (a.out.empty() == a.pkcs11.empty()) return Status::usage("give either --out FILE or --pkcs11 URI");
  if (!a.pkcs11.empty()) {
    if (!a.passphrase_file.empty()) return Status::usage("--passphrase-file is for key files; a token key has a PIN");
    auto pub = QR_TRY(attest::pkcs11_generate_key(a.pkcs11, type));
    auto uri = QR_TRY(attest::parse_pkcs11_uri(a.pkcs11));
    std::cout << "private key: " << uri.redacted << " (" << attest::key_type_name(type)
              << ", on the token: sensitive, not extractable)\n"
              << "keyid:       " << pub.keyid() << "\n";
    return Status::ok_status();
  }
  auto passphrase = QR_TRY(read_passphrase_file(a.passphrase_file));
  auto pair = QR_TRY(attest::generate_key(type, passphrase));
  QR_RETURN_IF_ERROR(attest::write_key_pair(a.out, pair));
  std::cout << "private key: " << a.out << " (" << attest::key_type_name(type) << ", PKCS#8 PEM, mode 0600"
            << (passphrase.empty() ? "" : ", encrypted") << ")\n"
            << "public key:  " << attest::public_key_path(a.out).string() << "\n"
            << "keyid:       " << pair.keyid << "\n";
  return Status::ok_status();
}

Status run_public(const KeyArgs& a) {
  auto passphrase = QR_TRY(read_passphrase_file(a.passphrase_file));
  auto pub = QR_TRY(attest::public_key_of(a.key, passphrase));
  if (!a.out.empty())
    QR_RETURN_IF_ERROR(write_file_atomic(a.out, pub.pem(), 0644));
  else
    std::cout << pub.pem();
  std::cout << (a.out.empty() ? "# keyid " : "keyid: ") << pub.keyid() << " (" << attest::key_type_name(pub.type())
            << ")\n";
  return Status::ok_status();
}

Status run_id(const KeyArgs& a) {
  auto key = QR_TRY(attest::PublicKey::load(a.pub));
  std::cout << key.keyid() << "\n";
  return Status::ok_status();
}

}  // namespace

void add_key_command(CLI::App& app, Action& action) {
  auto args = std::make_shared<KeyArgs>();
  auto* key = app.add_subcommand("key", "Make and inspect attestation signing keys");
  key->require_subcommand(1);

  auto* gen = key->add_subcommand(
      "generate",
      "Write a new private key to --out FILE (PKCS#8 PEM, mode 0600) and FILE.pub.pem, or make one on a token");
  gen->add_option("--out", args->out, "Path of the private key; the public key goes to <out>.pub.pem");
  gen->add_option(
      "--pkcs11", args->pkcs11,
      "Generate the key pair on a PKCS#11 token instead: pkcs11:token=T;object=LABEL[;id=%01]?pin-source=file:PIN");
  gen->add_option("--type", args->type, "ed25519 (default) or p256 (ECDSA P-256)");
  gen->add_option("--passphrase-file", args->passphrase_file,
                  "Encrypt the private key with the first line of this file");
  gen->callback([args, &action] { action = [args] { return run_generate(*args); }; });

  auto* pub = key->add_subcommand(
      "public", "Write the public key of a private key file, public key file or pkcs11: URI, and print its keyid");
  pub->add_option("--key", args->key, "Private or public key file, or pkcs11: URI")->required();
  pub->add_option("--out", args->out, "Where to write the public key PEM (default: standard output)");
  pub->add_option("--passphrase-file", args->passphrase_file, "Passphrase of an encrypted private key file");
  pub->callback([args, &action] { action = [args] { return run_public(*args); }; });

  auto* id = key->add_subcommand("id", "Print the keyid (hex SHA-256 of the DER SubjectPublicKeyInfo) of a public key");
  id->add_option("PUB", args->pub, "Public key (PEM)")->required();
  id->callback([args, &action] { action = [args] { return run_id(*args); }; });
}

}  // namespace quorate::cli
