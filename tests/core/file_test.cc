// Atomic files and directories: nothing appears at the target until commit.
#include "quorate/core/file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

namespace quorate {
namespace {
namespace fs = std::filesystem;

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("quorate-file-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(FileTest, WriteAtomicAppliesModeExactly) {
  ::umask(077);
  ASSERT_TRUE(write_file_atomic(dir_ / "a", "hello", 0644).ok());
  ::umask(022);
  struct stat st;
  ASSERT_EQ(::stat((dir_ / "a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_EQ(read_file(dir_ / "a").value(), "hello");
}

TEST_F(FileTest, UncommittedFileLeavesNothing) {
  {
    auto f = AtomicFile::create(dir_ / "b").value();
    ASSERT_TRUE(f->Sink::write(std::string_view("partial")).ok());
  }
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(FileTest, ReadFileEnforcesLimit) {
  ASSERT_TRUE(write_file_atomic(dir_ / "c", std::string(100, 'x')).ok());
  EXPECT_TRUE(read_file(dir_ / "c", 99).status().is_bad_input());
  EXPECT_TRUE(read_file(dir_ / "missing").status().is_not_found());
}

TEST_F(FileTest, AtomicDirAppearsOnlyOnCommit) {
  {
    auto d = AtomicDir::create(dir_ / "out").value();
    ASSERT_TRUE(write_file_atomic(d.path() / "x", "1").ok());
  }
  EXPECT_TRUE(fs::is_empty(dir_));
  auto d = AtomicDir::create(dir_ / "out").value();
  ASSERT_TRUE(write_file_atomic(d.path() / "x", "1").ok());
  ASSERT_TRUE(d.commit().ok());
  EXPECT_EQ(read_file(dir_ / "out" / "x").value(), "1");
}

TEST_F(FileTest, AtomicDirRefusesNonEmptyTarget) {
  fs::create_directories(dir_ / "full");
  ASSERT_TRUE(write_file_atomic(dir_ / "full" / "keep", "k").ok());
  EXPECT_FALSE(AtomicDir::create(dir_ / "full").ok());
  EXPECT_EQ(read_file(dir_ / "full" / "keep").value(), "k");
}

}  // namespace
}  // namespace quorate
