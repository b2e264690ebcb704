// read_layer_entries: every entry, with content digests, and the same errors as normalize.
#include "quorate/normalize/inspect.h"

#include <gtest/gtest.h>

#include <map>

#include "quorate/core/sha256.h"
#include "tests/support/test_util.h"

namespace quorate::normalize {
namespace {
using quorate::testing::run;
using quorate::testing::ScratchDir;
using quorate::testing::sh;

std::string make(const ScratchDir& dir, const std::string& kind, const std::string& args = "") {
  std::string out = (dir / (kind + ".tar")).string();
  auto r = run("python3 " + sh((quorate::testing::source_dir() / "tests/normalize/make_layer.py").string()) + " " +
               kind + " " + sh(out) + " " + args);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return out;
}

TEST(ReadLayerEntries, ListsEveryEntryWithContentDigests) {
  ScratchDir dir;
  std::map<std::string, LayerEntry> seen;
  auto s = read_layer_entries(make(dir, "tree", "--dot --compress gzip"), [&](LayerEntry&& e) {
    seen[e.entry.path] = e;
    return Status();
  });
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(seen.size(), 22u);
  EXPECT_EQ(seen["etc/app.conf"].content_digest, sha256_digest("listen = 8080\n"));
  EXPECT_EQ(seen["etc/app.conf"].entry.mode, 0640u);
  EXPECT_EQ(seen["usr/bin/tool2"].entry.type, EntryType::kHardlink);
  EXPECT_EQ(seen["usr/bin/alias"].entry.link_target, "tool");
  EXPECT_EQ(seen["etc/cap"].entry.xattrs.at("user.note"), "kept");
}

TEST(ReadLayerEntries, RefusesHostilePaths) {
  ScratchDir dir;
  auto s = read_layer_entries(make(dir, "dotdot"), [](LayerEntry&&) { return Status(); });
  EXPECT_TRUE(s.is_bad_input());
  EXPECT_NE(s.message().find("\"..\""), std::string::npos) << s.message();
}

// `quorate diff` keeps every entry it reads: a path or link target over 64 KiB is refused as normalize refuses
// it (a 1 MB input of long pax paths held 3.9 GB).
TEST(ReadLayerEntries, RefusesPathsOver64KiB) {
  ScratchDir dir;
  auto tar = dir / "long.tar";
  auto r = run("python3 -c " +
               sh("import io,sys,tarfile\n"
                  "t=tarfile.open(sys.argv[1],'w',format=tarfile.PAX_FORMAT)\n"
                  "i=tarfile.TarInfo('p'*70000); t.addfile(i,io.BytesIO(b'')); t.close()\n") +
               " " + sh(tar.string()));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto s = read_layer_entries(tar, [](LayerEntry&&) { return Status(); });
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.is_bad_input()) << s.to_string();
  EXPECT_NE(s.message().find("a path or link target of more than 65536 bytes"), std::string::npos) << s.message();
}

// `quorate diff` keeps every entry's xattrs and owner names: over 64 KiB each is refused there too (a 500 KB
// xattr on each of 4,000 entries, 139 KB of zstd, held 2 GB).
TEST(ReadLayerEntries, RefusesXattrsOver64KiB) {
  ScratchDir dir;
  auto tar = dir / "xattr.tar";
  auto r = run("python3 -c " +
               sh("import io,sys,tarfile\n"
                  "t=tarfile.open(sys.argv[1],'w',format=tarfile.PAX_FORMAT)\n"
                  "i=tarfile.TarInfo('f'); i.pax_headers={'SCHILY.xattr.user.big': 'v'*500000}\n"
                  "t.addfile(i,io.BytesIO(b'')); t.close()\n") +
               " " + sh(tar.string()));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto s = read_layer_entries(tar, [](LayerEntry&&) { return Status(); });
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.is_bad_input()) << s.to_string();
  EXPECT_NE(s.message().find("an xattr value of more than 65536 bytes"), std::string::npos) << s.message();
}

// `quorate diff` reads layers by normalize's rules: a pax header libarchive drops (the entry would be compared
// under its ustar name, "innocent") is refused, also when a GNU 'K' header in front hides libarchive's warning.
TEST(ReadLayerEntries, RefusesAPaxHeaderLibarchiveDrops) {
  ScratchDir dir;
  for (const std::string kind : {"pax-malformed", "k-masks-malformed"}) {
    auto tar = dir / (kind + ".tar");
    auto r =
        run("python3 " + sh((quorate::testing::source_dir() / "tests/hostile/normalize_hostile_inputs.py").string()) +
            " " + kind + " " + sh(tar.string()));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    std::vector<std::string> seen;
    auto s = read_layer_entries(tar, [&](LayerEntry&& e) {
      seen.push_back(e.entry.path);
      return Status();
    });
    EXPECT_TRUE(s.is_bad_input()) << kind << ": " << s.to_string();
    EXPECT_NE(s.message().find("entry 1"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("malformed pax"), std::string::npos) << s.message();
    EXPECT_EQ(seen, std::vector<std::string>{"a"}) << kind;
  }
}

TEST(ReadLayerEntries, StopsWhenTheVisitorFails) {
  ScratchDir dir;
  int calls = 0;
  auto s = read_layer_entries(make(dir, "tree"), [&](LayerEntry&&) {
    ++calls;
    return Status::not_found("enough");
  });
  EXPECT_TRUE(s.is_not_found());
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace quorate::normalize
