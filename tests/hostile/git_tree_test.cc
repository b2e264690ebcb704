// Hostile commits: tree entry names that git itself refuses, which must never reach the rebuild node's disk
// outside the checkout (issue 11, item 1). Trees are written with `git hash-object --literally`, as an attacker
// pushing a crafted object would.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>

#include "e2e/process.h"
#include "quorate/builder/source.h"
#include "support/test_util.h"

namespace quorate::hostile {
namespace {

namespace fs = std::filesystem;
using e2e::Ran;

Ran git(const fs::path& repo, std::vector<std::string> args, const std::string& input_file = "") {
  std::vector<std::string> argv = testing::git_argv(repo, args);
  if (!input_file.empty()) argv.push_back(input_file);
  return e2e::run(argv, repo, std::chrono::seconds(60));
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// One raw tree entry: "<mode> <name>\0<20-byte id>".
struct RawEntry {
  std::string mode, name, oid_hex;
};

// Writes objects straight into the object database, past every check porcelain git would make.
class HostileRepo {
 public:
  explicit HostileRepo(const fs::path& dir) : dir_(dir) {
    fs::create_directories(dir_);
    EXPECT_EQ(git(dir_, {"init", "-q", "-b", "main"}).code, 0);
  }
  std::string blob(const std::string& bytes) {
    auto f = dir_ / ".tmp-object";
    std::ofstream(f, std::ios::binary) << bytes;
    return trim(git(dir_, {"hash-object", "-w"}, f.string()).out);
  }
  std::string tree(const std::vector<RawEntry>& entries) {
    std::string raw;
    for (const auto& e : entries) {
      raw += e.mode + " " + e.name + std::string(1, '\0');
      for (size_t i = 0; i < 40; i += 2) raw += static_cast<char>(std::stoi(e.oid_hex.substr(i, 2), nullptr, 16));
    }
    auto f = dir_ / ".tmp-object";
    std::ofstream(f, std::ios::binary) << raw;
    auto r = git(dir_, {"hash-object", "-w", "-t", "tree", "--literally"}, f.string());
    EXPECT_EQ(r.code, 0) << r.err;
    return trim(r.out);
  }
  std::string commit(const std::string& tree) {
    auto r = git(dir_, {"commit-tree", tree, "-m", "hostile"});
    EXPECT_EQ(r.code, 0) << r.err;
    // On a branch, so that a clone (file://) fetches it too.
    EXPECT_EQ(git(dir_, {"update-ref", "refs/heads/main", trim(r.out)}).code, 0);
    return trim(r.out);
  }
  // A commit whose root holds a recipe with one run step (so the node checks the tree out) plus `extra`.
  std::string commit_with(std::vector<RawEntry> extra) {
    std::string recipe = blob("[image]\nname = \"example.org/hostile\"\n\n[[steps]]\nrun = \"true\"\nto = \"/x\"\n");
    extra.push_back({"100644", "quorate.toml", recipe});
    std::sort(extra.begin(), extra.end(), [](const RawEntry& a, const RawEntry& b) { return a.name < b.name; });
    return commit(tree(extra));
  }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
};

struct Case {
  const char* label;
  // Builds the hostile commit; `victim` is a directory outside the checkout an attacker aims at.
  std::function<std::string(HostileRepo&, const fs::path& victim)> make;
  const char* named;  // what the error must name
};

std::vector<Case> cases() {
  return {
      {"dotdot_in_name",
       [](HostileRepo& r, const fs::path& victim) {
         std::string rel = "../../../../../../../../.." + victim.string() + "/pwned";
         return r.commit_with({{"100644", rel, r.blob("owned\n")}});
       },
       "pwned"},
      {"absolute_name",
       [](HostileRepo& r, const fs::path& victim) {
         return r.commit_with({{"100644", (victim / "pwned").string(), r.blob("owned\n")}});
       },
       "pwned"},
      {"tree_named_dotdot",
       [](HostileRepo& r, const fs::path&) {
         std::string inner = r.tree({{"100644", "pwned", r.blob("owned\n")}});
         return r.commit_with({{"40000", "..", inner}});
       },
       "\"..\""},
      {"dot_git_any_case",
       [](HostileRepo& r, const fs::path&) {
         std::string hooks = r.tree({{"100755", "post-checkout", r.blob("#!/bin/sh\ntouch /tmp/pwned\n")}});
         std::string git_dir = r.tree({{"40000", "hooks", hooks}});
         return r.commit_with({{"40000", ".GiT", git_dir}});
       },
       ".GiT"},
      {"symlink_then_blob_through_it",
       [](HostileRepo& r, const fs::path& victim) {
         return r.commit_with({{"120000", "lnk", r.blob(victim.string())}, {"100644", "lnk/pwned", r.blob("owned\n")}});
       },
       "lnk/pwned"},
      {"symlink_and_directory_of_one_name",
       [](HostileRepo& r, const fs::path& victim) {
         std::string inner = r.tree({{"100644", "pwned", r.blob("owned\n")}});
         return r.commit_with({{"120000", "lnk", r.blob(victim.string())}, {"40000", "lnk", inner}});
       },
       "lnk"},
  };
}

class HostileTree : public ::testing::TestWithParam<size_t> {};

// The library refuses the commit before anything is written, naming the entry.
TEST_P(HostileTree, GitSourceRefusesTheCommitNamingTheEntry) {
  const Case c = cases()[GetParam()];
  testing::ScratchDir dir;
  fs::create_directories(dir / "victim");
  HostileRepo repo(dir / "repo");
  std::string commit = c.make(repo, dir / "victim");
  auto source = builder::GitSource::open((dir / "repo").string(), commit, dir / "clones");
  ASSERT_FALSE(source.ok()) << c.label << ": a hostile tree was accepted";
  EXPECT_TRUE(source.status().is_bad_input()) << source.status().to_string();
  EXPECT_NE(source.status().message().find("hostile tree entry"), std::string::npos) << source.status().to_string();
  EXPECT_NE(source.status().message().find(c.named), std::string::npos) << source.status().to_string();
  EXPECT_TRUE(fs::is_empty(dir / "victim"));
}

// `quorate build` from a local path and from a file:// clone: exit 2 naming the entry, nothing written outside.
TEST_P(HostileTree, BuildExitsTwoAndWritesNothingOutside) {
  const Case c = cases()[GetParam()];
  testing::ScratchDir dir;
  fs::create_directories(dir / "victim");
  HostileRepo repo(dir / "repo");
  std::string commit = c.make(repo, dir / "victim");
  for (const std::string& where : {(dir / "repo").string(), "file://" + (dir / "repo").string()}) {
    auto r = e2e::run({testing::quorate_bin(), "build", "--repo", where, "--commit", commit, "--out",
                       (dir / "out").string(), "--no-sandbox", "--work-dir", (dir / "work").string(), "-q"},
                      dir.path(), std::chrono::seconds(120));
    EXPECT_EQ(r.code, 2) << where << ": " << r.out << r.err;
    EXPECT_NE(r.err.find("hostile tree entry"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir / "out"));
    EXPECT_TRUE(fs::is_empty(dir / "victim")) << where;
    EXPECT_FALSE(fs::exists(dir / "pwned"));
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, HostileTree, ::testing::Range<size_t>(0, cases().size()),
                         [](const auto& param_info) { return std::string(cases()[param_info.param].label); });

// Git stores a gigabyte of zeros in a megabyte, and a tree may name one blob thousands of times: a commit whose
// files would cost more to read or check out than GitSource's bounds is refused when it is opened, from the
// object headers, before a blob is read (a 9 MB pack of a 2 GiB file made `quorate build` hold 4.2 GB).
class HostileSize : public ::testing::Test {
 protected:
  // Opens `commit` and builds it; both must refuse it naming `why`, the build at once and in little memory.
  void expect_refused(const std::string& commit, const std::string& why) {
    auto source = builder::GitSource::open((dir_ / "repo").string(), commit, dir_ / "clones");
    ASSERT_FALSE(source.ok()) << "a commit past the size bounds was opened";
    EXPECT_TRUE(source.status().is_bad_input()) << source.status().to_string();
    EXPECT_NE(source.status().message().find(why), std::string::npos) << source.status().to_string();
    auto r = e2e::run({testing::quorate_bin(), "build", "--repo", (dir_ / "repo").string(), "--commit", commit, "--out",
                       (dir_ / "out").string(), "--no-sandbox", "--work-dir", (dir_ / "work").string(), "-q"},
                      dir_.path(), std::chrono::seconds(120));
    EXPECT_EQ(r.code, 2) << r.out << r.err;
    EXPECT_NE(r.err.find(why), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "out"));
  }
  testing::ScratchDir dir_;
  HostileRepo repo_{dir_ / "repo"};
};

TEST_F(HostileSize, OneBlobNamedThousandsOfTimesIsRefused) {
  std::string zeros = repo_.blob(std::string(size_t{2} << 20, '\0'));
  std::vector<RawEntry> entries;
  for (int i = 0; i < 9000; ++i) entries.push_back({"100644", "z" + std::to_string(100000 + i), zeros});
  expect_refused(repo_.commit_with(entries), "its files total more than 17179869184 bytes");
}

TEST_F(HostileSize, AFileOverOneGibIsRefused) {
  auto big = dir_ / "big";
  std::ofstream(big).close();
  fs::resize_file(big, (uint64_t{1} << 30) + 1);  // sparse: git reads zeros
  auto r = e2e::run(testing::git_argv(dir_ / "repo", {"-c", "core.compression=1", "hash-object", "-w", big.string()}),
                    dir_.path(), std::chrono::seconds(120));
  ASSERT_EQ(r.code, 0) << r.err;
  fs::remove(big);
  expect_refused(repo_.commit_with({{"100644", "big", trim(r.out)}}),
                 "file big is 1073741825 bytes; a file may be at most 1073741824");
  struct rusage usage {};
  ::getrusage(RUSAGE_CHILDREN, &usage);
  EXPECT_LT(usage.ru_maxrss, 256 * 1024) << "KiB: the largest process this test waited for";
}

// A symlink's target goes into a layer whole (as a pax linkpath), whatever its length: one longer than PATH_MAX
// names nothing a file system can hold, so it is refused like an oversized file.
TEST_F(HostileSize, ASymlinkTargetOfPathMaxOrMoreIsRefused) {
  std::string target = repo_.blob(std::string(4096, 'a'));
  expect_refused(repo_.commit_with({{"120000", "long", target}}),
                 "symlink long has a target of 4096 bytes; at most 4095");
}

TEST_F(HostileSize, ABlobTheRepositoryLacksIsNamed) {
  expect_refused(repo_.commit_with({{"100644", "gone", std::string(40, 'e')}}),
                 "file gone names blob eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee, which the repository lacks");
}

// Empty files weigh nothing, so the byte bounds do not stop a tree that lists a great many of them: trees
// naming trees reach a million entries in a few kilobytes (10 million took 54 s and 2.2 GB before), and a deep
// chain of long names costs its depth squared (every entry is held with its whole path).
TEST_F(HostileSize, ATreeListingMoreThanAMillionEntriesIsRefused) {
  std::string empty = repo_.blob("");
  std::vector<RawEntry> files, dirs;
  for (int i = 0; i < 1000; ++i) files.push_back({"100644", "f" + std::to_string(1000 + i), empty});
  std::string thousand = repo_.tree(files);
  for (int i = 0; i < 1001; ++i) dirs.push_back({"40000", "d" + std::to_string(1000 + i), thousand});
  expect_refused(repo_.commit_with({{"40000", "bomb", repo_.tree(dirs)}}), "its tree lists more than 1000000 entries");
}

TEST_F(HostileSize, ATreeNestedDeeperThan256LevelsIsRefused) {
  std::string level = repo_.tree({{"100644", "leaf", repo_.blob("")}});
  for (int i = 0; i < 300; ++i) level = repo_.tree({{"40000", "d", level}});
  expect_refused(repo_.commit_with({{"40000", "deep", level}}), "its tree nests deeper than 256 levels");
}

TEST_F(HostileSize, PathsTotallingMoreThan256MibAreRefused) {
  std::vector<RawEntry> files;
  std::string empty = repo_.blob("");
  for (int i = 0; i < 4200; ++i) files.push_back({"100644", "f" + std::to_string(10000 + i), empty});
  std::string level = repo_.tree(files);
  for (int i = 0; i < 250; ++i) level = repo_.tree({{"40000", std::string(255, 'n'), level}});
  expect_refused(repo_.commit_with({{"40000", "long", level}}), "its paths total more than 268435456 bytes");
}

TEST(HostileTreeName, GitFsckRules) {
  EXPECT_TRUE(builder::check_tree_entry_name("", "ok.txt").ok());
  EXPECT_TRUE(builder::check_tree_entry_name("a/", ".gitignore").ok());
  EXPECT_TRUE(builder::check_tree_entry_name("", "...").ok());
  for (const char* bad : {"", ".", "..", "a/b", "/abs", ".git", ".GIT", ".Git.", ".git  ", "GIT~1"}) {
    EXPECT_TRUE(builder::check_tree_entry_name("", bad).is_bad_input()) << bad;
  }
  EXPECT_TRUE(builder::check_tree_entry_name("", std::string("a\0b", 3)).is_bad_input());
}

}  // namespace
}  // namespace quorate::hostile
