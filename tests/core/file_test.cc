// Atomic files and directories: nothing appears at the target until commit.
#include "quorate/core/file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "tests/support/test_util.h"

namespace quorate {
namespace {
namespace fs = std::filesystem;
using quorate::testing::without_waiting_on_fifo;

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

TEST_F(FileTest, ASecretOthersMayReadIsRefusedWithTheChmodToRun) {
  for (uint32_t mode : {0640u, 0604u, 0620u, 0601u}) {
    ASSERT_TRUE(write_file_atomic(dir_ / "secret", "s3cret", mode).ok());
    auto r = read_secret_file(dir_ / "secret", 100, "private key file");
    ASSERT_FALSE(r.ok()) << std::oct << mode;
    EXPECT_TRUE(r.status().is_bad_input());
    const std::string m = r.status().message();
    EXPECT_NE(m.find("private key file has mode 0" + (std::ostringstream() << std::oct << mode).str()),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("chmod 600 " + (dir_ / "secret").string()), std::string::npos) << m;
    EXPECT_EQ(m.find("s3cret"), std::string::npos) << m;
  }
  for (uint32_t mode : {0600u, 0400u}) {
    ASSERT_TRUE(write_file_atomic(dir_ / "secret", "s3cret", mode).ok());
    EXPECT_EQ(read_secret_file(dir_ / "secret", 100, "private key file").value(), "s3cret");
  }
  // Through a symlink (as Kubernetes mounts secrets), the target's mode is what counts.
  fs::create_symlink(dir_ / "secret", dir_ / "link");
  EXPECT_EQ(read_secret_file(dir_ / "link", 100, "private key file").value(), "s3cret");
  EXPECT_TRUE(read_secret_file(dir_ / "secret", 5, "private key file").status().is_bad_input());
  EXPECT_TRUE(read_secret_file(dir_ / "absent", 100, "private key file").status().is_not_found());
}

// A FIFO where a key belongs would block every later start until someone writes to it.
// A pipe the shell made (`--key <(pass show k)`) is read to its writer's end; a FIFO no one writes to, which
// would hold every later start waiting, reads as empty at once; a directory or device is refused.
TEST_F(FileTest, ASecretInAPipeIsReadAndAFifoNoOneWritesToDoesNotWait) {
  ASSERT_EQ(::mkfifo((dir_ / "fifo").c_str(), 0600), 0);
  auto read_fifo = [&] {
    return without_waiting_on_fifo(dir_ / "fifo",
                                   [&] { return read_secret_file(dir_ / "fifo", 100, "pin-source file"); });
  };
  EXPECT_EQ(read_fifo().value(), "");

  // A shell's pipe, as `<(…)` passes it: /dev/fd/N of a pipe whose writer is still writing.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the reader finds the pipe empty at first
    EXPECT_EQ(::write(fds[1], "s3cret", 6), 6);
    ::close(fds[1]);
  });
  auto piped = read_secret_file("/proc/self/fd/" + std::to_string(fds[0]), 100, "pin-source file");
  writer.join();
  ::close(fds[0]);
  EXPECT_EQ(piped.value(), "s3cret");

  ASSERT_EQ(::chmod((dir_ / "fifo").c_str(), 0644), 0);
  EXPECT_NE(read_fifo().status().message().find("has mode 0644"), std::string::npos);
  auto r = read_secret_file(dir_, 100, "pin-source file");
  EXPECT_TRUE(r.status().is_bad_input());
  EXPECT_NE(r.status().message().find("is not a regular file (a directory)"), std::string::npos)
      << r.status().message();
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
