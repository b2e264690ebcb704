// `quorate build` as a process: digests printed, --json and --result-out, archive formats, exit statuses,
// --attest signing the result.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "git_repo.h"

namespace quorate::builder {
namespace {

using ::testing::HasSubstr;
using namespace quorate::builder::testing;
using quorate::testing::quorate_bin;
using quorate::testing::run;
using quorate::testing::ScratchDir;
using quorate::testing::slurp;

class CliBuildTest : public ::testing::Test {
 protected:
  void SetUp() override { commit_ = make_repo(example_dir("static-site"), repo_); }
  quorate::testing::CommandResult build(const std::string& args) {
    return run(quorate_bin() + " build -q --repo '" + repo_.string() + "' --work-dir '" + (scratch_ / "work").string() +
               "' " + args);
  }
  ScratchDir scratch_;
  std::filesystem::path repo_ = scratch_ / "site";
  std::string commit_;
};

TEST_F(CliBuildTest, PrintsImageAndContentDigests) {
  auto r = build("--commit main -o " + (scratch_ / "out").string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, ::testing::MatchesRegex("image   sha256:[0-9a-f]{64}\ncontent sha256:[0-9a-f]{64}\nwrote .*\n"));
  EXPECT_TRUE(std::filesystem::exists(scratch_ / "out/index.json"));
}

TEST_F(CliBuildTest, JsonAndResultOutAreTheBuildResult) {
  auto result = scratch_ / "result.json";
  auto r = run(quorate_bin() + " build --json --repo '" + repo_.string() + "' --commit " + commit_ + " -o " +
               (scratch_ / "out").string() + " --work-dir " + (scratch_ / "work").string() + " --result-out " +
               result.string() + " 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto printed = nlohmann::json::parse(r.out);
  auto written = nlohmann::json::parse(slurp(result));
  EXPECT_EQ(printed, written);
  EXPECT_EQ(written["schema"], "https://quorate.dev/build-result/v1");
  EXPECT_EQ(written["source"]["commit"], commit_);
  EXPECT_EQ(written["source"]["uri"], repo_.string());
  EXPECT_EQ(written["source_date_epoch"], kCommitTime);
  EXPECT_EQ(written["image"]["name"], "example.org/quorate/static-site");
  EXPECT_TRUE(written.contains("started_on"));
  EXPECT_TRUE(written.contains("finished_on"));
  EXPECT_EQ(written["sandbox"], "none");  // copy-only: nothing ran
}

TEST_F(CliBuildTest, ArchiveFormatsWriteOneFile) {
  for (const char* format : {"oci-archive", "docker-archive"}) {
    auto out = scratch_ / (std::string(format) + ".tar");
    auto r = build("--commit main --format " + std::string(format) + " -o " + out.string());
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_TRUE(std::filesystem::is_regular_file(out));
    auto inspect = run("skopeo inspect --config " + std::string(format) + ":" + out.string());
    EXPECT_EQ(inspect.exit_code, 0) << inspect.out;
  }
}

TEST_F(CliBuildTest, FailuresExitTwoAndLeaveNothing) {
  auto out = scratch_ / "out";
  auto missing = build("--commit 0000000000000000000000000000000000000001 -o " + out.string());
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.out, HasSubstr("not found"));
  auto format = build("--commit main --format zip -o " + out.string());
  EXPECT_EQ(format.exit_code, 2);
  EXPECT_THAT(format.out, HasSubstr("--format must be"));
  auto unreachable = run(quorate_bin() + " build -q --repo file:///nonexistent/repo.git --commit main -o " +
                         out.string() + " --work-dir " + (scratch_ / "work").string());
  EXPECT_EQ(unreachable.exit_code, 2);
  EXPECT_THAT(unreachable.out, HasSubstr("cannot clone repository file:///nonexistent/repo.git"));
  EXPECT_FALSE(std::filesystem::exists(out));
}

// Every path a COPY considers is matched against every .dockerignore pattern: a commit whose patterns × tree
// entries pass 10^8 is refused before any matching (20,000 patterns over 2,000 files took 10 s of it).
TEST_F(CliBuildTest, ADockerignoreTooCostlyForItsTreeIsRefused) {
  auto src = scratch_ / "ignore-src";
  write_text(src / "Containerfile", "FROM scratch\nCOPY src /src\n");
  std::string patterns;
  for (int i = 0; i < 100'001; ++i) patterns += "p" + std::to_string(i) + "\n";
  write_text(src / ".dockerignore", patterns);
  for (int i = 0; i < 1'000; ++i) write_text(src / "src" / ("f" + std::to_string(i)), "x\n");
  make_repo(src, scratch_ / "ignore-repo");
  auto out = scratch_ / "ignore-out";
  auto r = run(quorate_bin() + " build -q --repo '" + (scratch_ / "ignore-repo").string() +
               "' --commit main --recipe Containerfile --name example.org/x -o '" + out.string() + "' --work-dir '" +
               (scratch_ / "work").string() + "'");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr(".dockerignore: 100001 patterns over a tree of 1003 entries: more than 100000000 "
                               "pattern matches, refused"));
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST_F(CliBuildTest, AttestSignsTheResult) {
  auto key = scratch_ / "node-a";
  auto gen = run(quorate_bin() + " key generate --out " + key.string());
  ASSERT_EQ(gen.exit_code, 0) << gen.out;
  auto att = scratch_ / "att.json";
  auto r = build("--commit main -o " + (scratch_ / "out").string() + " --attest " + key.string() + " --attest-out " +
                 att.string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("attestation " + att.string()));
  auto verify = run(quorate_bin() + " attest verify --pub " + key.string() + ".pub.pem " + att.string());
  EXPECT_EQ(verify.exit_code, 0) << verify.out;
}

}  // namespace
}  // namespace quorate::builder
