// Deterministic compressors as Sinks: the output bytes depend only on the input, the algorithm and the
// level — never on the thread count, the time, or the host.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "quorate/core/sink.h"
#include "quorate/core/status.h"
#include "quorate/normalize/options.h"

namespace quorate::normalize {

// A Sink that compresses what it receives and writes the result to `next` (not owned, must outlive it).
// finish() must be called once to flush the stream; errors from `next` are returned by write() or finish().
// kNone passes bytes through unchanged. Not thread-safe (the gzip sink uses worker threads internally).
// gzip: RFC 1952 member with no name, mtime 0, XFL 0, OS 255 (unknown); deflate in independent 128 KiB
// blocks (each primed with the previous 32 KiB as dictionary, as pigz does; ended by Z_SYNC_FLUSH, the last by
// Z_FINISH), compressed on `threads` threads (0 = one per core) with a fixed number of blocks in flight.
// zstd: one frame, no checksum, no dictionary id, no content size; libzstd with nbWorkers >= 1, whose
// output does not depend on the worker count. `threads` = 0 means one worker here: each worker holds about
// 25 MiB of job buffers, and one worker (beside the thread feeding it) already outpaces `zstd -T1`.
std::unique_ptr<Sink> make_compressor(Compression c, int level, int threads, Sink* next);

// The level actually used for `level` = -1.
int default_level(Compression c);

// The algorithm, library, library version and level, e.g. "gzip zlib 1.2.13 level 6" or "none"; recorded in
// build results and attestations because another library version may produce other bytes.
std::string compressor_id(Compression c, int level);

// OCI media type of a layer blob: application/vnd.oci.image.layer.v1.tar[+gzip|+zstd].
std::string layer_media_type(Compression c);

// The sha256 digest of a layer blob decompressed (gzip, zstd, xz, bzip2 or none, told by content: a diff_id),
// its decompressed bytes written to `out` as well when it is not null. bad_input naming the blob when it is
// corrupt or expands past `max_bytes`.
Result<std::string> decompressed_digest(const std::filesystem::path& blob, uint64_t max_bytes, Sink* out = nullptr);

// Both digests of a layer blob from one read of it: as stored (its manifest digest) and decompressed (its
// diff_id), and how many bytes it decompressed to. bad_input "digest mismatch: blob P holds X, not the pinned
// `digest`" when it was read to its end and does not hash to `digest` (also when it does not decompress);
// else decompressed_digest's errors, and `together`'s when it is given and the bytes it counts pass its bound
// (the read stops there, and the bound is the error). io when the file cannot be read.
struct LayerBlobDigests {
  std::string digest;
  std::string diff_id;
  uint64_t expanded = 0;
};
Result<LayerBlobDigests> layer_blob_digests(const std::filesystem::path& blob, const std::string& digest,
                                            uint64_t max_bytes, ExpandedTotal* together = nullptr);

}  // namespace quorate::normalize
