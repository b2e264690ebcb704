// Compressors: output decompresses to the input, does not depend on threads, and is pinned.
#include "quorate/normalize/compress.h"

#include <gtest/gtest.h>

#include <random>

#include "quorate/core/sha256.h"
#include "tests/support/test_util.h"

namespace quorate::normalize {
namespace {
using quorate::testing::run;
using quorate::testing::ScratchDir;
using quorate::testing::sh;

// A few MiB of text, runs and noise, from a fixed seed (std::mt19937 is specified bit for bit).
std::string sample(size_t size) {
  std::mt19937 rng(42);
  std::string out;
  while (out.size() < size) {
    switch (rng() % 3) {
      case 0:
        out += "line " + std::to_string(rng() % 1000) + " of a text file\n";
        break;
      case 1:
        out.append(rng() % 4096, static_cast<char>('a' + rng() % 26));
        break;
      default:
        for (int i = 0; i < 512; ++i) out.push_back(static_cast<char>(rng()));
    }
  }
  out.resize(size);
  return out;
}

std::string compress(Compression c, const std::string& input, int threads, int level = -1) {
  StringSink out;
  auto sink = make_compressor(c, level, threads, &out);
  // Uneven writes: block boundaries must not depend on how the caller slices its input.
  size_t pos = 0, step = 1;
  while (pos < input.size()) {
    size_t n = std::min(step, input.size() - pos);
    EXPECT_TRUE(sink->write(std::string_view(input).substr(pos, n)).ok());
    pos += n;
    step = step * 3 + 7;
  }
  EXPECT_TRUE(sink->finish().ok());
  return out.take();
}

std::string decompress(const char* tool, const std::string& bytes) {
  ScratchDir dir;
  quorate::testing::spit(dir / "in", bytes);
  auto r = run(std::string(tool) + " -dc < " + sh((dir / "in").string()) + " > " + sh((dir / "out").string()));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return quorate::testing::slurp(dir / "out");
}

TEST(Gzip, RoundTripsThroughGzip) {
  std::string input = sample(3 << 20);
  std::string gz = compress(Compression::kGzip, input, 2);
  EXPECT_LT(gz.size(), input.size());
  EXPECT_EQ(sha256_digest(decompress("gzip", gz)), sha256_digest(input));
}

TEST(Gzip, HeaderHasNoNameNoTimeAndUnknownOs) {
  std::string gz = compress(Compression::kGzip, "hello", 1);
  EXPECT_EQ(gz.substr(0, 10), std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10));
}

TEST(Gzip, OutputDoesNotDependOnThreads) {
  std::string input = sample(3 << 20);
  std::string one = compress(Compression::kGzip, input, 1);
  EXPECT_EQ(sha256_digest(compress(Compression::kGzip, input, 2)), sha256_digest(one));
  EXPECT_EQ(sha256_digest(compress(Compression::kGzip, input, 4)), sha256_digest(one));
}

TEST(Gzip, BlockBoundariesRoundTrip) {
  // Input ending exactly on a 128 KiB block boundary must still end the stream with its last block.
  for (size_t size : {size_t{1}, size_t{128} << 10, (size_t{128} << 10) + 1, size_t{256} << 10}) {
    std::string input = sample(size);
    std::string one = compress(Compression::kGzip, input, 1);
    EXPECT_EQ(decompress("gzip", one), input) << size;
    EXPECT_EQ(compress(Compression::kGzip, input, 3), one) << size;
  }
}

TEST(Gzip, TrailerHoldsCrcAndSize) {
  std::string gz = compress(Compression::kGzip, "hello", 1);
  // crc32("hello") = 0x3610a686, ISIZE = 5, both little endian.
  EXPECT_EQ(gz.substr(gz.size() - 8), std::string("\x86\xa6\x10\x36\x05\x00\x00\x00", 8));
}

// A downstream that refuses every write.
class FailingSink final : public Sink {
 public:
  Status write(std::span<const uint8_t>) override { return Status::io("disk full"); }
  using Sink::write;
};

TEST(Compressors, DownstreamErrorsAreReturned) {
  for (auto c : {Compression::kGzip, Compression::kZstd, Compression::kNone}) {
    FailingSink out;
    auto sink = make_compressor(c, -1, 2, &out);
    std::string input = sample(1 << 20);
    Status s = sink->write(input);
    if (s.ok()) s = sink->finish();
    EXPECT_FALSE(s.ok()) << compression_name(c);
  }
}

TEST(Zstd, RoundTripsAndDoesNotDependOnThreads) {
  std::string input = sample(3 << 20);
  std::string one = compress(Compression::kZstd, input, 1);
  EXPECT_EQ(sha256_digest(decompress("zstd -q", one)), sha256_digest(input));
  EXPECT_EQ(sha256_digest(compress(Compression::kZstd, input, 2)), sha256_digest(one));
  EXPECT_EQ(sha256_digest(compress(Compression::kZstd, input, 4)), sha256_digest(one));
}

TEST(Compressors, EmptyInputIsAValidStream) {
  EXPECT_EQ(decompress("gzip", compress(Compression::kGzip, "", 2)), "");
  EXPECT_EQ(decompress("zstd -q", compress(Compression::kZstd, "", 2)), "");
  EXPECT_EQ(compress(Compression::kNone, "abc", 2), "abc");
}

TEST(Compressors, OutputBytesArePinned) {
  // A change here changes every layer digest: record it as a new canonical form or compressor id.
  std::string input = sample(1 << 20);
  EXPECT_EQ(sha256_digest(compress(Compression::kGzip, input, 2)),
            "sha256:18a874b180a2b88f2b42805385fa1af23e926ecce2aad8ab2ae3b5e25f7d97bb");
  EXPECT_EQ(sha256_digest(compress(Compression::kZstd, input, 2)),
            "sha256:b2b138f47cb3c5fe570384356f2ed7177f839052707703bfe7506bbe2cbcda7a");
}

TEST(Compressors, IdsNameLibraryVersionAndLevel) {
  EXPECT_EQ(compressor_id(Compression::kGzip, -1).rfind("gzip zlib ", 0), 0u);
  EXPECT_NE(compressor_id(Compression::kGzip, 9).find(" level 9"), std::string::npos);
  EXPECT_EQ(compressor_id(Compression::kZstd, -1).rfind("zstd libzstd ", 0), 0u);
  EXPECT_EQ(compressor_id(Compression::kNone, -1), "none");
  EXPECT_EQ(layer_media_type(Compression::kZstd), "application/vnd.oci.image.layer.v1.tar+zstd");
}

// layer_blob_digests reads a blob once for both digests: the digest as stored covers every byte (also bytes
// after the compressed stream), a blob read to its end that is not its digest is a mismatch whatever it
// decompresses to, and a bound that ends the read is reported as the bound, not as a mismatch of the part read.
TEST(LayerBlobDigests, BothDigestsFromOneReadAndEachErrorNamedForWhatItIs) {
  ScratchDir dir;
  std::string tar(4 << 20, '\0');  // noise: the blob is larger than one read, so a bound ends the read early
  std::mt19937 rng(7);
  for (auto& c : tar) c = static_cast<char>(rng());
  const std::string gz = compress(Compression::kGzip, tar, 1);
  auto blob = [&](const std::string& name, const std::string& bytes) {
    quorate::testing::spit(dir / name, bytes);
    return dir / name;
  };
  auto both = layer_blob_digests(blob("ok.gz", gz), sha256_digest(gz), UINT64_MAX);
  ASSERT_TRUE(both.ok()) << both.status().to_string();
  EXPECT_EQ(both->digest, sha256_digest(gz));
  EXPECT_EQ(both->diff_id, sha256_digest(tar));
  EXPECT_EQ(both->expanded, tar.size());

  const std::string trailing = gz + std::string(4096, '\0');
  auto padded = layer_blob_digests(blob("padded.gz", trailing), sha256_digest(trailing), UINT64_MAX);
  ASSERT_TRUE(padded.ok()) << padded.status().to_string();
  EXPECT_EQ(padded->digest, sha256_digest(trailing));

  std::string corrupt = gz;
  corrupt[corrupt.size() / 2] ^= 0x55;
  auto bad = layer_blob_digests(blob("corrupt.gz", corrupt), sha256_digest(gz), UINT64_MAX);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("digest mismatch: blob " + (dir / "corrupt.gz").string() + " holds " +
                                        sha256_digest(corrupt) + ", not the pinned " + sha256_digest(gz)),
            std::string::npos)
      << bad.status().to_string();

  auto bounded = layer_blob_digests(dir / "ok.gz", sha256_digest(gz), 1 << 20);
  ASSERT_FALSE(bounded.ok());
  EXPECT_NE(bounded.status().message().find("expands past the limit of 1048576 bytes"), std::string::npos)
      << bounded.status().to_string();
  ExpandedTotal together(1 << 20, "the image's layers");
  auto total = layer_blob_digests(dir / "ok.gz", sha256_digest(gz), UINT64_MAX, &together);
  ASSERT_FALSE(total.ok());
  EXPECT_NE(total.status().message().find("the image's layers expand to more than 1048576 bytes together"),
            std::string::npos)
      << total.status().to_string();
}

}  // namespace
}  // namespace quorate::normalize
