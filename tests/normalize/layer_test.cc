// Canonical layers: equivalence, idempotence, preservation, golden bytes, and every kind of bad input.
#include "quorate/normalize/layer.h"

#include <gtest/gtest.h>

#include "quorate/core/file.h"
#include "quorate/core/sha256.h"
#include "quorate/normalize/tar_header.h"
#include "tests/support/test_util.h"

namespace quorate::normalize {
namespace {
namespace fs = std::filesystem;
using quorate::testing::run;
using quorate::testing::ScratchDir;
using quorate::testing::sh;
using quorate::testing::slurp;

constexpr int64_t kEpoch = 1700000000;

class LayerTest : public ::testing::Test {
 protected:
  // Writes a generated layer (tests/normalize/make_layer.py KIND with ARGS) and returns its path.
  fs::path make(const std::string& kind, const std::string& args = "") {
    fs::path out = dir_ / (kind + std::to_string(counter_++) + ".tar");
    auto r = run("python3 " + sh((quorate::testing::source_dir() / "tests/normalize/make_layer.py").string()) + " " +
                 kind + " " + sh(out.string()) + " " + args);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return out;
  }

  Result<LayerSummary> normalize(const fs::path& in, std::string& bytes, LayerOptions options = {}) {
    if (options.source_date_epoch == 0) options.source_date_epoch = kEpoch;
    StringSink sink;
    auto summary = normalize_layer(in, sink, options);
    bytes = sink.take();
    return summary;
  }

  std::string canonical(const fs::path& in, LayerOptions options = {}) {
    std::string bytes;
    auto s = normalize(in, bytes, options);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return bytes;
  }

  fs::path save(const std::string& bytes) {
    fs::path p = dir_ / ("out" + std::to_string(counter_++) + ".tar");
    quorate::testing::spit(p, bytes);
    return p;
  }

  ScratchDir dir_;
  int counter_ = 0;
};

std::string digest_of(const std::string& bytes) { return sha256_digest(bytes); }

LayerOptions uncompressed() {
  LayerOptions o;
  o.compression = Compression::kNone;
  return o;
}

TEST_F(LayerTest, SameFilesInDifferentEncodingsNormalizeToIdenticalBytes) {
  std::string reference = digest_of(canonical(make("tree"), uncompressed()));
  const char* variants[] = {
      "--order shuffled --noise --dot --mtime 1800000000",
      "--order shuffled --compress gzip --mtime 1900000000 --owner 33",
      "--order reversed --noise --compress zstd",
      "--order shuffled --compress xz --dot",
      "--order reversed --compress bz2",
  };
  for (const char* v : variants) {
    EXPECT_EQ(digest_of(canonical(make("tree", v), uncompressed())), reference) << v;
  }
}

TEST_F(LayerTest, GnuAndPaxEncodingsNormalizeToIdenticalBytes) {
  // GNU tar's format has no xattrs: compare trees without them.
  std::string pax = digest_of(canonical(make("tree", "--no-xattrs"), uncompressed()));
  EXPECT_EQ(
      digest_of(canonical(make("tree", "--no-xattrs --format gnu --order reversed --owner 1000"), uncompressed())),
      pax);
}

// Names are held until the layer is written, and a pax header makes a path of any length (3 MB of gzip held
// 2.9 GB of paths): a path or link target over 64 KiB is refused, naming the entry; 4,096 bytes pass.
TEST_F(LayerTest, PathsAndLinkTargetsOver64KiBAreRefused) {
  auto tar = [&](const std::string& name, const std::string& path, const std::string& target) {
    fs::path out = dir_ / name;
    auto r = run("python3 -c " +
                 sh("import io,sys,tarfile\n"
                    "t=tarfile.open(sys.argv[1],'w',format=tarfile.PAX_FORMAT)\n"
                    "i=tarfile.TarInfo(sys.argv[2])\n"
                    "if sys.argv[3]: i.type=tarfile.SYMTYPE; i.linkname=sys.argv[3]\n"
                    "t.addfile(i,io.BytesIO(b'')); t.close()\n") +
                 " " + sh(out.string()) + " " + sh(path) + " " + sh(target));
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return out;
  };
  std::string bytes;
  auto long_path = normalize(tar("path.tar", std::string(70000, 'p'), ""), bytes);
  ASSERT_FALSE(long_path.ok());
  EXPECT_TRUE(long_path.status().is_bad_input()) << long_path.status().to_string();
  EXPECT_NE(long_path.status().message().find("a path or link target of more than 65536 bytes"), std::string::npos);
  EXPECT_LT(long_path.status().message().size(), 400u) << "the message quotes the whole path";
  auto long_link = normalize(tar("link.tar", "l", std::string(70000, 't')), bytes);
  ASSERT_FALSE(long_link.ok());
  EXPECT_NE(long_link.status().message().find("more than 65536 bytes"), std::string::npos);
  std::string fine = std::string(100, 'd') + "/" + std::string(3995, 'f');
  EXPECT_TRUE(normalize(tar("fine.tar", fine, std::string(4000, 't')), bytes).ok());
}

// Owner names and xattrs are held with the paths until the layer is written, and a pax header gives each up to
// 1 MB (4,000 entries with a 500 KB xattr, 139 KB of zstd, held 2 GB): over 64 KiB each is refused, naming the
// entry; an xattr value of 64 KiB (the most Linux stores) passes.
TEST_F(LayerTest, OwnerNamesAndXattrsOver64KiBAreRefused) {
  auto tar = [&](const std::string& name, const std::string& record, size_t size) {
    fs::path out = dir_ / name;
    auto r = run("python3 -c " +
                 sh("import io,sys,tarfile\n"
                    "t=tarfile.open(sys.argv[1],'w',format=tarfile.PAX_FORMAT)\n"
                    "i=tarfile.TarInfo('f'); i.pax_headers={sys.argv[2]: 'v'*int(sys.argv[3])}\n"
                    "t.addfile(i,io.BytesIO(b'')); t.close()\n") +
                 " " + sh(out.string()) + " " + sh(record) + " " + std::to_string(size));
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return out;
  };
  std::string bytes;
  const std::pair<const char*, const char*> cases[] = {{"SCHILY.xattr.user.big", "an xattr value of more than 65536"},
                                                       {"uname", "an owner name of more than 65536"},
                                                       {"gname", "a group name of more than 65536"}};
  for (const auto& [record, why] : cases) {
    auto s = normalize(tar(std::string(record) + ".tar", record, 500000), bytes);
    ASSERT_FALSE(s.ok()) << record;
    EXPECT_TRUE(s.status().is_bad_input()) << s.status().to_string();
    EXPECT_NE(s.status().message().find(why), std::string::npos) << s.status().to_string();
    EXPECT_NE(s.status().message().find("entry 0"), std::string::npos) << s.status().to_string();
  }
  EXPECT_TRUE(normalize(tar("fine.tar", "SCHILY.xattr.user.fine", 65536), bytes).ok());
}

TEST_F(LayerTest, NormalizeIsIdempotent) {
  for (auto c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    LayerOptions o;
    o.compression = c;
    std::string once = canonical(make("tree", "--order shuffled --noise --owner 5"), o);
    std::string twice = canonical(save(once), o);
    EXPECT_EQ(digest_of(once), digest_of(twice)) << compression_name(c);
  }
}

TEST_F(LayerTest, SummaryCountsWhatChanged) {
  std::string bytes;
  auto s = normalize(make("tree", "--order reversed --noise --dot --owner 1000 --mtime 1800000000"), bytes);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->entries, 22u);
  EXPECT_GT(s->reordered, 0u);
  EXPECT_EQ(s->times_clamped, 21u);  // the hardlink takes its target's time
  EXPECT_EQ(s->owners_reset, 21u);   // every entry but the hardlink, which shares its target's owner
  EXPECT_GT(s->pax_records_dropped, 0u);
  EXPECT_GT(s->paths_cleaned, 0u);
  EXPECT_EQ(s->input_digest,
            sha256_digest(slurp(make("tree", "--order reversed --noise --dot --owner 1000 --mtime 1800000000"))));
  EXPECT_EQ(s->media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
}

TEST_F(LayerTest, CanonicalBytesArePinned) {
  // A change here means canonical form version 1 changed: bump kCanonicalFormVersion instead.
  std::string bytes;
  auto s = normalize(make("tree", "--order shuffled"), bytes, uncompressed());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->diff_id, "sha256:f822a1fc0a1c9e21ffd21f3a596c9fd1ddd4d6c07b34cb3dd84ee1b247cd2ef0");
}

TEST_F(LayerTest, InputHashIsOptionalAndChangesNoOutputByte) {
  for (const char* kind : {"--order shuffled", "--order shuffled --compress gzip"}) {  // read in place, and spooled
    fs::path input = make("tree", kind);
    LayerOptions without = uncompressed();
    without.hash_input = false;
    std::string with_bytes, without_bytes;
    auto with = normalize(input, with_bytes, uncompressed());
    auto skipped = normalize(input, without_bytes, without);
    ASSERT_TRUE(with.ok() && skipped.ok()) << kind;
    EXPECT_EQ(with->input_digest, sha256_digest(slurp(input))) << kind;
    EXPECT_EQ(skipped->input_digest, "") << kind;
    EXPECT_EQ(skipped->input_size, 0u) << kind;
    EXPECT_EQ(without_bytes, with_bytes) << kind;
    EXPECT_EQ(skipped->diff_id, with->diff_id) << kind;
  }
}

TEST_F(LayerTest, CompressedLayersHashTheCanonicalTarAndIgnoreTheThreadCount) {
  // In front of a compressor the canonical tar is hashed on the writing thread, not a thread of its own: the
  // diff_id must still be the digest of the uncompressed canonical bytes, over many 1 MiB blocks (the
  // "many" layer is ~15 MiB of headers), and no byte may depend on --threads.
  for (const std::string& args : {std::string("tree --order shuffled"), std::string("many --entries 30000")}) {
    const auto space = args.find(' ');
    fs::path input = make(args.substr(0, space), args.substr(space + 1));
    std::string plain;
    auto canonical_summary = normalize(input, plain, uncompressed());
    ASSERT_TRUE(canonical_summary.ok()) << args << ": " << canonical_summary.status().to_string();
    EXPECT_EQ(canonical_summary->diff_id, digest_of(plain)) << args;
    for (Compression c : {Compression::kGzip, Compression::kZstd}) {
      std::string first;
      for (int threads : {1, 2, 3}) {
        LayerOptions o;
        o.compression = c;
        o.threads = threads;
        std::string bytes;
        auto s = normalize(input, bytes, o);
        ASSERT_TRUE(s.ok()) << args << " " << compression_name(c) << ": " << s.status().to_string();
        EXPECT_EQ(s->diff_id, canonical_summary->diff_id)
            << args << " " << compression_name(c) << " threads " << threads;
        EXPECT_EQ(s->tar_size, plain.size()) << args << " " << compression_name(c);
        EXPECT_EQ(s->digest, digest_of(bytes)) << args << " " << compression_name(c);
        EXPECT_EQ(s->size, bytes.size()) << args << " " << compression_name(c);
        if (first.empty()) {
          first = bytes;
        } else {
          EXPECT_TRUE(bytes == first) << args << " " << compression_name(c) << ": bytes differ with " << threads
                                      << " threads";
        }
      }
    }
  }
}

// Lists every entry of a tar as bsdtar sees it: type, mode, owner, size, mtime, name, link.
std::string listing(const fs::path& tar) {
  return run("TZ=UTC LC_ALL=C.UTF-8 bsdtar -tvf " + sh(tar.string()) + " | sort").out;
}

TEST_F(LayerTest, ContentModesLinksAndSpecialFilesSurvive) {
  fs::path input = make("tree", "--order sorted");
  fs::path output = save(canonical(input, uncompressed()));
  std::string in_list = listing(input);
  std::string out_list = listing(output);
  EXPECT_EQ(in_list, out_list);
  // Extract both with GNU tar and with bsdtar and compare the trees byte for byte.
  for (const char* tool : {"tar --no-same-owner -xf", "LC_ALL=C.UTF-8 bsdtar --no-xattrs -xf"}) {
    ScratchDir a, b;
    auto ra = run(std::string("cd ") + sh(a.path()) + " && " + tool + " " + sh(input.string()) + " --exclude dev/null");
    auto rb =
        run(std::string("cd ") + sh(b.path()) + " && " + tool + " " + sh(output.string()) + " --exclude dev/null");
    ASSERT_EQ(ra.exit_code, 0) << ra.out;
    ASSERT_EQ(rb.exit_code, 0) << rb.out;
    auto diff = run("diff -r --no-dereference -x pipe " + sh(a.path()) + " " + sh(b.path()));
    EXPECT_EQ(diff.exit_code, 0) << tool << ": " << diff.out;
    auto modes = [](const fs::path& d) {
      return run("cd " + sh(d) + " && find . -printf '%y %m %n %p %l\\n' | LC_ALL=C sort").out;
    };
    EXPECT_EQ(modes(a.path()), modes(b.path())) << tool;
  }
}

TEST_F(LayerTest, XattrsAndNonUtf8NamesAreKeptByteExact) {
  fs::path output = save(canonical(make("tree", "--order reversed"), uncompressed()));
  auto r = run("python3 -c " +
               sh("import tarfile,sys\n"
                  "t=tarfile.open(sys.argv[1],encoding='utf-8',errors='surrogateescape')\n"
                  "m={x.name:x for x in t}\n"
                  "print(sorted(k for k in m['etc/cap'].pax_headers))\n"
                  "print(repr(m['etc/cap'].pax_headers['SCHILY.xattr.security.capability']))\n"
                  "print(m['caf\\udce9'].name.encode('utf-8','surrogateescape'))\n"
                  "print([n.encode('utf-8','surrogateescape') for n in m if n.startswith('na')])\n"
                  "print(m['usr/bin/tool2'].type, m['usr/bin/tool2'].linkname)\n") +
               " " + sh(output.string()));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("['SCHILY.xattr.security.capability', 'SCHILY.xattr.user.note']"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("'\\x01\\x00\\x00\\x02'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("b'caf\\xe9'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[b'na\\xc3\\xafve-\\xc3\\xbcn\\xc3\\xafc\\xc3\\xb6d\\xc3\\xa9']"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("b'1' usr/bin/tool"), std::string::npos) << r.out;
}

TEST_F(LayerTest, HardlinkGroupIsLedByItsFirstPathInSortedOrder) {
  // In the reversed variant tool2 holds the content and tool links to it; canonical form swaps them back.
  fs::path output = save(canonical(make("tree", "--order reversed"), uncompressed()));
  std::string list = listing(output);
  EXPECT_NE(list.find("usr/bin/tool2 link to usr/bin/tool"), std::string::npos) << list;
}

TEST_F(LayerTest, MtimeModes) {
  LayerOptions set = uncompressed();
  set.mtime = MtimeMode::kSet;
  set.source_date_epoch = 1000;
  std::string old_files = canonical(make("tree", "--mtime 500"), set);
  std::string new_files = canonical(make("tree", "--mtime 2000"), set);
  EXPECT_EQ(digest_of(old_files), digest_of(new_files));
  LayerOptions clamp = uncompressed();
  clamp.source_date_epoch = 1000;
  EXPECT_NE(digest_of(canonical(make("tree", "--mtime 500"), clamp)),
            digest_of(canonical(make("tree", "--mtime 2000"), clamp)));
  EXPECT_EQ(digest_of(canonical(make("tree", "--mtime 1000"), clamp)),
            digest_of(canonical(make("tree", "--mtime 2000"), clamp)));
}

TEST_F(LayerTest, KeepOwnersKeepsThem) {
  LayerOptions keep = uncompressed();
  keep.keep_owners = true;
  fs::path output = save(canonical(make("tree", "--owner 1000"), keep));
  EXPECT_NE(listing(output).find("builder builder"), std::string::npos);
}

TEST_F(LayerTest, DuplicatePathsLastOneWins) {
  std::string bytes;
  auto s = normalize(make("duplicates"), bytes, uncompressed());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->duplicates_dropped, 1u);
  EXPECT_EQ(s->entries, 2u);
  auto r = run("bsdtar -xOf " + sh(save(bytes).string()) + " same");
  EXPECT_EQ(r.out, "second");
}

TEST_F(LayerTest, HundredThousandEntries) {
  std::string bytes;
  auto s = normalize(make("many"), bytes, uncompressed());
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->entries, 100000u);
  auto r = run("bsdtar -tf " + sh(save(bytes).string()) + " | head -2");
  EXPECT_EQ(r.out, "d000/f000000\nd000/f000100\n");
}

struct BadCase {
  const char* kind;
  const char* args;
  const char* expected;  // a fragment of the error message
};

TEST_F(LayerTest, HostileAndBrokenInputIsRefusedWithAClearError) {
  const BadCase cases[] = {
      {"absolute", "", "\"/etc/passwd\" is absolute"},
      {"dotdot", "", "has a \"..\" component"},
      {"hardlink-escape", "", "has a \"..\" component"},
      {"hardlink-missing", "", "points to \"nowhere\", which is not in the layer"},
  };
  for (const auto& c : cases) {
    std::string bytes;
    auto s = normalize(make(c.kind, c.args), bytes);
    ASSERT_FALSE(s.ok()) << c.kind;
    EXPECT_TRUE(s.status().is_bad_input()) << c.kind;
    EXPECT_NE(s.status().message().find(c.expected), std::string::npos) << c.kind << ": " << s.status().message();
    EXPECT_TRUE(bytes.empty()) << c.kind << ": nothing may be written on failure";
  }
}

fs::path truncated(const fs::path& in, size_t keep, const fs::path& out) {
  std::string bytes = slurp(in);
  quorate::testing::spit(out, bytes.substr(0, std::min(keep, bytes.size())));
  return out;
}

TEST_F(LayerTest, TruncatedArchivesAreRefused) {
  for (const char* compress : {"none", "gzip", "zstd", "xz"}) {
    fs::path full = make("tree", std::string("--compress ") + compress);
    size_t size = fs::file_size(full);
    std::string bytes;
    auto s = normalize(truncated(full, size / 2, dir_ / "cut"), bytes);
    ASSERT_FALSE(s.ok()) << compress;
    EXPECT_TRUE(s.status().is_bad_input()) << compress << ": " << s.status().to_string();
    EXPECT_TRUE(bytes.empty());
  }
}

TEST_F(LayerTest, CorruptHeaderIsRefused) {
  std::string bytes = slurp(make("duplicates", "--format ustar"));
  bytes[1024 + 20] ^= 0x55;  // inside the name of the second entry's header: its checksum fails
  fs::path bad = save(bytes);
  std::string out;
  auto s = normalize(bad, out);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().is_bad_input()) << s.status().to_string();
}

TEST_F(LayerTest, NotATarIsRefused) {
  fs::path junk = save(std::string(4096, 'j'));
  std::string out;
  auto s = normalize(junk, out);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("not a tar layer"), std::string::npos) << s.status().message();
  EXPECT_TRUE(normalize(dir_ / "absent.tar", out).status().is_not_found());
}

TEST_F(LayerTest, DecompressionBombIsStoppedAtTheLimit) {
  fs::path bomb = make("bomb", "--compress gzip");
  EXPECT_LT(fs::file_size(bomb), 1u << 20);
  LayerOptions o;
  o.max_expanded_bytes = 16 << 20;
  std::string out;
  auto s = normalize(bomb, out, o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("exceeds the limit of 16777216 bytes"), std::string::npos)
      << s.status().message();
}

TEST_F(LayerTest, DevicesAndFifosAreKept) {
  fs::path output = save(canonical(make("socket-free-devices"), uncompressed()));
  std::string list = listing(output);
  EXPECT_NE(list.find("brw-r--r--"), std::string::npos) << list;
  EXPECT_NE(list.find("prw-r--r--"), std::string::npos) << list;
}

TEST(CanonicalPath, CleansAndRefuses) {
  EXPECT_EQ(canonical_path("./a//b/./c/").value(), "a/b/c");
  EXPECT_EQ(canonical_path(".").value(), "");
  EXPECT_TRUE(canonical_path("/a").status().is_bad_input());
  EXPECT_TRUE(canonical_path("a/../b").status().is_bad_input());
  EXPECT_TRUE(canonical_path("..").status().is_bad_input());
  EXPECT_EQ(canonical_path("a..b/..c").value(), "a..b/..c");
}

TEST(CanonicalLayerWriter, AnyAddOrderGivesTheSameBytes) {
  auto build = [](bool reversed) {
    LayerOptions o;
    o.compression = Compression::kNone;
    o.source_date_epoch = kEpoch;
    CanonicalLayerWriter w(o);
    std::vector<std::function<Status()>> adds = {
        [&] {
          Entry e;
          e.path = "app";
          e.type = EntryType::kDirectory;
          e.mode = 0755;
          return w.add(e);
        },
        [&] {
          Entry e;
          e.path = "app/run";
          e.mode = 0755;
          e.mtime = 1;
          return w.add_bytes(e, "#!/bin/sh\n");
        },
        [&] {
          Entry e;
          e.path = "app/link";
          e.type = EntryType::kHardlink;
          e.link_target = "app/run";
          return w.add(e);
        },
        [&] {
          Entry e;
          e.path = "app/sym";
          e.type = EntryType::kSymlink;
          e.link_target = "run";
          e.mode = 0777;
          return w.add(e);
        },
    };
    if (reversed) std::reverse(adds.begin(), adds.end());
    for (auto& add : adds) EXPECT_TRUE(add().ok());
    StringSink sink;
    auto s = w.write(sink);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    return sink.take();
  };
  std::string a = build(false);
  EXPECT_EQ(digest_of(a), digest_of(build(true)));
  ScratchDir dir;
  quorate::testing::spit(dir / "l.tar", a);
  EXPECT_EQ(run("bsdtar -tf " + sh((dir / "l.tar").string())).out, "app/\napp/link\napp/run\napp/sym\n");
}

TEST(CanonicalLayerWriter, HardlinkToMissingTargetFailsAtWrite) {
  CanonicalLayerWriter w(LayerOptions{});
  Entry e;
  e.path = "x";
  e.type = EntryType::kHardlink;
  e.link_target = "missing";
  ASSERT_TRUE(w.add(e).ok());
  StringSink sink;
  EXPECT_TRUE(w.write(sink).status().is_bad_input());
}

}  // namespace
}  // namespace quorate::normalize

namespace quorate::normalize {
namespace {

TEST(TarHeader, SizesOver8GiBGoInAPaxRecord) {
  Entry e;
  e.path = "big";
  e.size = uint64_t{9} << 30;
  std::string h = detail::tar_header(e);
  ASSERT_EQ(h.size(), 3 * detail::kBlockSize);  // pax header, its records, the ustar header
  EXPECT_NE(h.find("19 size=9663676416\n"), std::string::npos);
  EXPECT_EQ(h.substr(2 * 512 + 124, 12), std::string("00000000000\0", 12));
}

TEST_F(LayerTest, TruncatedHugeFileIsRefused) {
  // A header that announces a 9 GiB file, followed by 1 KiB of data: truncated, not an 8 GiB spool.
  Entry e;
  e.path = "big";
  e.size = uint64_t{9} << 30;
  fs::path p = save(detail::tar_header(e) + std::string(1024, 'x'));
  std::string out;
  auto s = normalize(p, out);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().is_bad_input()) << s.status().to_string();
}

}  // namespace
}  // namespace quorate::normalize
