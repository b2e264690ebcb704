// Benchmark driver for bench/run_normalize.sh: normalizes one layer (or only compresses it) into a file and
// prints what it wrote, so the script can time it against tar/gzip/pigz/zstd in the same run.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "quorate/core/file.h"
#include "quorate/normalize/compress.h"
#include "quorate/normalize/layer.h"

namespace {

using quorate::Status;
using quorate::normalize::Compression;

// Writes to an fd without fsync: the baselines it is compared with do not fsync either.
class FdSink final : public quorate::Sink {
 public:
  explicit FdSink(int fd) : fd_(fd) {}
  Status write(std::span<const uint8_t> bytes) override { return quorate::write_all(fd_, bytes, "output"); }
  using Sink::write;

 private:
  int fd_;
};

int usage() {
  std::fprintf(stderr,
               "usage: normalize_bench layer|compress IN OUT [--compression none|gzip|zstd] [--level N]\n"
               "                       [--threads N] [--source-date-epoch N] [--hash-input 0|1]\n");
  return 2;
}

// Only the compressor: IN is streamed through it in 1 MiB writes.
Status compress_file(const char* in, FdSink& out, Compression c, int level, int threads) {
  int fd = ::open(in, O_RDONLY);
  if (fd < 0) return Status::from_errno(in, errno);
  auto sink = quorate::normalize::make_compressor(c, level, threads, &out);
  std::vector<uint8_t> buf(1 << 20);
  Status s;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) s = Status::from_errno(in, errno);
    if (n <= 0) break;
    s = sink->write(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
    if (!s.ok()) break;
  }
  ::close(fd);
  if (s.ok()) s = sink->finish();
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return usage();
  std::string mode = argv[1];
  quorate::normalize::LayerOptions options;
  for (int i = 4; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--compression") {
      if (!quorate::normalize::parse_compression(argv[i + 1], options.compression)) return usage();
    } else if (flag == "--level") {
      options.level = std::atoi(argv[i + 1]);
    } else if (flag == "--threads") {
      options.threads = std::atoi(argv[i + 1]);
    } else if (flag == "--hash-input") {
      options.hash_input = std::atoi(argv[i + 1]) != 0;
    } else if (flag == "--source-date-epoch") {
      options.source_date_epoch = std::atoll(argv[i + 1]);
    } else {
      return usage();
    }
  }
  int fd = ::open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    std::perror(argv[3]);
    return 2;
  }
  FdSink out(fd);
  Status s;
  if (mode == "layer") {
    auto r = quorate::normalize::normalize_layer(argv[2], out, options);
    if (r.ok()) {
      std::printf("%s %llu diff_id %s entries %llu reordered %llu\n", r->digest.c_str(),
                  static_cast<unsigned long long>(r->size), r->diff_id.c_str(),
                  static_cast<unsigned long long>(r->entries), static_cast<unsigned long long>(r->reordered));
    } else {
      s = r.status();
    }
  } else if (mode == "compress") {
    s = compress_file(argv[2], out, options.compression, options.level, options.threads);
  } else {
    return usage();
  }
  ::close(fd);
  if (!s.ok()) {
    std::fprintf(stderr, "normalize_bench: %s\n", s.to_string().c_str());
    return 2;
  }
  return 0;
}
