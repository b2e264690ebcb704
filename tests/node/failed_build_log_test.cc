// Issue 18: a failed build through the node named a build log inside the job directory, which the node removes
// when the job ends. The node's real Rebuilder keeps the log in <data_dir>/logs (moved there atomically), the
// error names it, it is still there after the job, and only the newest 32 are kept.
#include <gtest/gtest.h>

#include <atomic>

#include "quorate/attest/keys.h"
#include "quorate/node/builder_rebuilder.h"
#include "quorate/node/config.h"
#include "quorate/wire/request.h"
#include "support/test_util.h"

namespace quorate::node {
namespace {

namespace fs = std::filesystem;
using quorate::testing::run;
using quorate::testing::ScratchDir;
using quorate::testing::sh;
using quorate::testing::slurp;
using quorate::testing::spit;

// The log path the error names: from "/" to ".log".
std::string named_log(const std::string& message) {
  auto end = message.find(".log");
  if (end == std::string::npos) return "";
  auto begin = message.rfind(' ', end);
  std::string path = message.substr(begin == std::string::npos ? 0 : begin + 1, end + 4 - (begin + 1));
  while (!path.empty() && (path.front() == '(' || path.front() == '\'')) path.erase(0, 1);
  return path;
}

TEST(FailedBuildLog, OutlivesTheJobDirectoryInTheNodesStateDirectory) {
  ScratchDir dir;
  fs::path repo = dir / "repo";
  fs::create_directories(repo);
  spit(repo / "quorate.toml",
       "[image]\nname = \"example.org/fails\"\n\n[[steps]]\nrun = \"echo the-step-said-this; exit 3\"\n");
  auto git = run("cd " + sh(repo.string()) +
                 " && export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.org GIT_COMMITTER_NAME=t "
                 "GIT_COMMITTER_EMAIL=t@example.org GIT_AUTHOR_DATE=2026-01-01T00:00:00Z "
                 "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z && git init -q -b main && git add . && "
                 "git commit -q -m first && git rev-parse HEAD");
  ASSERT_EQ(git.exit_code, 0) << git.out;
  auto pair = attest::generate_key(attest::KeyType::kEd25519).value();
  ASSERT_TRUE(attest::write_key_pair(dir / "node-a.key.pem", pair).ok());
  spit(dir / "node.toml",
       "node_id = \"node-a\"\ndata_dir = \"data\"\nsigning_key = \"node-a.key.pem\"\n"
       "[build]\nsandbox = \"none\"\n");
  auto config = load_node_config(dir / "node.toml");
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  auto rebuilder = make_builder_rebuilder(
      *config, [] { return int64_t{1767225600000}; }, [](const std::string&) { return std::string(); });
  ASSERT_TRUE(rebuilder.ok()) << rebuilder.status().to_string();
  std::atomic<bool> cancel{false};
  auto request = [&](int n) {
    wire::RebuildRequest r;
    r.request_id = "fails-" + std::to_string(n);
    r.repo = repo.string();
    r.commit = "main";
    return wire::normalize_request(r).value();
  };

  auto failed = (*rebuilder)->rebuild(request(0), cancel);
  ASSERT_FALSE(failed.ok());
  std::string message = failed.status().message();
  std::string log = named_log(message);
  ASSERT_FALSE(log.empty()) << message;
  fs::path logs = fs::weakly_canonical(dir / "data/logs");
  EXPECT_EQ(fs::weakly_canonical(fs::path(log).parent_path()), logs) << message;
  ASSERT_TRUE(fs::is_regular_file(log)) << "the log the error names is gone: " << message;
  EXPECT_NE(slurp(log).find("the-step-said-this"), std::string::npos);
  EXPECT_EQ(fs::status(logs).permissions() & fs::perms::all, fs::perms::owner_all);
  // The job directory itself is gone, as before.
  size_t jobs = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(config->work_dir / "jobs")) ++jobs;
  EXPECT_EQ(jobs, 0u);

  // Bounded: after 34 more failures, 32 logs remain (the oldest removed).
  for (int n = 1; n <= 34; ++n) ASSERT_FALSE((*rebuilder)->rebuild(request(n), cancel).ok());
  size_t kept = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(logs)) ++kept;
  EXPECT_EQ(kept, 32u);
}

}  // namespace
}  // namespace quorate::node
