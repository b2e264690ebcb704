// Deterministic gzip (parallel, pigz-style independent blocks) and zstd compressors.
#include "quorate/normalize/compress.h"

#include <zlib.h>
#include <zstd.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace quorate::normalize {
namespace {

constexpr size_t kGzipBlock = 128 << 10;  // part of the output's identity: never derive it from threads
constexpr size_t kDictionary = 32 << 10;

// One block of input and, once compressed, its raw deflate bytes and CRC.
struct GzipJob {
  std::string input;
  std::string dictionary;  // the last 32 KiB of input before this block
  std::string output;
  uint32_t crc = 0;
  bool last = false;  // ends the deflate stream (Z_FINISH)
  bool done = false;
  bool failed = false;
};

// One raw-deflate stream reused for many blocks (deflateReset keeps its allocations; the bytes are the same
// as with a fresh stream). Each block is primed with its dictionary and ends byte-aligned with Z_SYNC_FLUSH
// so that blocks concatenate; the last block of the stream ends with Z_FINISH instead.
class BlockDeflater {
 public:
  explicit BlockDeflater(int level) { ok_ = deflateInit2(&z_, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK; }
  ~BlockDeflater() {
    if (ok_) deflateEnd(&z_);
  }
  BlockDeflater(const BlockDeflater&) = delete;
  BlockDeflater& operator=(const BlockDeflater&) = delete;

  void run(GzipJob& job) {
    job.crc = static_cast<uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(job.input.data()), static_cast<uInt>(job.input.size())));
    if (!ok_ || deflateReset(&z_) != Z_OK) {
      job.failed = true;
      return;
    }
    if (!job.dictionary.empty()) {
      deflateSetDictionary(&z_, reinterpret_cast<const Bytef*>(job.dictionary.data()),
                           static_cast<uInt>(job.dictionary.size()));
    }
    job.output.resize(deflateBound(&z_, job.input.size()) + 16);
    z_.next_in = reinterpret_cast<Bytef*>(job.input.data());
    z_.avail_in = static_cast<uInt>(job.input.size());
    z_.next_out = reinterpret_cast<Bytef*>(job.output.data());
    z_.avail_out = static_cast<uInt>(job.output.size());
    int rc = deflate(&z_, job.last ? Z_FINISH : Z_SYNC_FLUSH);
    if (rc != (job.last ? Z_STREAM_END : Z_OK) || z_.avail_in != 0) job.failed = true;
    job.output.resize(job.output.size() - z_.avail_out);
  }

 private:
  z_stream z_{};
  bool ok_ = false;
};

class GzipSink final : public Sink {
 public:
  GzipSink(int level, int threads, Sink* next) : level_(level), next_(next), deflater_(level) {
    static const unsigned char kHeader[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
    status_ = next_->write(std::string_view(reinterpret_cast<const char*>(kHeader), sizeof kHeader));
    int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    max_in_flight_ = static_cast<size_t>(n) * 2;
    if (n > 1) {
      for (int i = 0; i < n; ++i) workers_.emplace_back([this] { work(); });
    }
    block_.reserve(kGzipBlock);
  }

  ~GzipSink() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_work_.notify_all();
    for (auto& t : workers_) t.join();
  }

  Status write(std::span<const uint8_t> bytes) override {
    while (!bytes.empty() && status_.ok()) {
      // A full block is submitted only once more input arrives, so that the last block is known at finish().
      if (block_.size() == kGzipBlock) submit(false);
      size_t take = std::min(bytes.size(), kGzipBlock - block_.size());
      block_.append(reinterpret_cast<const char*>(bytes.data()), take);
      bytes = bytes.subspan(take);
    }
    return status_;
  }
  using Sink::write;

  Status finish() override {
    if (!status_.ok()) return status_;
    submit(true);  // the last block, possibly empty: Z_FINISH writes the final deflate block
    drain(0);
    if (!status_.ok()) return status_;
    // CRC-32 and ISIZE (input size mod 2^32), little endian.
    unsigned char trailer[8];
    for (int i = 0; i < 4; ++i) trailer[i] = static_cast<unsigned char>(crc_ >> (8 * i));
    for (int i = 0; i < 4; ++i) trailer[4 + i] = static_cast<unsigned char>(total_ >> (8 * i));
    status_ = next_->write(std::string_view(reinterpret_cast<const char*>(trailer), sizeof trailer));
    return status_;
  }

 private:
  void submit(bool last) {
    auto job = std::make_shared<GzipJob>();
    job->last = last;
    job->dictionary = std::move(dictionary_);
    // Every block but the last is kGzipBlock long, so the window is the tail of the previous block.
    dictionary_ = block_.substr(block_.size() > kDictionary ? block_.size() - kDictionary : 0);
    job->input = std::move(block_);
    block_.clear();
    block_.reserve(kGzipBlock);
    if (workers_.empty()) {
      deflater_.run(*job);
      job->done = true;
      queue_.push_back(job);
      drain(0);
      return;
    }
    {
      std::lock_guard lock(mu_);
      queue_.push_back(job);
      pending_.push_back(job);
    }
    cv_work_.notify_one();
    drain(max_in_flight_);
  }

  // Writes finished jobs in order until at most `keep` remain in flight.
  void drain(size_t keep) {
    std::unique_lock lock(mu_);
    while (!queue_.empty()) {
      auto head = queue_.front();
      if (!head->done) {
        if (queue_.size() <= keep) return;
        cv_done_.wait(lock, [&] { return head->done; });
      }
      queue_.pop_front();
      lock.unlock();
      if (head->failed && status_.ok()) status_ = Status::internal("zlib deflate failed");
      if (status_.ok()) {
        crc_ = static_cast<uint32_t>(crc32_combine(crc_, head->crc, static_cast<z_off_t>(head->input.size())));
        total_ += head->input.size();
        status_ = next_->write(std::string_view(head->output));
      }
      lock.lock();
    }
  }

  void work() {
    BlockDeflater deflater(level_);
    for (;;) {
      std::shared_ptr<GzipJob> job;
      {
        std::unique_lock lock(mu_);
        cv_work_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
        if (pending_.empty()) return;
        job = pending_.front();
        pending_.pop_front();
      }
      deflater.run(*job);
      {
        std::lock_guard lock(mu_);
        job->done = true;
      }
      cv_done_.notify_all();
    }
  }

  int level_;
  Sink* next_;
  BlockDeflater deflater_;  // used on the caller's thread when there are no workers
  Status status_;
  std::string block_;
  std::string dictionary_;
  uint32_t crc_ = 0;
  uint64_t total_ = 0;
  size_t max_in_flight_;
  std::mutex mu_;
  std::condition_variable cv_work_;
  std::condition_variable cv_done_;
  std::deque<std::shared_ptr<GzipJob>> queue_;    // in input order, for output
  std::deque<std::shared_ptr<GzipJob>> pending_;  // not yet taken by a worker
  std::vector<std::thread> workers_;
  bool stopping_ = false;
};

class ZstdSink final : public Sink {
 public:
  ZstdSink(int level, int threads, Sink* next) : next_(next), ctx_(ZSTD_createCCtx()) {
    int workers = threads > 0 ? threads : 1;  // more only when asked: ~25 MiB of buffers each
    ZSTD_CCtx_setParameter(ctx_, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(ctx_, ZSTD_c_checksumFlag, 0);
    ZSTD_CCtx_setParameter(ctx_, ZSTD_c_dictIDFlag, 0);
    ZSTD_CCtx_setParameter(ctx_, ZSTD_c_contentSizeFlag, 0);
    // With one or more workers libzstd's output is the same for any worker count; 0 would differ.
    if (ZSTD_isError(ZSTD_CCtx_setParameter(ctx_, ZSTD_c_nbWorkers, std::max(1, workers)))) {
      status_ = Status::unsupported("libzstd was built without multithreading; its output would differ");
    }
    out_.resize(ZSTD_CStreamOutSize());
  }
  ~ZstdSink() override { ZSTD_freeCCtx(ctx_); }

  Status write(std::span<const uint8_t> bytes) override { return run(bytes, ZSTD_e_continue); }
  using Sink::write;
  Status finish() override { return run({}, ZSTD_e_end); }

 private:
  Status run(std::span<const uint8_t> bytes, ZSTD_EndDirective mode) {
    if (!status_.ok()) return status_;
    ZSTD_inBuffer in{bytes.data(), bytes.size(), 0};
    for (;;) {
      ZSTD_outBuffer out{out_.data(), out_.size(), 0};
      size_t left = ZSTD_compressStream2(ctx_, &out, &in, mode);
      if (ZSTD_isError(left)) return status_ = Status::internal(std::string("zstd: ") + ZSTD_getErrorName(left));
      if (out.pos > 0) {
        status_ = next_->write(std::string_view(out_.data(), out.pos));
        if (!status_.ok()) return status_;
      }
      bool done = mode == ZSTD_e_end ? left == 0 : in.pos == in.size;
      if (done) return Status();
    }
  }

  Sink* next_;
  ZSTD_CCtx* ctx_;
  Status status_;
  std::string out_;
};

class PassSink final : public Sink {
 public:
  explicit PassSink(Sink* next) : next_(next) {}
  Status write(std::span<const uint8_t> bytes) override { return next_->write(bytes); }
  using Sink::write;

 private:
  Sink* next_;
};

}  // namespace

int default_level(Compression c) {
  switch (c) {
    case Compression::kGzip:
      return 6;
    case Compression::kZstd:
      return 3;
    case Compression::kNone:
      return 0;
  }
  return 0;
}

std::unique_ptr<Sink> make_compressor(Compression c, int level, int threads, Sink* next) {
  if (level < 0) level = default_level(c);
  switch (c) {
    case Compression::kGzip:
      return std::make_unique<GzipSink>(level, threads, next);
    case Compression::kZstd:
      return std::make_unique<ZstdSink>(level, threads, next);
    case Compression::kNone:
      break;
  }
  return std::make_unique<PassSink>(next);
}

std::string compressor_id(Compression c, int level) {
  if (level < 0) level = default_level(c);
  switch (c) {
    case Compression::kGzip:
      return std::string("gzip zlib ") + zlibVersion() + " level " + std::to_string(level);
    case Compression::kZstd:
      return std::string("zstd libzstd ") + ZSTD_versionString() + " level " + std::to_string(level);
    case Compression::kNone:
      break;
  }
  return "none";
}

std::string layer_media_type(Compression c) {
  switch (c) {
    case Compression::kGzip:
      return "application/vnd.oci.image.layer.v1.tar+gzip";
    case Compression::kZstd:
      return "application/vnd.oci.image.layer.v1.tar+zstd";
    case Compression::kNone:
      break;
  }
  return "application/vnd.oci.image.layer.v1.tar";
}

}  // namespace quorate::normalize
