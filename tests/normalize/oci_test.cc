// OCI layout writer: canonical JSON, blobs named by digest, index.json with its ref name, the oci-layout file.
#include "quorate/normalize/oci.h"

#include <gtest/gtest.h>

#include <fstream>

#include "quorate/core/sha256.h"
#include "tests/support/test_util.h"

namespace quorate::normalize {
namespace {
namespace fs = std::filesystem;
using quorate::testing::ScratchDir;
using quorate::testing::slurp;

TEST(OciLayoutWriterTest, WritesOciLayoutFileAndBlobsByDigest) {
  ScratchDir dir;
  auto w = OciLayoutWriter::open(dir.path());
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  EXPECT_EQ(slurp(dir / "oci-layout"), R"({"imageLayoutVersion":"1.0.0"})");
  auto d = w->add_blob(kMediaTypeConfig, "hello");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->digest, sha256_digest("hello"));
  EXPECT_EQ(d->size, 5u);
  EXPECT_EQ(d->media_type, kMediaTypeConfig);
  EXPECT_EQ(slurp(dir.path() / "blobs/sha256" / digest_hex(d->digest)), "hello");
}

TEST(OciLayoutWriterTest, StreamedBlobAppearsOnlyOnCommit) {
  ScratchDir dir;
  auto w = OciLayoutWriter::open(dir.path());
  ASSERT_TRUE(w.ok());
  {
    auto b = w->begin_blob();
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE((*b)->Sink::write("abandoned").ok());
  }
  EXPECT_TRUE(fs::is_empty(dir.path() / "blobs/sha256"));  // an uncommitted blob leaves nothing behind
  auto b = w->begin_blob();
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE((*b)->Sink::write("part1,").ok());
  ASSERT_TRUE((*b)->Sink::write("part2").ok());
  auto d = (*b)->commit("application/octet-stream");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->digest, sha256_digest("part1,part2"));
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path() / "blobs/sha256")) {
    ++files;
    EXPECT_EQ(e.path().filename().string(), digest_hex(d->digest));
  }
  EXPECT_EQ(files, 1);
}

// A file becomes a blob a buffer at a time (a base image's layer, up to 16 GiB, was read whole into memory):
// the same blob add_blob makes of its bytes, and nothing at all past `max_bytes`.
TEST(OciLayoutWriterTest, AFileIsStreamedIntoABlobUpToItsLimit) {
  ScratchDir dir;
  auto w = OciLayoutWriter::open(dir.path() / "layout");
  ASSERT_FALSE(w.ok());  // the layout directory must exist
  fs::create_directories(dir.path() / "layout");
  w = OciLayoutWriter::open(dir.path() / "layout");
  ASSERT_TRUE(w.ok());
  std::string bytes(3 << 20, 'x');  // three buffers and a bit
  bytes += "tail";
  std::ofstream(dir.path() / "file", std::ios::binary) << bytes;
  auto d = w->add_blob_file(kMediaTypeConfig, dir.path() / "file", bytes.size());
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->digest, sha256_digest(bytes));
  EXPECT_EQ(d->size, bytes.size());
  EXPECT_EQ(slurp(dir.path() / "layout/blobs/sha256" / digest_hex(d->digest)), bytes);
  fs::remove(dir.path() / "layout/blobs/sha256" / digest_hex(d->digest));
  auto over = w->add_blob_file(kMediaTypeConfig, dir.path() / "file", bytes.size() - 1);
  ASSERT_FALSE(over.ok());
  EXPECT_TRUE(over.status().is_bad_input()) << over.status().to_string();
  EXPECT_NE(over.status().message().find("is larger than the limit of " + std::to_string(bytes.size() - 1)),
            std::string::npos);
  EXPECT_TRUE(fs::is_empty(dir.path() / "layout/blobs/sha256"));
  EXPECT_TRUE(w->add_blob_file(kMediaTypeConfig, dir.path() / "missing", 1).status().is_not_found());
}

TEST(OciLayoutWriterTest, IndexCarriesRefNameAnnotation) {
  ScratchDir dir;
  auto w = OciLayoutWriter::open(dir.path());
  ASSERT_TRUE(w.ok());
  Descriptor m{kMediaTypeManifest, sha256_digest("m"), 1, {}};
  ASSERT_TRUE(w->write_index(m, "v1").ok());
  EXPECT_EQ(slurp(dir / "index.json"),
            "{\"manifests\":[{\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"},\"digest\":\"" + m.digest +
                "\",\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"size\":1}],"
                "\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"schemaVersion\":2}");
  ASSERT_TRUE(w->write_index(m, "").ok());
  EXPECT_EQ(slurp(dir / "index.json").find("annotations"), std::string::npos);
}

TEST(MakeManifestTest, IsCanonicalAndPinned) {
  Descriptor config{kMediaTypeConfig, sha256_digest("config"), 6, {}};
  Descriptor layer{"application/vnd.oci.image.layer.v1.tar+gzip", sha256_digest("layer"), 5, {}};
  std::string m = make_manifest(config, {layer}).value();
  EXPECT_EQ(m.rfind("{\"config\":{\"digest\":\"sha256:", 0), 0u) << m;
  EXPECT_NE(m.find("\"schemaVersion\":2}"), std::string::npos);
  EXPECT_EQ(sha256_digest(m), "sha256:ab85512e9a8845524a9495a2c2e016330ca370aa6cf5695f8835008f79b887d7") << m;
}

}  // namespace
}  // namespace quorate::normalize
