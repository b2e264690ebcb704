// TempDir: a fresh directory under the given parent, removed with its contents unless released.
#include "quorate/core/temporaries.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "support/test_util.h"

namespace quorate {
namespace {
namespace fs = std::filesystem;
using testing::ScratchDir;

TEST(TempDirTest, IsCreatedUnderTheParentWithThePrefixAndPrivate) {
  ScratchDir parent;
  auto dir = TempDir::create(parent.path(), "work-").value();
  EXPECT_EQ(dir.path().parent_path(), parent.path());
  EXPECT_EQ(dir.path().filename().string().rfind("work-", 0), 0u);
  struct stat st;
  ASSERT_EQ(::stat(dir.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST(TempDirTest, IsRemovedWithItsContentsAtDestruction) {
  ScratchDir parent;
  fs::path path;
  {
    auto dir = TempDir::create(parent.path(), "x-").value();
    path = dir.path();
    fs::create_directories(path / "a/b");
    std::ofstream(path / "a/b/file") << "data";
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::is_empty(parent.path()));
}

TEST(TempDirTest, ReleasedDirectoryStays) {
  ScratchDir parent;
  fs::path kept;
  {
    auto dir = TempDir::create(parent.path(), "x-").value();
    kept = dir.release();
    EXPECT_TRUE(dir.path().empty());
  }
  EXPECT_TRUE(fs::is_directory(kept));
}

TEST(TempDirTest, MovedDirectoryIsRemovedOnceByItsNewOwner) {
  ScratchDir parent;
  fs::path path;
  {
    auto first = TempDir::create(parent.path(), "x-").value();
    path = first.path();
    TempDir second = std::move(first);
    EXPECT_TRUE(fs::is_directory(path));
    EXPECT_EQ(second.path(), path);
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST(TempDirTest, AnInterruptRemovesIt) {
  ScratchDir parent;
  auto dir = TempDir::create(parent.path(), "x-").value();
  remove_registered_temporaries();
  EXPECT_FALSE(fs::exists(dir.path()));
}

TEST(TempDirTest, HasNoDefaultParent) {
  EXPECT_TRUE(TempDir::create("", "x-").status().code() == Code::kUsage);
  ScratchDir parent;
  auto missing = TempDir::create(parent.path() / "missing", "x-");
  EXPECT_EQ(missing.status().code(), Code::kIo);
  EXPECT_NE(missing.status().message().find("missing"), std::string::npos);
}

}  // namespace
}  // namespace quorate
