// Importing oci-archives and docker-archives into the image store: byte for byte, the digest an archive
// gives, hostile member paths refused with nothing stored.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "imagestore/store_test_util.h"
#include "quorate/imagestore/image_store.h"

namespace quorate::imagestore {
namespace {

using quorate::testing::run;
using quorate::testing::ScratchDir;
using quorate::testing::sh;
using quorate::testing::slurp;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

class ArchiveImport : public ::testing::Test {
 protected:
  void SetUp() override { digest_ = quorate::testing::make_busybox_image(scratch_ / "busybox"); }
  ImageStore store() { return ImageStore::open(scratch_ / "store").value(); }
  // A docker-archive from tests/cli/make_image.py.
  fs::path docker_archive(const std::string& args) {
    fs::path out = scratch_ / ("docker-" + std::to_string(n_++) + ".tar");
    auto r = run("python3 " + sh((quorate::testing::source_dir() / "tests/cli/make_image.py").string()) + " " +
                 sh(out.string()) + " " + args);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return out;
  }
  ScratchDir scratch_;
  std::string digest_;
  int n_ = 0;
};

TEST_F(ArchiveImport, OciArchiveKeepsTheLayoutsDigest) {
  auto tar = scratch_ / "busybox.tar";
  ASSERT_EQ(run("tar -C " + sh((scratch_ / "busybox").string()) + " -cf " + sh(tar.string()) + " .").exit_code, 0);
  auto s = store();
  auto imported = s.import(tar);
  ASSERT_TRUE(imported.ok()) << imported.status().to_string();
  ASSERT_EQ(imported->size(), 1u);
  EXPECT_EQ((*imported)[0].digest, digest_);
  auto v = s.verify(digest_);
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  EXPECT_EQ(quorate::testing::names_in(scratch_ / "store/tmp").size(), 0u) << "the extracted archive was left behind";
}

TEST_F(ArchiveImport, DockerArchiveGetsAManifestOverItsOwnBytes) {
  for (const char* layout : {"legacy", "blobs"}) {
    auto tar = docker_archive(std::string("--layout ") + layout + " --tag example/hello:v1");
    auto s = store();
    auto imported = s.import(tar);
    ASSERT_TRUE(imported.ok()) << layout << ": " << imported.status().to_string();
    ASSERT_EQ(imported->size(), 1u);
    EXPECT_EQ((*imported)[0].ref_name, "example/hello:v1");
    auto v = s.verify((*imported)[0].digest);
    ASSERT_TRUE(v.ok()) << v.status().to_string();
    // The manifest is canonical JSON over the archive's config and layer bytes, never re-normalized.
    auto manifest = nlohmann::json::parse(slurp(scratch_ / "store/blobs/sha256" / digest_hex((*imported)[0].digest)));
    EXPECT_EQ(canonical_json(manifest, "manifest").value(),
              slurp(scratch_ / "store/blobs/sha256" / digest_hex((*imported)[0].digest)));
    EXPECT_EQ(manifest["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar");
    auto listing = run("tar -tf " + sh(v->layers[0].blob.string())).out;
    EXPECT_THAT(listing, HasSubstr("etc/hello.conf"));
    auto again = s.import(tar);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ((*again)[0].digest, (*imported)[0].digest) << "one archive, one digest";
    auto root = s.rootfs(*v);
    ASSERT_TRUE(root.ok()) << root.status().to_string();
  }
}

TEST_F(ArchiveImport, TwoDockerLayoutsOfOneImageGiveOneDigest) {
  auto legacy = docker_archive("--layout legacy");
  // The same config and layer bytes, renamed as docker save of Docker 25+ names them (blobs/sha256/<hex>).
  auto blobs = scratch_ / "renamed.tar";
  auto made =
      run("python3 -c " +
          sh("import hashlib,io,json,sys,tarfile\n"
             "src=tarfile.open(sys.argv[1]); data={m.name: src.extractfile(m).read() for m in src if m.isfile()}\n"
             "man=json.loads(data.pop('manifest.json'))\n"
             "name=lambda n: 'blobs/sha256/'+hashlib.sha256(data[n]).hexdigest()\n"
             "out={name(n): b for n, b in data.items()}\n"
             "man[0]['Config']=name(man[0]['Config']); man[0]['Layers']=[name(n) for n in man[0]['Layers']]\n"
             "out['manifest.json']=json.dumps(man).encode()\n"
             "t=tarfile.open(sys.argv[2],'w')\n"
             "for n, b in sorted(out.items()):\n"
             "  i=tarfile.TarInfo(n); i.size=len(b); t.addfile(i, io.BytesIO(b))\n"
             "t.close()\n") +
          " " + sh(legacy.string()) + " " + sh(blobs.string()));
  ASSERT_EQ(made.exit_code, 0) << made.out;
  auto a = store().import(legacy);
  auto b = store().import(blobs);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EXPECT_EQ((*a)[0].digest, (*b)[0].digest);
}

TEST_F(ArchiveImport, CorruptDockerLayerIsRefusedNamingIt) {
  auto r = store().import(docker_archive("--damage corrupt-layer"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is_bad_input()) << r.status().to_string();
  EXPECT_THAT(r.status().message(), HasSubstr("layer"));
  EXPECT_TRUE(store().list()->empty());
}

TEST_F(ArchiveImport, HostileArchivePathsAreRefusedWithNothingStored) {
  auto hostile_docker = docker_archive("--damage hostile-path");
  // An oci-archive with a member that climbs out of the extraction directory.
  auto hostile_oci = scratch_ / "hostile-oci.tar";
  auto made = run("python3 -c " +
                  sh("import io,sys,tarfile\n"
                     "t=tarfile.open(sys.argv[1],'w')\n"
                     "def add(n,b):\n"
                     "  i=tarfile.TarInfo(n); i.size=len(b); t.addfile(i,io.BytesIO(b))\n"
                     "add('oci-layout',b'{\"imageLayoutVersion\":\"1.0.0\"}')\n"
                     "add('index.json',b'{\"schemaVersion\":2,\"manifests\":[]}')\n"
                     "add('../escaped',b'x')\n"
                     "t.close()\n") +
                  " " + sh(hostile_oci.string()));
  ASSERT_EQ(made.exit_code, 0) << made.out;
  for (const auto& tar : {hostile_docker, hostile_oci}) {
    auto r = store().import(tar);
    ASSERT_FALSE(r.ok()) << tar;
    EXPECT_TRUE(r.status().is_bad_input()) << r.status().to_string();
    EXPECT_THAT(r.status().message(), HasSubstr(".."));
  }
  EXPECT_FALSE(fs::exists(scratch_ / "store/escaped"));
  EXPECT_FALSE(fs::exists(scratch_ / "escaped"));
  EXPECT_TRUE(store().list()->empty());
  EXPECT_EQ(quorate::testing::names_in(scratch_ / "store/blobs/sha256").size(), 0u);
  EXPECT_EQ(quorate::testing::names_in(scratch_ / "store/tmp").size(), 0u);
}

// A sparse member's map may place its data anywhere: four bytes at 1 TiB made a 1 TiB file from a 7 KB archive,
// which the import then copied into the store at disk speed. Data past a member's declared size is refused, and
// so are more members than an image archive has.
TEST_F(ArchiveImport, SparseMembersAndMemberFloodsAreRefused) {
  auto sparse = scratch_ / "sparse.tar";
  auto many = scratch_ / "many.tar";
  auto made = run("python3 -c " +
                  sh("import io,sys,tarfile\n"
                     "t=tarfile.open(sys.argv[1],'w',format=tarfile.PAX_FORMAT)\n"
                     "def add(n,b,pax={}):\n"
                     "  i=tarfile.TarInfo(n); i.size=len(b); i.pax_headers=pax; t.addfile(i,io.BytesIO(b))\n"
                     "add('oci-layout',b'{\"imageLayoutVersion\":\"1.0.0\"}')\n"
                     "add('index.json',b'{\"schemaVersion\":2,\"manifests\":[]}')\n"
                     "add('blobs/sha256/'+'a'*64,b'ABCD',{'GNU.sparse.map':'1099511627776,4','GNU.sparse.size':'4'})\n"
                     "t.close()\n"
                     "t=tarfile.open(sys.argv[2],'w')\n"
                     "add('oci-layout',b'{\"imageLayoutVersion\":\"1.0.0\"}')\n"
                     "add('index.json',b'{\"schemaVersion\":2,\"manifests\":[]}')\n"
                     "for n in range(10001): add('d/%d' % n, b'')\n"
                     "t.close()\n") +
                  " " + sh(sparse.string()) + " " + sh(many.string()));
  ASSERT_EQ(made.exit_code, 0) << made.out;
  auto r = store().import(sparse);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is_bad_input()) << r.status().to_string();
  EXPECT_THAT(r.status().message(), HasSubstr("has data past its declared size of 4 bytes"));
  r = store().import(many);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("more than 10000 members"));
  EXPECT_TRUE(store().list()->empty());
}

// A member whose pax header libarchive drops (one malformed record) would be taken under its ustar name; the
// archive is refused instead, as normalize refuses such a layer (normalize/tar_reader.h).
TEST_F(ArchiveImport, AMemberWhosePaxHeaderLibarchiveDropsIsRefused) {
  auto tar = scratch_ / "dropped.tar";
  auto made = run("python3 -c " +
                  sh("import io,os,sys,tarfile\n"
                     "b=io.BytesIO(); t=tarfile.open(fileobj=b,mode='w',format=tarfile.PAX_FORMAT)\n"
                     "t.add(sys.argv[1],arcname='.')\n"
                     "i=tarfile.TarInfo('innocent'); i.size=1; i.pax_headers={'comment':'x','path':'index.json'}\n"
                     "t.addfile(i,io.BytesIO(b'x')); t.close()\n"
                     "raw=b.getvalue(); assert raw.count(b'13 comment=x\\n')==1\n"
                     "open(sys.argv[2],'wb').write(raw.replace(b'13 comment=x\\n',b'99 comment=x\\n'))\n") +
                  " " + sh((scratch_ / "busybox").string()) + " " + sh(tar.string()));
  ASSERT_EQ(made.exit_code, 0) << made.out;
  auto r = store().import(tar);
  ASSERT_FALSE(r.ok()) << "imported";
  EXPECT_TRUE(r.status().is_bad_input()) << r.status().to_string();
  EXPECT_THAT(r.status().message(), HasSubstr("Ignoring malformed pax extended attribute"));
  EXPECT_TRUE(store().list()->empty());
}

// A docker-archive whose manifest.json names one large config many times: each entry's config was held at once
// (a 16 KB archive, 4.8 GB). Together they may weigh 64 MiB.
TEST_F(ArchiveImport, ConfigsListedOverAndOverAreRefused) {
  auto tar = scratch_ / "many-configs.tar";
  auto made = run("python3 -c " +
                  sh("import io,json,sys,tarfile\n"
                     "t=tarfile.open(sys.argv[1],'w')\n"
                     "def add(n,b):\n"
                     "  i=tarfile.TarInfo(n); i.size=len(b); t.addfile(i,io.BytesIO(b))\n"
                     "cfg=b'{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
                     "\"diff_ids\":[]},\"pad\":\"'+b'A'*15000000+b'\"}'\n"
                     "add('manifest.json',json.dumps([{'Config':'cfg.json','Layers':[]}]*5).encode())\n"
                     "add('cfg.json',cfg)\n"
                     "t.close()\n") +
                  " " + sh(tar.string()));
  ASSERT_EQ(made.exit_code, 0) << made.out;
  auto r = store().import(tar);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is_bad_input()) << r.status().to_string();
  EXPECT_THAT(r.status().message(), HasSubstr("the configs of its first 5 entries pass 67108864 bytes together"));
}

// A docker-archive's manifest.json may list one image many times (it is read up to 16 MiB, about 100,000
// entries): each entry hashed the layer already in the store again. 128 entries naming one 16 MiB layer took
// 1.2 s against 0.03 s for one entry; with an 8 GiB layer and 100,000 entries, 800 TB of hashing. An import
// hashes each blob once.
TEST_F(ArchiveImport, ALayerListedByManyEntriesIsHashedOnce) {
  auto read_by_import = [&](size_t entries) {
    auto tar = scratch_ / ("entries-" + std::to_string(entries) + ".tar");
    auto made = run("python3 -c " +
                    sh("import hashlib,io,json,sys,tarfile\n"
                       "t=tarfile.open(sys.argv[1],'w')\n"
                       "def add(n,b):\n"
                       "  i=tarfile.TarInfo(n); i.size=len(b); t.addfile(i,io.BytesIO(b))\n"
                       "layer=bytes(16<<20)\n"
                       "cfg=json.dumps({'architecture':'amd64','os':'linux','rootfs':{'type':'layers',"
                       "'diff_ids':['sha256:'+hashlib.sha256(layer).hexdigest()]}}).encode()\n"
                       "add('manifest.json',json.dumps([{'Config':'cfg.json','Layers':['l/layer.tar']}]*" +
                       std::to_string(entries) +
                       ").encode())\n"
                       "add('cfg.json',cfg)\n"
                       "add('l/layer.tar',layer)\n"
                       "t.close()\n") +
                    " " + sh(tar.string()));
    EXPECT_EQ(made.exit_code, 0) << made.out;
    auto s = ImageStore::open(scratch_ / ("store-" + std::to_string(entries))).value();
    const uint64_t before = quorate::testing::bytes_read_by_this_process();
    auto r = s.import(tar);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return quorate::testing::bytes_read_by_this_process() - before;
  };
  const uint64_t once = read_by_import(1);
  const uint64_t many = read_by_import(128);
  EXPECT_GE(once, uint64_t{16} << 20);
  EXPECT_LT(many, once + (uint64_t{4} << 20)) << "one entry: " << once << " bytes read; 128: " << many;
}

TEST_F(ArchiveImport, CliImportsAnArchiveAndRefusesANonImage) {
  auto bin = quorate::testing::quorate_bin();
  auto tar = docker_archive("--layout blobs");
  auto store_dir = sh((scratch_ / "cli-store").string());
  auto r = run(bin + " image import " + sh(tar.string()) + " --image-store " + store_dir);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("sha256:"));
  quorate::testing::spit(scratch_ / "not-an-image", "hello");
  auto bad = run(bin + " image import " + sh((scratch_ / "not-an-image").string()) + " --image-store " + store_dir);
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_THAT(bad.out, HasSubstr("not an OCI layout directory, an oci-archive or a docker-archive"));
}

}  // namespace
}  // namespace quorate::imagestore
