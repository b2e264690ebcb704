#!/usr/bin/env python3
# Generates the normalize benchmark's input tree: a few thousand small text files and a few dozen large,
# partly random files (about 400 MiB), with varied mtimes, deterministic for a given seed.
import os
import random
import sys

WORDS = ("layer image digest quorum rebuild node commit tar gzip zstd canonical attest the of and to in a is "
         "for with on that by this be are from as it at an or was which not but have").split()


def text(rng, size):
    out = []
    n = 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14))) + "\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


def big(rng, size):
    # 1 MiB chunks: a quarter random (incompressible), half text, a quarter runs of one byte.
    chunks = []
    for i in range(size >> 20):
        kind = rng.random()
        if kind < 0.25:
            chunks.append(rng.randbytes(1 << 20))
        elif kind < 0.75:
            chunks.append(text(rng, 1 << 20))
        else:
            chunks.append(bytes([rng.randrange(256)]) * (1 << 20))
    return b"".join(chunks)


def main():
    root = sys.argv[1]
    rng = random.Random(20261123)
    paths = []
    text_cache = text(rng, 4 << 20)  # small files are slices of one text: fast to generate
    for d in range(60):
        dpath = os.path.join(root, "src", f"pkg{d:02d}")
        os.makedirs(dpath, exist_ok=True)
        for f in range(50):
            size = rng.randint(200, 32 << 10)
            start = rng.randrange(len(text_cache) - size)
            p = os.path.join(dpath, f"file{f:03d}.txt")
            with open(p, "wb") as fh:
                fh.write(text_cache[start:start + size])
            paths.append(p)
    os.makedirs(os.path.join(root, "data"), exist_ok=True)
    for b in range(35):
        p = os.path.join(root, "data", f"blob{b:02d}.bin")
        with open(p, "wb") as fh:
            fh.write(big(rng, rng.randint(8, 12) << 20))
        paths.append(p)
    os.symlink("../data/blob00.bin", os.path.join(root, "src", "link"))
    os.link(os.path.join(root, "data", "blob01.bin"), os.path.join(root, "data", "blob01.hardlink"))
    for p in paths:
        t = rng.randint(1_500_000_000, 1_800_000_000)
        os.utime(p, (t + rng.randint(0, 10**6), t))


if __name__ == "__main__":
    main()
