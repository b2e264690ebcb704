// Our DSSE signatures verify with the openssl command line over the PAE bytes: no quorate code in the check.
#include "quorate/attest/dsse.h"

#include "tests/attest/fixtures.h"

namespace quorate::attest {
namespace {

using quorate::testing::run;
using quorate::testing::ScratchDir;
using quorate::testing::sh;
using quorate::testing::spit;

struct Signed {
  ScratchDir dir;
  std::filesystem::path pae, sig, pub;
};

// Writes the PAE, the raw signature and the public key of an attestation made by `signer`.
void write_signed(const Signer& signer, Signed& out) {
  auto bytes = attest_build_result(testing::build_result(), signer, "node-a").value();
  auto env = parse_envelope(bytes).value();
  out.pae = out.dir / "pae.bin";
  out.sig = out.dir / "sig.bin";
  out.pub = out.dir / "pub.pem";
  spit(out.pae, pae(env.payload_type, env.payload));
  spit(out.sig, env.signatures.at(0).sig);
  spit(out.pub, signer.public_key().pem());
}

TEST(OpensslCli, VerifiesEd25519EnvelopeSignature) {
  Signed s;
  write_signed(*testing::fresh_signer(KeyType::kEd25519), s);
  auto r =
      run("openssl pkeyutl -verify -pubin -inkey " + sh(s.pub) + " -rawin -in " + sh(s.pae) + " -sigfile " + sh(s.sig));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("Signature Verified Successfully"), std::string::npos) << r.out;
  spit(s.pae, quorate::testing::slurp(s.pae) + " ");
  EXPECT_NE(
      run("openssl pkeyutl -verify -pubin -inkey " + sh(s.pub) + " -rawin -in " + sh(s.pae) + " -sigfile " + sh(s.sig))
          .exit_code,
      0);
}

TEST(OpensslCli, VerifiesP256EnvelopeSignature) {
  Signed s;
  write_signed(*testing::fresh_signer(KeyType::kEcdsaP256), s);
  auto r = run("openssl dgst -sha256 -verify " + sh(s.pub) + " -signature " + sh(s.sig) + " " + sh(s.pae));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("Verified OK"), std::string::npos) << r.out;
  spit(s.pae, quorate::testing::slurp(s.pae) + " ");
  EXPECT_NE(run("openssl dgst -sha256 -verify " + sh(s.pub) + " -signature " + sh(s.sig) + " " + sh(s.pae)).exit_code,
            0);
}

}  // namespace
}  // namespace quorate::attest
