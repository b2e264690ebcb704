// cli/progress: what a person watching a terminal sees, and that nobody else sees anything.
#include "cli/progress.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

namespace quorate::cli {
namespace {

using ::testing::HasSubstr;

TEST(Progress, DisabledWritesNothing) {
  std::ostringstream out;
  {
    Progress p("build", /*enabled=*/false, out);
    EXPECT_FALSE(p.enabled());
    p.line("step 1/2");
    p.update("read 1 MiB");
    p.done();
    // A library given these does no progress work at all.
    EXPECT_FALSE(p.lines());
    EXPECT_FALSE(p.bytes("read"));
  }
  EXPECT_EQ(out.str(), "");
}

TEST(Progress, LinesAreWholeAndPrefixed) {
  std::ostringstream out;
  Progress p("image pull", /*enabled=*/true, out);
  p.line("copying a");
  p.lines()("checking every blob");
  EXPECT_EQ(out.str(), "quorate image pull: copying a\nquorate image pull: checking every blob\n");
}

// Progress names build steps and files of hostile inputs: masked (core/display.h), only the counter's own
// "\r" and clear-to-end-of-line reach the terminal.
TEST(Progress, TextFromInputsIsMasked) {
  std::ostringstream out;
  Progress p("build", /*enabled=*/true, out);
  p.line("step 1/2: RUN echo \x1b[2J");
  p.update(
      "copying \x9b"
      "1m");
  p.done();
  EXPECT_EQ(out.str(), "quorate build: step 1/2: RUN echo ?[2J\n\rquorate build: copying ?1m\x1b[K\n");
}

TEST(Progress, CounterIsRewrittenInPlaceAndEndedByTheNextLine) {
  std::ostringstream out;
  {
    Progress p("normalize", /*enabled=*/true, out);
    auto read = p.bytes("read");
    ASSERT_TRUE(read);
    read(uint64_t{5} << 20);
    read((uint64_t{7} << 20) + 12345);  // whole MiB only
    p.line("done reading");
    p.update("write 1 MiB");
  }  // the destructor ends the open counter line
  EXPECT_EQ(out.str(),
            "\rquorate normalize: read 5 MiB\x1b[K"
            "\rquorate normalize: read 7 MiB\x1b[K\n"
            "quorate normalize: done reading\n"
            "\rquorate normalize: write 1 MiB\x1b[K\n");
}

TEST(Progress, DoneEndsTheCounterOnce) {
  std::ostringstream out;
  Progress p("diff", /*enabled=*/true, out);
  p.update("file 3/9");
  p.done();
  p.done();
  EXPECT_EQ(out.str(), "\rquorate diff: file 3/9\x1b[K\n");
}

// The real constructor: shown only when stderr is a terminal and --quiet is not given. stderr is pointed at a
// pseudo-terminal for the length of the test.
TEST(Progress, ShownOnATerminalUnlessQuiet) {
  int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  int tty = ::open(::ptsname(master), O_RDWR | O_NOCTTY);
  ASSERT_GE(tty, 0);
  int saved = ::dup(STDERR_FILENO);
  ASSERT_GE(saved, 0);
  ::dup2(tty, STDERR_FILENO);
  bool on_terminal = Progress("build", /*quiet=*/false).enabled();
  bool quiet_on_terminal = Progress("build", /*quiet=*/true).enabled();
  int devnull = ::open("/dev/null", O_WRONLY);
  ::dup2(devnull, STDERR_FILENO);
  bool not_a_terminal = Progress("build", /*quiet=*/false).enabled();
  ::dup2(saved, STDERR_FILENO);
  for (int fd : {saved, devnull, tty, master}) ::close(fd);
  EXPECT_TRUE(on_terminal);
  EXPECT_FALSE(quiet_on_terminal);
  EXPECT_FALSE(not_a_terminal);
}

}  // namespace
}  // namespace quorate::cli
