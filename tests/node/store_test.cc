// NodeStore: gap-free sequence numbers that survive reopening, history since N.
#include "quorate/node/store.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include "support/test_util.h"

namespace quorate::node {
namespace {

testing::ScratchDir& store_scratch() {
  static testing::ScratchDir dir;
  return dir;
}

std::filesystem::path fresh_dir(const char* name) {
  auto dir = store_scratch() / name;
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(NodeStore, SequenceStartsAtOneAndHasNoGaps) {
  auto dir = fresh_dir("a");
  auto store = NodeStore::open(dir / "node.db");
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  EXPECT_EQ(*(*store)->last_sequence(), 0u);
  EXPECT_EQ(*(*store)->append("r1", "sha256:1", "env1", 0), 1u);
  EXPECT_EQ(*(*store)->append("r2", "sha256:2", "env2", 0), 2u);
  EXPECT_EQ(*(*store)->append("r3", "sha256:3", "env3", 0), 3u);
  auto rows = (*store)->since(1, 10);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].sequence, 2u);
  EXPECT_EQ((*rows)[1].envelope, "env3");
  std::filesystem::remove_all(dir);
}

TEST(NodeStore, ReopeningResumesTheSequence) {
  auto dir = fresh_dir("b");
  {
    auto store = NodeStore::open(dir / "node.db");
    ASSERT_TRUE((*store)->append("r1", "d", "e", 0).ok());
    ASSERT_TRUE((*store)->append("r2", "d", "e", 0).ok());
  }
  auto store = NodeStore::open(dir / "node.db");
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(*(*store)->last_sequence(), 2u);
  EXPECT_EQ(*(*store)->append("r3", "d", "e", 0), 3u);
  auto found = (*store)->find_request("r2");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->sequence, 2u);
  EXPECT_FALSE((*(*store)->find_request("nope")).has_value());
  std::filesystem::remove_all(dir);
}

TEST(NodeStore, HistoryIsBoundedByCount) {
  auto dir = fresh_dir("c");
  auto store = NodeStore::open(dir / "node.db");
  for (int i = 0; i < 10; ++i) ASSERT_TRUE((*store)->append("r", "d", "e", 0).ok());
  auto rows = (*store)->since(0, 4);
  ASSERT_EQ(rows->size(), 4u);
  EXPECT_EQ(rows->back().sequence, 4u);
  std::filesystem::remove_all(dir);
}

// A HistoryRequest's since_sequence is a uint64: one of 2^63 or more was cast to a negative number and answered
// with the history from its start.
TEST(NodeStore, NothingFollowsASinceBeyondEverySequence) {
  auto dir = fresh_dir("e");
  auto store = NodeStore::open(dir / "node.db");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*store)->append("r", "d", "e", 0).ok());
  for (uint64_t since : {uint64_t{1} << 63, ~uint64_t{0}, uint64_t{3}}) {
    auto rows = (*store)->since(since, 10);
    ASSERT_TRUE(rows.ok()) << rows.status().to_string();
    EXPECT_TRUE(rows->empty()) << since << ": " << rows->size() << " rows";
  }
  EXPECT_EQ((*store)->since(2, 10)->size(), 1u);
  std::filesystem::remove_all(dir);
}

TEST(NodeStore, GarbageFileIsAnError) {
  auto dir = fresh_dir("d");
  {
    FILE* f = std::fopen((dir / "node.db").c_str(), "w");
    std::fputs("this is not a database, not even close, and long enough to have a header", f);
    std::fclose(f);
  }
  auto store = NodeStore::open(dir / "node.db");
  EXPECT_FALSE(store.ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace quorate::node
