// ImageStore::remove and `quorate image rm`: index entry, unshared blobs and the unpacked tree go; shared
// blobs stay; unknown digests and trees in use are refused with nothing removed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "imagestore/store_test_util.h"
#include "quorate/imagestore/image_store.h"

namespace quorate::imagestore {
namespace {

using quorate::testing::names_in;
using quorate::testing::ScratchDir;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

class Remove : public ::testing::Test {
 protected:
  void SetUp() override {
    a_ = quorate::testing::make_busybox_image(scratch_ / "a");
    b_ = quorate::testing::make_sibling_image(scratch_ / "a", scratch_ / "b", "PATH=/bin:/sbin");
    ASSERT_NE(a_, b_);
    ASSERT_TRUE(store().import(scratch_ / "a").ok());
    ASSERT_TRUE(store().import(scratch_ / "b").ok());
    ASSERT_EQ(store().list()->size(), 2u);
  }
  ImageStore store() { return ImageStore::open(scratch_ / "store").value(); }
  std::set<std::string> blobs_of(const std::string& digest) {
    auto v = store().verify(digest);
    EXPECT_TRUE(v.ok()) << v.status().to_string();
    std::set<std::string> out = {digest_hex(digest)};
    auto m = nlohmann::json::parse(quorate::testing::slurp(scratch_ / "store/blobs/sha256" / digest_hex(digest)));
    out.insert(digest_hex(m["config"]["digest"].get<std::string>()));
    for (const auto& l : m["layers"]) out.insert(digest_hex(l["digest"].get<std::string>()));
    return out;
  }
  fs::path blobs() { return scratch_ / "store/blobs/sha256"; }
  ScratchDir scratch_;
  std::string a_, b_;
};

TEST_F(Remove, TakesUnsharedBlobsAndTheTreeKeepsSharedOnes) {
  auto a_blobs = blobs_of(a_), b_blobs = blobs_of(b_);
  {
    auto tree = store().rootfs(*store().verify(a_));
    ASSERT_TRUE(tree.ok()) << tree.status().to_string();
    fs::permissions(tree->path() / "bin", fs::perms(0555));  // images hold read-only directories
  }
  ASSERT_TRUE(fs::is_directory(scratch_ / "store/rootfs" / digest_hex(a_)));
  auto s = store().remove({a_});
  ASSERT_TRUE(s.ok()) << s.to_string();
  auto listed = store().list();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].digest, b_);
  for (const auto& hex : a_blobs) {
    EXPECT_EQ(fs::exists(blobs() / hex), b_blobs.count(hex) == 1)
        << hex << (b_blobs.count(hex) ? " is shared" : " is not shared");
  }
  for (const auto& name : names_in(scratch_ / "store/rootfs")) {
    EXPECT_EQ(name.find(digest_hex(a_)) == 0 && !name.ends_with(".lock"), false) << "left behind: " << name;
    EXPECT_NE(name.rfind(".trash-", 0), 0u) << "left behind: " << name;
  }
  EXPECT_TRUE(store().verify(b_).ok()) << "the image that stays lost a blob";
  ASSERT_TRUE(store().remove({b_}).ok());
  EXPECT_EQ(names_in(blobs()).size(), 0u);
  EXPECT_FALSE(store().verify(b_).ok());
}

TEST_F(Remove, UnknownDigestRemovesNothing) {
  std::string unknown = "sha256:" + std::string(64, 'a');
  auto s = store().remove({a_, unknown});
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.is_not_found()) << s.to_string();
  EXPECT_THAT(s.message(), HasSubstr(unknown));
  EXPECT_EQ(store().list()->size(), 2u);
  EXPECT_TRUE(store().verify(a_).ok());
}

TEST_F(Remove, ATreeInUseIsNotTakenAway) {
  auto tree = store().rootfs(*store().verify(a_));
  ASSERT_TRUE(tree.ok());
  auto s = store().remove({a_});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("in use"));
  EXPECT_TRUE(fs::is_regular_file(tree->path() / "bin/busybox"));
  EXPECT_EQ(store().list()->size(), 2u);
  EXPECT_TRUE(store().verify(a_).ok());
}

// An index entry that is not a descriptor (a hand edit: its size a string) was skipped: `rm` of the other image
// then took the layer they share, and an import of the same image listed it twice. Now every use of the index
// refuses it, naming the entry, and nothing is removed.
TEST_F(Remove, AnIndexEntryThatIsNotADescriptorStopsEveryUseOfTheIndex) {
  fs::path index_path = scratch_ / "store/index.json";
  auto index = nlohmann::json::parse(quorate::testing::slurp(index_path));
  ASSERT_EQ(index["manifests"][1]["digest"], b_);
  index["manifests"][1]["size"] = std::to_string(index["manifests"][1]["size"].get<uint64_t>());
  fs::remove(index_path);
  quorate::testing::spit(index_path, index.dump());
  auto before = names_in(blobs());

  auto s = store().remove({a_});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kBadInput) << s.to_string();
  EXPECT_THAT(s.message(), HasSubstr("index.json: manifests[1]: descriptor " + b_));
  EXPECT_EQ(names_in(blobs()), before);
  EXPECT_FALSE(store().list().ok());
  EXPECT_FALSE(store().import(scratch_ / "b").ok());
  EXPECT_EQ(quorate::testing::slurp(index_path), index.dump());
}

TEST_F(Remove, CliRemovesAndRefusesAnUnknownDigest) {
  auto bin = quorate::testing::quorate_bin();
  auto dir = quorate::testing::sh((scratch_ / "store").string());
  auto r = quorate::testing::run(bin + " image rm " + a_ + " --image-store " + dir);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  auto again = quorate::testing::run(bin + " image rm " + a_ + " --image-store " + dir);
  EXPECT_EQ(again.exit_code, 2) << again.out;
  EXPECT_THAT(again.out, HasSubstr("is not in the image store"));
  auto help = quorate::testing::run(bin + " image --help");
  for (const char* sub : {"import", "pull", "ls", "rm", "--image-store"}) EXPECT_THAT(help.out, HasSubstr(sub));
}

}  // namespace
}  // namespace quorate::imagestore
