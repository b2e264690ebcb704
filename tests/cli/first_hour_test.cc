// Issue 18, "the first hour": the rough edges a newcomer met, each run as the newcomer ran it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <sstream>

#include <nlohmann/json.hpp>

#include "builder/git_repo.h"
#include "quorate/core/sha256.h"
#include "support/test_util.h"

namespace quorate::cli {
namespace {

using quorate::testing::quorate_bin;
using quorate::testing::ScratchDir;
using quorate::testing::sh;
using quorate::testing::slurp;
using quorate::testing::spit;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

class FirstHour : public ::testing::Test {
 protected:
  quorate::testing::CommandResult q(const std::string& args) {
    return quorate::testing::run("cd " + sh(dir_.path().string()) + " && " + quorate_bin() + " " + args);
  }
  unsigned mode(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 07777;
  }
  std::string result_json() {
    return (quorate::testing::source_dir() / "tests/attest/testdata/build-result.json").string();
  }
  ScratchDir dir_;
};

TEST_F(FirstHour, KeyGenerateMakesPrivateParentDirectories) {
  auto r = q("key generate --out keys/team/node-a.key.pem");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(mode(dir_ / "keys"), 0700u);
  EXPECT_EQ(mode(dir_ / "keys/team"), 0700u);
  EXPECT_EQ(mode(dir_ / "keys/team/node-a.key.pem"), 0600u);
  // An existing directory is left as it is.
  fs::create_directories(dir_ / "shared");
  ::chmod((dir_ / "shared").c_str(), 0755);
  ASSERT_EQ(q("key generate --out shared/node-b.key.pem").exit_code, 0);
  EXPECT_EQ(mode(dir_ / "shared"), 0755u);
}

TEST_F(FirstHour, NodeIdFromTheKeyFileNameIsWhatThePolicyLists) {
  ASSERT_EQ(q("key generate --out keys/node-a.key.pem").exit_code, 0);
  auto r = q("attest --key keys/node-a.key.pem " + sh(result_json()) + " -o att.json");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("node node-a,"));
  spit(dir_ / "policy.toml",
       "threshold = 1\n[[nodes]]\nid = \"node-a\"\npublic_key = \"keys/node-a.key.pem.pub.pem\"\n");
  auto v = q("verify --policy policy.toml att.json --now 2026-11-24T00:00:00Z");
  EXPECT_EQ(v.exit_code, 0) << v.out;
  // The statement's builder.id is a URI; the node id rides beside it.
  auto shown = q("attest verify att.json --roster policy.toml --json");
  ASSERT_EQ(shown.exit_code, 0) << shown.out;
  // --json is one compact object per line, in every command.
  EXPECT_EQ(std::count(shown.out.begin(), shown.out.end(), '\n'), 1) << shown.out;
  auto j = nlohmann::json::parse(shown.out.substr(0, shown.out.find('\n')));
  EXPECT_EQ(j["builder"]["id"], "node-a");
  EXPECT_EQ(j["builder"]["uri"], "https://quorate.dev/node/node-a");
  // --builder-id sets the URI, and refuses what is not one.
  ASSERT_EQ(q("attest --key keys/node-a.key.pem --builder-id https://builders.example.org/a " + sh(result_json()) +
              " -o att2.json")
                .exit_code,
            0);
  EXPECT_THAT(slurp(dir_ / "att2.json"), Not(HasSubstr("quorate.dev/node")));
  auto bad = q("attest --key keys/node-a.key.pem --builder-id node-a " + sh(result_json()) + " -o att3.json");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.out, HasSubstr("is not a URI"));
}

TEST_F(FirstHour, PublicKeyGivenAsKeyIsNamedSo) {
  ASSERT_EQ(q("key generate --out node-a.key.pem").exit_code, 0);
  auto r = q("attest --key node-a.key.pem.pub.pem " + sh(result_json()) + " -o att.json");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("this is a public key"));
  EXPECT_THAT(r.out, Not(HasSubstr("chmod")));
}

TEST_F(FirstHour, MistypedCommandIsNamed) {
  auto r = q("verfy --policy p.toml");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("unknown command 'verfy'; did you mean 'verify'?"));
  auto far = q("frobnicate");
  EXPECT_EQ(far.exit_code, 2);
  EXPECT_THAT(far.out, HasSubstr("unknown command 'frobnicate'"));
  EXPECT_THAT(far.out, Not(HasSubstr("did you mean")));
}

TEST_F(FirstHour, VerifyWithNothingToDecideFromSaysSo) {
  ASSERT_EQ(q("key generate --out node-a.key.pem").exit_code, 0);
  spit(dir_ / "policy.toml", "threshold = 1\n[[nodes]]\nid = \"node-a\"\npublic_key = \"node-a.key.pem.pub.pem\"\n");
  auto r = q("verify --policy policy.toml");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("nothing to decide from"));
  EXPECT_THAT(r.out, Not(HasSubstr("not both")));
}

TEST_F(FirstHour, SizeThatOverflowsIsRefused) {
  spit(dir_ / "in.tar", "");
  auto r = q("normalize --max-expanded-size 16777216T in.tar -o out");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.out, HasSubstr("does not fit in 64 bits"));
  EXPECT_THAT(r.out, Not(HasSubstr("0 bytes")));
}

TEST_F(FirstHour, StoreShowFindsTheRowBySha256sumOfTheFile) {
  ASSERT_EQ(q("key generate --out node-a.key.pem").exit_code, 0);
  ASSERT_EQ(q("attest --key node-a.key.pem " + sh(result_json()) + " -o att.json").exit_code, 0);
  spit(dir_ / "policy.toml", "threshold = 1\n[[nodes]]\nid = \"node-a\"\npublic_key = \"node-a.key.pem.pub.pem\"\n");
  ASSERT_EQ(q("store import --policy policy.toml store.db att.json").exit_code, 0);
  std::string file_hex = sha256_hex(slurp(dir_ / "att.json"));
  ASSERT_EQ(slurp(dir_ / "att.json").back(), '\n');
  auto r = q("store show store.db " + file_hex);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("node-a"));
  auto missing = q("store show store.db " + std::string(64, 'e'));
  EXPECT_EQ(missing.exit_code, 2);
}

TEST_F(FirstHour, HelpListsCommandsInWorkflowOrder) {
  auto r = q("--help");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::vector<size_t> at;
  for (const char* c : {"\n  key", "\n  build", "\n  attest", "\n  verify", "\n  store", "\n  node", "\n  submit"}) {
    at.push_back(r.out.find(c));
    EXPECT_NE(at.back(), std::string::npos) << c << "\n" << r.out;
  }
  EXPECT_TRUE(std::is_sorted(at.begin(), at.end())) << r.out;
}

// Build steps report their layer's size as they finish (run steps also their time), on a terminal only: a
// pipe or a log gets no progress at all, and -q silences it on a terminal too. The terminal is script(1)'s.
TEST_F(FirstHour, BuildShowsProgressOnATerminalOnly) {
  std::string commit = builder::testing::make_repo(builder::testing::example_dir("static-site"), dir_ / "site");
  std::string build = "build --repo site --commit " + commit + " --work-dir work -o ";
  auto piped = q(build + "out");
  ASSERT_EQ(piped.exit_code, 0) << piped.out;
  EXPECT_THAT(piped.out, Not(HasSubstr("quorate build:")));
  EXPECT_EQ(piped.out.find('\r'), std::string::npos) << piped.out;
  EXPECT_THAT(piped.out, HasSubstr("image   sha256:"));
  if (quorate::testing::run("command -v script").exit_code != 0)
    GTEST_SKIP() << "script(1) (bsdutils) is not installed";
  auto on_terminal = [&](const std::string& args) {
    return quorate::testing::run("cd " + sh(dir_.path().string()) + " && script -qec " +
                                 sh(quorate_bin() + " " + args + " </dev/null") + " /dev/null");
  };
  auto tty = on_terminal(build + "out2");
  ASSERT_EQ(tty.exit_code, 0) << tty.out;
  EXPECT_THAT(tty.out,
              ::testing::ContainsRegex("quorate build: step 1/1 \\(quorate.toml:[0-9]+\\): layer [0-9.]+ [KM]?B"));
  EXPECT_THAT(tty.out, HasSubstr("compressed)"));
  auto quiet = on_terminal("build -q " + build.substr(6) + "out3");
  ASSERT_EQ(quiet.exit_code, 0) << quiet.out;
  EXPECT_THAT(quiet.out, Not(HasSubstr("quorate build:")));
  EXPECT_THAT(quiet.out, HasSubstr("image   sha256:"));
}

// Issue 18: an attestation signed as a node id the roster does not list its key under was refused with
// "nothing attested"; the refusal names the id found, the id expected and the key.
TEST_F(FirstHour, WrongNodeIdIsNamedAtVerify) {
  ASSERT_EQ(q("key generate --out keys/node-a.key.pem").exit_code, 0);
  ASSERT_EQ(q("attest --key keys/node-a.key.pem --node-id node-b " + sh(result_json()) + " -o att.json").exit_code, 0);
  spit(dir_ / "policy.toml",
       "threshold = 1\n[[nodes]]\nid = \"node-a\"\npublic_key = \"keys/node-a.key.pem.pub.pem\"\n");
  std::string keyid = q("key id keys/node-a.key.pem.pub.pem").out;
  keyid = keyid.substr(0, keyid.find('\n'));
  ASSERT_EQ(keyid.size(), 64u) << keyid;
  auto r = q("verify --policy policy.toml att.json");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("expected node id 'node-a', found 'node-b'")) << r.out;
  EXPECT_THAT(r.out, HasSubstr(keyid)) << r.out;
  EXPECT_THAT(r.out, HasSubstr("--node-id node-a")) << r.out;
  // The verdict line itself (the last one) says why, not only "nothing attested".
  std::string last = r.out.substr(r.out.rfind("quorate: "));
  EXPECT_THAT(last, HasSubstr("refused")) << r.out;
  EXPECT_THAT(last, HasSubstr("node-b")) << r.out;
  // Through a store: import refuses it, naming both ids, and verify says where to look.
  auto imported = q("store import --policy policy.toml store.db att.json");
  EXPECT_THAT(imported.out, HasSubstr("expected node id 'node-a', found 'node-b'")) << imported.out;
  auto stored = q("verify --policy policy.toml --store store.db");
  EXPECT_EQ(stored.exit_code, 1) << stored.out;
  EXPECT_THAT(stored.out, HasSubstr("store import")) << stored.out;
  auto roster = q("attest verify --roster policy.toml att.json");
  EXPECT_NE(roster.exit_code, 0) << roster.out;
  EXPECT_THAT(roster.out, HasSubstr("expected node id 'node-a', found 'node-b'")) << roster.out;
}

TEST_F(FirstHour, FailedBuildKeepsItsLog) {
  fs::create_directories(dir_ / "src");
  spit(dir_ / "src/quorate.toml",
       "[image]\nname = \"example.org/fails\"\n\n[[steps]]\nrun = \"echo the-step-said-this; exit 3\"\n");
  std::string commit = builder::testing::make_repo(dir_ / "src", dir_ / "repo");
  auto r = q("build -q --no-sandbox --repo repo --commit " + commit + " -o out --work-dir work");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  // The error names the log where it now is, and the log is there.
  auto at = r.out.find("work/build-");
  ASSERT_NE(at, std::string::npos) << r.out;
  auto end = r.out.find(".log", at);
  ASSERT_NE(end, std::string::npos) << r.out;
  std::string log = r.out.substr(at, end + 4 - at);
  ASSERT_TRUE(fs::exists(dir_ / log)) << log << "\n" << r.out;
  EXPECT_THAT(slurp(dir_ / log), HasSubstr("the-step-said-this"));
}

// A [build] tool whose --version fails or prints nothing where the steps run is named in a warning on stderr, also with
// --json and -q, and is still recorded (with an empty version): the build does not fail for it.
TEST_F(FirstHour, ToolWithoutAVersionIsNamedInAWarning) {
  fs::create_directories(dir_ / "src");
  spit(dir_ / "src/hello.txt", "hello\n");
  spit(dir_ / "src/quorate.toml",
       "[image]\nname = \"example.org/tools\"\n\n[build]\ntools = [\"no-such-tool-q7\"]\n\n"
       "[[steps]]\nrun = \"cp hello.txt \\\"$OUT/\\\"\"\nto = \"/srv\"\n");
  std::string commit = builder::testing::make_repo(dir_ / "src", dir_ / "repo");
  auto r = q("build -q --json --repo repo --commit " + commit + " -o out --work-dir work");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("warning: [build] tools: `no-such-tool-q7 --version` failed or printed nothing "
                               "where the steps run (the host)"));
  EXPECT_THAT(r.out, HasSubstr("\"no-such-tool-q7\":\"\""));
}

// `--json` prints one compact JSON object per line in every command that takes it (docs/decisions.md, the man
// page): every stdout line of every such command parses as one object. stderr is kept apart. `submit --json`
// needs a node: NodeProcess.SubmitJsonIsOneObjectPerLine (tests/e2e).
TEST_F(FirstHour, JsonIsOneCompactObjectPerLineEverywhere) {
  std::string commit = builder::testing::make_repo(builder::testing::example_dir("static-site"), dir_ / "site");
  ASSERT_EQ(q("key generate --out keys/node-a.key.pem").exit_code, 0);
  spit(dir_ / "policy.toml",
       "threshold = 1\n[[nodes]]\nid = \"node-a\"\npublic_key = \"keys/node-a.key.pem.pub.pem\"\n");
  // The objects a command printed on stdout; any line that is not one JSON object fails the test.
  auto objects = [&](const std::string& args, std::vector<int> codes = {0}) {
    auto r = quorate::testing::run("cd " + sh(dir_.path().string()) + " && (" + quorate_bin() + " " + args +
                                   " 2>stderr.txt)");
    std::string err = slurp(dir_ / "stderr.txt");
    EXPECT_THAT(codes, ::testing::Contains(r.exit_code)) << args << "\n" << r.out << err;
    std::vector<nlohmann::json> found;
    EXPECT_TRUE(r.out.empty() || r.out.back() == '\n') << args << "\n" << r.out;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
      auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      EXPECT_TRUE(j.is_object()) << args << ": not one JSON object: " << line;
      found.push_back(j);
    }
    return found;
  };
  auto built =
      objects("build --json --attest keys/node-a.key.pem --repo site --commit " + commit + " --work-dir work -o out");
  ASSERT_EQ(built.size(), 1u);
  EXPECT_TRUE(built[0]["image"].contains("manifest_digest")) << built[0].dump();
  EXPECT_EQ(objects("attest verify out.att.json --roster policy.toml --json").size(), 1u);
  EXPECT_EQ(objects("verify --policy policy.toml --json out.att.json").size(), 1u);
  ASSERT_EQ(q("store import --policy policy.toml store.db out.att.json").exit_code, 0);
  auto rows = objects("store list store.db --json");
  ASSERT_EQ(rows.size(), 1u);
  // `store show` has no --json: it always prints its one object on one line.
  std::string file_hex = sha256_hex(slurp(dir_ / "out.att.json"));
  EXPECT_EQ(objects("store show store.db " + file_hex).size(), 1u);
  EXPECT_EQ(objects("audit --json --repo site --store store.db --policy policy.toml", {0, 1}).size(), 1u);
  ASSERT_EQ(quorate::testing::run("cd " + sh(dir_.path().string()) + " && tar -cf layer.tar -C site .").exit_code, 0);
  EXPECT_EQ(objects("normalize --json layer.tar -o layer.tar.gz").size(), 1u);
  EXPECT_EQ(objects("normalize --json --compression zstd out -o zstd").size(), 1u);
  EXPECT_EQ(objects("diff --json out zstd", {0, 1}).size(), 1u);
  // One object per image, so a store of two images is two lines.
  ASSERT_EQ(q("image import out --image-store images").exit_code, 0);
  ASSERT_EQ(q("image import zstd --image-store images").exit_code, 0);
  auto images = objects("image ls --json --image-store images");
  ASSERT_EQ(images.size(), 2u);
  for (const auto& i : images) EXPECT_THAT(i.value("digest", ""), ::testing::StartsWith("sha256:")) << i.dump();
  EXPECT_TRUE(objects("image ls --json --image-store empty-store").empty());
}

// `build --attest --builder-id URI` signs with that runDetails.builder.id (the node id stays in builder.version);
// an id that is not a URI is refused before anything is built.
TEST_F(FirstHour, BuildAttestTakesABuilderId) {
  std::string commit = builder::testing::make_repo(builder::testing::example_dir("static-site"), dir_ / "site");
  ASSERT_EQ(q("key generate --out keys/node-a.key.pem").exit_code, 0);
  spit(dir_ / "policy.toml",
       "threshold = 1\n[[nodes]]\nid = \"node-a\"\npublic_key = \"keys/node-a.key.pem.pub.pem\"\n");
  std::string build = "build -q --attest keys/node-a.key.pem --repo site --commit " + commit + " --work-dir work ";
  auto r = q(build + "--builder-id https://builders.example.org/a -o out");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("attestation out.att.json"));
  auto shown = q("attest verify out.att.json --roster policy.toml --json");
  ASSERT_EQ(shown.exit_code, 0) << shown.out;
  auto j = nlohmann::json::parse(shown.out.substr(0, shown.out.find('\n')));
  EXPECT_EQ(j["builder"]["uri"], "https://builders.example.org/a");
  EXPECT_EQ(j["builder"]["id"], "node-a");
  auto bad = q(build + "--builder-id node-a -o out2");
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_THAT(bad.out, HasSubstr("is not a URI"));
  EXPECT_FALSE(fs::exists(dir_ / "out2.att.json"));
  EXPECT_FALSE(fs::exists(dir_ / "out2")) << "the image was built before the builder id was refused";
}

// normalize reports the bytes read of a large input (at least 256 MiB) as a counter, on a terminal only. The
// input is one sparse file of zeros in a tar, so it costs no disk and little time; the output is uncompressed.
TEST_F(FirstHour, NormalizeShowsProgressOnATerminalOnly) {
  auto made =
      quorate::testing::run("cd " + sh(dir_.path().string()) +
                            " && python3 -c \"import os, tarfile; t = tarfile.TarInfo('zeros'); t.size = 257 << 20; "
                            "open('big.tar', 'wb').write(t.tobuf(format=tarfile.USTAR_FORMAT)); "
                            "os.truncate('big.tar', 512 + t.size + 1024)\"");
  ASSERT_EQ(made.exit_code, 0) << made.out;
  std::string normalize = "normalize --compression none big.tar -o ";
  auto piped = q(normalize + "piped.tar");
  ASSERT_EQ(piped.exit_code, 0) << piped.out;
  fs::remove(dir_ / "piped.tar");  // 257 MiB each: one at a time in $TMPDIR
  EXPECT_THAT(piped.out, Not(HasSubstr("quorate normalize:")));
  EXPECT_EQ(piped.out.find('\r'), std::string::npos) << piped.out;
  if (quorate::testing::run("command -v script").exit_code != 0)
    GTEST_SKIP() << "script(1) (bsdutils) is not installed";
  auto on_terminal = [&](const std::string& args) {
    return quorate::testing::run("cd " + sh(dir_.path().string()) + " && script -qec " +
                                 sh(quorate_bin() + " " + args + " </dev/null") + " /dev/null");
  };
  auto tty = on_terminal(normalize + "tty.tar");
  ASSERT_EQ(tty.exit_code, 0) << tty.out;
  fs::remove(dir_ / "tty.tar");
  EXPECT_THAT(tty.out, ::testing::ContainsRegex("\rquorate normalize: read [0-9]+ MiB"));
  EXPECT_THAT(tty.out, HasSubstr("digest:  sha256:"));
  auto quiet = on_terminal("normalize -q --compression none big.tar -o quiet.tar");
  ASSERT_EQ(quiet.exit_code, 0) << quiet.out;
  EXPECT_THAT(quiet.out, Not(HasSubstr("quorate normalize:")));
}

}  // namespace
}  // namespace quorate::cli
