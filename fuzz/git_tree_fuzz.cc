// Fuzzes the Git tree checkout (issue 11, item 1): each input is the raw body of a tree object whose entries
// may name anything, nested trees included (the input is split on 0xff into a root tree and subtrees that
// the root may point at by their ids). GitSource::open and checkout must refuse or write inside the checkout
// directory only; a sentinel directory beside it must stay empty.
#include <git2.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "quorate/builder/source.h"

namespace {

namespace fs = std::filesystem;

struct World {
  fs::path root, repo, sentinel;
  git_repository* handle = nullptr;
  World() {
    char templ[] = "/tmp/quorate-git-fuzz.XXXXXX";
    root = ::mkdtemp(templ);
    repo = root / "repo.git";
    sentinel = root / "sentinel";
    fs::create_directories(sentinel);
    git_libgit2_init();
    if (git_repository_init(&handle, repo.c_str(), /*bare=*/1) != 0) std::abort();
  }
  ~World() {
    git_repository_free(handle);
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};

World& world() {
  static World w;
  return w;
}

std::string write_object(git_otype type, const std::string& bytes) {
  git_odb* odb = nullptr;
  if (git_repository_odb(&odb, world().handle) != 0) std::abort();
  git_oid oid;
  int rc = git_odb_write(&oid, odb, bytes.data(), bytes.size(), type);
  git_odb_free(odb);
  if (rc != 0) return {};
  char hex[GIT_OID_HEXSZ + 1];
  git_oid_tostr(hex, sizeof hex, &oid);
  return hex;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = world();
  std::string input(reinterpret_cast<const char*>(data), size);
  // Subtrees first (after each 0xff), so the root (before the first 0xff) can name them by id: the fuzzer
  // finds those ids in the seed corpus, which holds trees written this way.
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t i = 0; i <= input.size(); ++i) {
    if (i == input.size() || static_cast<uint8_t>(input[i]) == 0xff) {
      parts.push_back(input.substr(start, i - start));
      start = i + 1;
    }
  }
  for (size_t i = 1; i < parts.size(); ++i) write_object(GIT_OBJECT_TREE, parts[i]);
  write_object(GIT_OBJECT_BLOB, "blob\n");
  write_object(GIT_OBJECT_BLOB, "../sentinel");  // a symlink target aiming out of the checkout
  std::string tree = write_object(GIT_OBJECT_TREE, parts[0]);
  if (tree.empty()) return 0;
  std::string commit =
      write_object(GIT_OBJECT_COMMIT, "tree " + tree + "\nauthor f <f@f> 0 +0000\ncommitter f <f@f> 0 +0000\n\nfuzz\n");
  if (commit.empty()) return 0;
  auto source = quorate::builder::GitSource::open(w.repo.string(), commit, w.root / "clones");
  if (source.ok()) {
    fs::path out = w.root / "checkout";
    std::error_code ec;
    fs::remove_all(out, ec);
    fs::create_directories(out);
    (void)(*source)->checkout(out, 0);
    fs::remove_all(out, ec);
  }
  if (!fs::is_empty(w.sentinel)) std::abort();  // something escaped the checkout
  for (const auto& e : fs::directory_iterator(w.root)) {
    auto name = e.path().filename().string();
    if (name != "repo.git" && name != "sentinel" && name != "clones") std::abort();
  }
  return 0;
}
