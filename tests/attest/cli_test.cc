// `quorate key` and `quorate attest` as a user runs them: files, modes, output, exit codes 0/1/2.
#include <sys/stat.h>

#include "quorate/attest/keys.h"
#include "tests/attest/fixtures.h"

namespace quorate::attest {
namespace {

using quorate::testing::run;
using quorate::testing::ScratchDir;
using quorate::testing::sh;
using quorate::testing::slurp;
using quorate::testing::spit;

using quorate::testing::quorate_bin;

using quorate::testing::quorate_command;

TEST(CliKey, GenerateWritesPrivate0600AndPublicPem) {
  ScratchDir dir;
  auto r = run(quorate_command("key generate --out " + sh(dir / "node-a")));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  struct stat st {};
  ASSERT_EQ(::stat((dir / "node-a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(slurp(dir / "node-a").find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
  auto pub = PublicKey::load(dir / "node-a.pub.pem").value();
  EXPECT_EQ(pub.type(), KeyType::kEd25519);
  auto id = run(quorate_command("key id " + sh(dir / "node-a.pub.pem")));
  EXPECT_EQ(id.exit_code, 0);
  EXPECT_EQ(id.out, pub.keyid() + "\n");
  EXPECT_EQ(run(quorate_command("key generate --out " + sh(dir / "node-a"))).exit_code, 2) << "never overwrites";
}

TEST(CliKey, GenerateP256WithPassphrase) {
  ScratchDir dir;
  spit(dir / "pass", "s3cret\n");
  auto r = run(
      quorate_command("key generate --type p256 --passphrase-file " + sh(dir / "pass") + " --out " + sh(dir / "k")));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(slurp(dir / "k").find("ENCRYPTED PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(PublicKey::load(dir / "k.pub.pem").value().type(), KeyType::kEcdsaP256);
  auto res = sh(testing::build_result_path());
  EXPECT_EQ(run(quorate_command("attest --key " + sh(dir / "k") + " " + res + " -o " + sh(dir / "a.json"))).exit_code,
            2);
  auto ok = run(quorate_command("attest --key " + sh(dir / "k") + " --passphrase-file " + sh(dir / "pass") + " " + res +
                                " -o " + sh(dir / "a.json")));
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_EQ(run(quorate_command("attest verify " + sh(dir / "a.json") + " --pub " + sh(dir / "k.pub.pem"))).exit_code,
            0);
}

TEST(CliAttest, SignAndVerifyPrintsWhatWasAttested) {
  ScratchDir dir;
  ASSERT_EQ(run(quorate_command("key generate --out " + sh(dir / "node-a"))).exit_code, 0);
  auto res = sh(testing::build_result_path());
  ASSERT_EQ(
      run(quorate_command("attest --key " + sh(dir / "node-a") + " " + res + " -o " + sh(dir / "att.json"))).exit_code,
      0);
  auto v = run(quorate_command("attest verify " + sh(dir / "att.json") + " --pub " + sh(dir / "node-a.pub.pem")));
  ASSERT_EQ(v.exit_code, 0) << v.out;
  EXPECT_NE(v.out.find("example.org/hello sha256:" + std::string(64, '5')), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("0123456789abcdef0123456789abcdef01234567"), std::string::npos);
  EXPECT_NE(v.out.find("signer:    node-a"), std::string::npos) << "node id defaults to the key file's name";
  auto j =
      run(quorate_command("attest verify --json " + sh(dir / "att.json") + " --pub " + sh(dir / "node-a.pub.pem")));
  EXPECT_EQ(nlohmann::json::parse(j.out)["verified"], true);
}

TEST(CliAttest, VerifyExitCodes) {
  ScratchDir dir;
  ASSERT_EQ(run(quorate_command("key generate --out " + sh(dir / "a"))).exit_code, 0);
  ASSERT_EQ(run(quorate_command("key generate --out " + sh(dir / "b") + " --type p256")).exit_code, 0);
  auto res = sh(testing::build_result_path());
  ASSERT_EQ(run(quorate_command("attest --key " + sh(dir / "a") + " --node-id node-a --bundle " + res + " -o " +
                                sh(dir / "att.json")))
                .exit_code,
            0);
  auto wrong = run(quorate_command("attest verify " + sh(dir / "att.json") + " --pub " + sh(dir / "b.pub.pem")));
  EXPECT_EQ(wrong.exit_code, 1) << wrong.out;
  EXPECT_NE(wrong.out.find("bad signature"), std::string::npos);
  spit(dir / "junk.json", "{\"payload\":");
  EXPECT_EQ(
      run(quorate_command("attest verify " + sh(dir / "junk.json") + " --pub " + sh(dir / "a.pub.pem"))).exit_code, 2);
  EXPECT_EQ(run(quorate_command("attest verify " + sh(dir / "att.json"))).exit_code, 2) << "needs --pub or --roster";

  spit(dir / "roster.toml",
       "[[nodes]]\nid = \"node-a\"\npublic_key = \"a.pub.pem\"\n"
       "revoked_at = \"2026-11-23T08:00:00Z\"\n[[nodes]]\nid = \"node-b\"\npublic_key = \"b.pub.pem\"\n");
  auto revoked =
      run(quorate_command("attest verify --json " + sh(dir / "att.json") + " --roster " + sh(dir / "roster.toml")));
  EXPECT_EQ(revoked.exit_code, 1) << revoked.out;
  auto out = nlohmann::json::parse(revoked.out.substr(0, revoked.out.rfind('}') + 1));
  EXPECT_EQ(out["failure"], "revoked");
  auto before = run(quorate_command("attest verify " + sh(dir / "att.json") + " --roster " + sh(dir / "roster.toml") +
                                    " --at 2026-11-22T00:00:00Z"));
  EXPECT_EQ(before.exit_code, 0) << before.out;
}

TEST(CliAttest, ReadableKeyIsRefused) {
  ScratchDir dir;
  ASSERT_EQ(run(quorate_command("key generate --out " + sh(dir / "a"))).exit_code, 0);
  ASSERT_EQ(::chmod((dir / "a").c_str(), 0644), 0);
  auto r = run(quorate_command("attest --key " + sh(dir / "a") + " " + sh(testing::build_result_path()) + " -o " +
                               sh(dir / "x.json")));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("chmod 600"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir / "x.json"));
}

TEST(CliAttest, HelpOnEachCommand) {
  for (const char* cmd :
       {"key --help", "key generate --help", "key id --help", "attest --help", "attest verify --help"}) {
    auto r = run(quorate_command(cmd));
    EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.out;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << cmd;
  }
}

}  // namespace
}  // namespace quorate::attest
