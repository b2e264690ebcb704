// Keys: generation, PEM round trips, keyids, signatures, refusal of readable private key files.
#include "quorate/attest/keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "quorate/core/sha256.h"
#include "tests/attest/fixtures.h"

namespace quorate::attest {
namespace {

using quorate::testing::ScratchDir;
using quorate::testing::without_waiting_on_fifo;
using testing::fixed_signer;

class KeyTypes : public ::testing::TestWithParam<KeyType> {};
INSTANTIATE_TEST_SUITE_P(Both, KeyTypes, ::testing::Values(KeyType::kEd25519, KeyType::kEcdsaP256),
                         [](const auto& p) { return std::string(key_type_name(p.param)); });

TEST_P(KeyTypes, GeneratedKeySignsAndItsPublicKeyVerifies) {
  auto pair = generate_key(GetParam()).value();
  auto signer = signer_from_pem(pair.private_pem).value();
  auto pub = PublicKey::from_pem(pair.public_pem).value();
  EXPECT_EQ(signer->type(), GetParam());
  EXPECT_EQ(pub.keyid(), pair.keyid);
  EXPECT_EQ(signer->keyid(), pair.keyid);
  auto sig = signer->sign("hello").value();
  EXPECT_TRUE(pub.verify("hello", sig).ok());
  EXPECT_TRUE(pub.verify("hellO", sig).is_verification());
}

TEST_P(KeyTypes, KeyidIsSha256OfDerSubjectPublicKeyInfo) {
  auto signer = fixed_signer(GetParam());
  EXPECT_EQ(signer->keyid(), sha256_hex(signer->public_key().spki_der()));
  EXPECT_EQ(signer->keyid().size(), 64u);
}

TEST_P(KeyTypes, EncryptedKeyNeedsItsPassphrase) {
  auto pair = generate_key(GetParam(), "correct horse").value();
  EXPECT_NE(pair.private_pem.find("ENCRYPTED PRIVATE KEY"), std::string::npos);
  EXPECT_TRUE(signer_from_pem(pair.private_pem, "correct horse").ok());
  auto wrong = signer_from_pem(pair.private_pem, "wrong");
  EXPECT_TRUE(wrong.status().is_bad_input());
  EXPECT_NE(wrong.status().message().find("passphrase"), std::string::npos);
  EXPECT_NE(signer_from_pem(pair.private_pem).status().message().find("passphrase is needed"), std::string::npos);
}

TEST_P(KeyTypes, WriteKeyPairModesAndNeverOverwrites) {
  ScratchDir dir;
  auto pair = generate_key(GetParam()).value();
  ASSERT_TRUE(write_key_pair(dir / "node", pair).ok());
  struct stat st {};
  ASSERT_EQ(::stat((dir / "node").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(PublicKey::load(dir / "node.pub.pem").value().keyid(), pair.keyid);
  EXPECT_EQ(load_signer(dir / "node").value()->keyid(), pair.keyid);
  EXPECT_TRUE(write_key_pair(dir / "node", generate_key(GetParam()).value()).is_bad_input());
  EXPECT_EQ(load_signer(dir / "node").value()->keyid(), pair.keyid);
}

TEST(Keys, Ed25519SignaturesAreDeterministic) {
  auto signer = fixed_signer(KeyType::kEd25519);
  EXPECT_EQ(signer->sign("message").value(), signer->sign("message").value());
  EXPECT_EQ(signer->sign("message").value().size(), 64u);
}

TEST(Keys, FixedKeyidsArePinned) {
  EXPECT_EQ(fixed_signer(KeyType::kEd25519)->keyid(),
            "4412015289ab798b11d267edbf9febbd1ead7266f69ed80b5fb61823f5faa6c1");
  EXPECT_EQ(fixed_signer(KeyType::kEcdsaP256)->keyid(),
            "103c91fc04bc4758ab49612dde4fa9f341518546b20ebb935930308cbd26cea4");
}

TEST(Keys, GroupOrWorldReadableKeyFileIsRefusedWithAnExplanation) {
  ScratchDir dir;
  ASSERT_TRUE(write_key_pair(dir / "node", generate_key(KeyType::kEd25519).value()).ok());
  ASSERT_EQ(::chmod((dir / "node").c_str(), 0644), 0);
  auto s = load_signer(dir / "node");
  ASSERT_TRUE(s.status().is_bad_input());
  EXPECT_NE(s.status().message().find("mode 0644"), std::string::npos) << s.status().message();
  EXPECT_NE(s.status().message().find("chmod 600"), std::string::npos) << s.status().message();
  ASSERT_EQ(::chmod((dir / "node").c_str(), 0640), 0);
  EXPECT_TRUE(load_signer(dir / "node").status().is_bad_input());
}

// A key piped in by the shell (`--key <(pass show node-key)`) signs; a FIFO no one writes to, which held a
// node's every start waiting for a writer, is an empty key at once.
TEST(Keys, AKeyInAPipeSignsAndAFifoNoOneWritesToFailsWithoutWaiting) {
  ScratchDir dir;
  ASSERT_EQ(::mkfifo((dir / "node").c_str(), 0600), 0);
  auto empty = without_waiting_on_fifo(dir / "node", [&] { return load_signer(dir / "node"); });
  EXPECT_TRUE(empty.status().is_bad_input()) << empty.status().to_string();

  // A shell's pipe, as `<(…)` passes it: /dev/fd/N of a pipe whose writer is still writing.
  const std::string pem = generate_key(KeyType::kEd25519).value().private_pem;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(::write(fds[1], pem.data(), pem.size()), static_cast<ssize_t>(pem.size()));
    ::close(fds[1]);
  });
  auto piped = load_signer("/proc/self/fd/" + std::to_string(fds[0]));
  writer.join();
  ::close(fds[0]);
  ASSERT_TRUE(piped.ok()) << piped.status().to_string();
  EXPECT_TRUE((*piped)->public_key().verify("m", (*piped)->sign("m").value()).ok());
}

// `quorate key public --key K`: K is read once, so a key piped in by the shell gives its public key (K was
// read to see which kind of key it holds and then again to load it, which found the pipe empty), and a FIFO
// no one writes to does not hold the command waiting.
TEST(Keys, ThePublicKeyOfAKeyInAPipeIsReadOnceAndAFifoDoesNotWait) {
  ScratchDir dir;
  ASSERT_EQ(::mkfifo((dir / "node").c_str(), 0600), 0);
  auto empty = without_waiting_on_fifo(dir / "node", [&] { return public_key_in_file(dir / "node"); });
  EXPECT_TRUE(empty.status().is_bad_input()) << empty.status().to_string();

  const KeyPair pair = generate_key(KeyType::kEd25519).value();
  for (const std::string& pem : {pair.private_pem, pair.public_pem}) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    std::thread writer([&] {
      EXPECT_EQ(::write(fds[1], pem.data(), pem.size()), static_cast<ssize_t>(pem.size()));
      ::close(fds[1]);
    });
    auto piped = public_key_in_file("/proc/self/fd/" + std::to_string(fds[0]));
    writer.join();
    ::close(fds[0]);
    ASSERT_TRUE(piped.ok()) << piped.status().to_string();
    EXPECT_EQ(piped->keyid(), pair.keyid);
  }

  // In files: a public key others may read is a public key; a private key they may read is refused.
  ASSERT_TRUE(write_key_pair(dir / "k", pair).ok());
  ASSERT_EQ(::chmod(public_key_path(dir / "k").c_str(), 0644), 0);
  EXPECT_EQ(public_key_in_file(public_key_path(dir / "k")).value().keyid(), pair.keyid);
  EXPECT_EQ(public_key_in_file(dir / "k").value().keyid(), pair.keyid);
  ASSERT_EQ(::chmod((dir / "k").c_str(), 0644), 0);
  auto readable = public_key_in_file(dir / "k");
  EXPECT_NE(readable.status().message().find("chmod 600"), std::string::npos) << readable.status().to_string();
}

TEST(Keys, MissingKeyFileIsNotFound) {
  ScratchDir dir;
  EXPECT_TRUE(load_signer(dir / "absent").status().is_not_found());
  EXPECT_TRUE(PublicKey::load(dir / "absent.pem").status().is_not_found());
}

TEST(Keys, GarbageIsNotAKey) {
  EXPECT_TRUE(PublicKey::from_pem("hello").status().is_bad_input());
  EXPECT_TRUE(
      PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").status().is_bad_input());
  EXPECT_TRUE(
      signer_from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").status().is_bad_input());
}

TEST(Keys, OtherCurvesAreUnsupported) {
  auto r = quorate::testing::run("openssl ecparam -name secp384r1 -genkey -noout | openssl pkey -pubout");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(PublicKey::from_pem(r.out).status().code(), Code::kUnsupported);
}

TEST(Keys, ParseKeyType) {
  EXPECT_EQ(parse_key_type("ed25519").value(), KeyType::kEd25519);
  EXPECT_EQ(parse_key_type("p256").value(), KeyType::kEcdsaP256);
  EXPECT_TRUE(parse_key_type("rsa").status().is_bad_input());
}

}  // namespace
}  // namespace quorate::attest
