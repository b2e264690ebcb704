// Shared by the builder's hostile tests: a one-recipe repository made at test time and a build of it.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "builder/git_repo.h"
#include "quorate/builder/build.h"

namespace quorate::builder::hostile {

class HostileBuild : public ::testing::Test {
 protected:
  // A repository holding `recipe` as quorate.toml and `files` (path, text); returns its commit.
  std::string commit_recipe(const std::string& recipe,
                            const std::vector<std::pair<std::string, std::string>>& files = {}) {
    auto src = scratch_ / ("src-" + std::to_string(++repos_));
    testing::write_text(src / "quorate.toml", recipe);
    for (const auto& [path, text] : files) testing::write_text(src / path, text);
    repo_ = scratch_ / ("repo-" + std::to_string(repos_));
    return testing::make_repo(src, repo_);
  }
  BuildOptions options(const std::string& commit, Sandbox sandbox = Sandbox::kBubblewrap) {
    BuildOptions o;
    o.repo = repo_.string();
    o.commit = commit;
    o.output = scratch_ / ("out-" + std::to_string(++outputs_));
    o.work_dir = scratch_ / "work";
    o.sandbox = sandbox;
    o.threads = 1;
    return o;
  }
  // `tar -tv` of every layer blob of the layout at `out` the build made from its run steps.
  std::string list_layers(const BuildResult& r) {
    std::string listing;
    for (const auto& l : r.layers) {
      auto blob = r.output / "blobs/sha256" / l.digest.substr(7);
      listing += quorate::testing::run("tar --numeric-owner -tvzf " + quorate::testing::sh(blob.string())).out;
    }
    return listing;
  }
  quorate::testing::ScratchDir scratch_;
  std::filesystem::path repo_;
  int repos_ = 0, outputs_ = 0;
};

inline std::string run_recipe(const std::string& script, const std::string& to = "/") {
  std::string escaped;
  for (char c : script) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += c;
  }
  return "[image]\nname = \"example.org/hostile\"\n\n[[steps]]\nrun = \"" + escaped + "\"\nto = \"" + to + "\"\n";
}

}  // namespace quorate::builder::hostile
