// `quorate key generate` and `quorate key id`: a node operator's signing keys.
#include <CLI/CLI.hpp>

#include <iostream>

#include "quorate/attest/keys.h"
#include "quorate/cli/cli.h"
#include "quorate/core/file.h"

namespace quorate::cli {
namespace {

struct KeyArgs {
  std::string out;
  std::string type = "ed25519";
  std::string passphrase_file;
  std::string pub;
};

Status run_generate(const KeyArgs& a) {
  auto type = QR_TRY(attest::parse_key_type(a.type));
  auto passphrase = QR_TRY(read_passphrase_file(a.passphrase_file));
  auto pair = QR_TRY(attest::generate_key(type, passphrase));
  QR_RETURN_IF_ERROR(attest::write_key_pair(a.out, pair));
  std::cout << "private key: " << a.out << " (" << attest::key_type_name(type) << ", PKCS#8 PEM, mode 0600"
            << (passphrase.empty() ? "" : ", encrypted") << ")\n"
            << "public key:  " << attest::public_key_path(a.out).string() << "\n"
            << "keyid:       " << pair.keyid << "\n";
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

  auto* gen = key->add_subcommand("generate", "Write a new private key NAME (PKCS#8 PEM, mode 0600) and NAME.pub.pem");
  gen->add_option("--out", args->out, "Path of the private key; the public key goes to <out>.pub.pem")->required();
  gen->add_option("--type", args->type, "ed25519 (default) or p256 (ECDSA P-256)");
  gen->add_option("--passphrase-file", args->passphrase_file, "Encrypt the private key with the first line of this file");
  gen->callback([args, &action] { action = [args] { return run_generate(*args); }; });

  auto* id = key->add_subcommand("id", "Print the keyid (hex SHA-256 of the DER SubjectPublicKeyInfo) of a public key");
  id->add_option("PUB", args->pub, "Public key (PEM)")->required();
  id->callback([args, &action] { action = [args] { return run_id(*args); }; });
}

}  // namespace quorate::cli
