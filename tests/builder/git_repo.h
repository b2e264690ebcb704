// Test helper: a Git repository made at test time from a directory of files, with fixed author/committer
// dates, so that commit ids are the same on every run.
#pragma once

#include <filesystem>
#include <string>

#include "support/test_util.h"

namespace quorate::builder::testing {

inline constexpr int64_t kCommitTime = 1700000000;  // 2023-11-14T22:13:20Z

inline std::string git_env(int64_t when = kCommitTime) {
  std::string date = "@" + std::to_string(when) + " +0000";
  return "GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=test GIT_AUTHOR_EMAIL=t@example.org "
         "GIT_COMMITTER_NAME=test GIT_COMMITTER_EMAIL=t@example.org GIT_AUTHOR_DATE='" +
         date + "' GIT_COMMITTER_DATE='" + date + "' ";
}

// Runs a git command in `repo`; fails the test when it fails. Returns stdout+stderr trimmed.
inline std::string git(const std::filesystem::path& repo, const std::string& args, int64_t when = kCommitTime) {
  auto r = quorate::testing::run("cd '" + repo.string() + "' && " + git_env(when) + "git " + args);
  EXPECT_EQ(r.exit_code, 0) << "git " << args << ": " << r.out;
  while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == ' ')) r.out.pop_back();
  return r.out;
}

// Copies `source` into `repo` (created), commits everything and returns the commit id.
inline std::string make_repo(const std::filesystem::path& source, const std::filesystem::path& repo,
                             int64_t when = kCommitTime) {
  std::filesystem::create_directories(repo);
  std::filesystem::copy(source, repo,
                        std::filesystem::copy_options::recursive | std::filesystem::copy_options::copy_symlinks);
  git(repo, "init -q -b main .");
  git(repo, "add -A");
  git(repo, "commit -q -m initial", when);
  return git(repo, "rev-parse HEAD");
}

// Commits the working tree's current state; returns the commit id.
inline std::string commit_all(const std::filesystem::path& repo, const std::string& message, int64_t when) {
  git(repo, "add -A");
  git(repo, "commit -q -m '" + message + "'", when);
  return git(repo, "rev-parse HEAD");
}

inline std::filesystem::path example_dir(const std::string& name) {
  return quorate::testing::source_dir() / "examples" / name;
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace quorate::builder::testing
