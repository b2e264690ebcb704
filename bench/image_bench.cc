// image_bench: a driver over the image store for bench/image_bench.sh (timed there by compare.py), not a
// benchmark by itself. `image_bench unpack STORE DIGEST`: what a build with a cold cache pays for its builder
// image: verify every blob against the pin, then unpack the root file system (STORE/rootfs/<hex> must be
// absent for a cold run; the script removes it between runs).
#include <cstdio>
#include <cstring>

#include "quorate/imagestore/image_store.h"

int main(int argc, char** argv) {
  if (argc != 4 || std::strcmp(argv[1], "unpack") != 0) {
    std::fprintf(stderr, "usage: image_bench unpack STORE DIGEST\n");
    return 2;
  }
  auto store = quorate::imagestore::ImageStore::open(argv[2]);
  if (!store.ok()) {
    std::fprintf(stderr, "image_bench: %s\n", store.status().to_string().c_str());
    return 2;
  }
  auto image = store->verify(argv[3]);
  if (!image.ok()) {
    std::fprintf(stderr, "image_bench: %s\n", image.status().to_string().c_str());
    return 2;
  }
  auto root = store->rootfs(*image);
  if (!root.ok()) {
    std::fprintf(stderr, "image_bench: %s\n", root.status().to_string().c_str());
    return 2;
  }
  std::printf("%s\n", root->path().c_str());
  return 0;
}
