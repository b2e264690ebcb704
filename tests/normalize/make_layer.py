#!/usr/bin/env python3
"""Writes test layers: the same files in many non-canonical encodings, and hostile or broken archives.

usage: make_layer.py KIND OUT [--order sorted|reversed|shuffled] [--format gnu|pax|ustar] [--mtime N]
                     [--owner N] [--noise] [--dot] [--compress none|gzip|xz|bz2|zstd] [--entries N]
"""
import argparse, gzip, io, os, random, subprocess, sys, tarfile

def rand_bytes(seed, n):
    r = random.Random(seed)
    return bytes(r.getrandbits(8) for _ in range(n))

def tree_entries(a):
    """(TarInfo, data) list of the reference tree; every variant describes these same files."""
    out = []
    def add(name, type=tarfile.REGTYPE, data=b"", mode=0o644, link="", xattrs=None, dev=(0, 0), mtime=None):
        ti = tarfile.TarInfo(name)
        ti.type = type
        ti.mode = mode
        ti.size = len(data) if type == tarfile.REGTYPE else 0
        ti.linkname = link
        ti.mtime = a.mtime if mtime is None else mtime
        ti.uid = ti.gid = a.owner
        ti.uname = ti.gname = "builder" if a.owner else ""
        ti.devmajor, ti.devminor = dev
        if xattrs and not a.no_xattrs:
            ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in xattrs.items()}
        out.append((ti, data))
    add("etc", tarfile.DIRTYPE, mode=0o755)
    add("etc/app.conf", data=b"listen = 8080\n", mode=0o640)
    add("etc/cap", data=b"#!/bin/sh\n", mode=0o755, xattrs={"user.note": "kept", "security.capability": "\x01\x00\x00\x02"})
    add("etc/localtime", tarfile.SYMTYPE, link="/usr/share/zoneinfo/UTC", mode=0o777)
    add("link-out", tarfile.SYMTYPE, link="../../etc/passwd", mode=0o777)
    add("usr", tarfile.DIRTYPE, mode=0o755)
    add("usr/bin", tarfile.DIRTYPE, mode=0o755)
    tool = bytearray(rand_bytes(1, 70000))
    if a.tweak:
        tool[12345] ^= 1  # one bit of one binary: what quorate diff must pinpoint
    add("usr/bin/tool", data=bytes(tool), mode=0o4755)
    add("usr/bin/tool2", tarfile.LNKTYPE, link="usr/bin/tool", mode=0o4755)
    add("usr/bin/alias", tarfile.SYMTYPE, link="tool", mode=0o777)
    add("var", tarfile.DIRTYPE, mode=0o755)
    add("var/.wh.cache", data=b"", mode=0o644)
    add("opt", tarfile.DIRTYPE, mode=0o755)
    add("opt/.wh..wh..opq", data=b"", mode=0o644)
    add("run", tarfile.DIRTYPE, mode=0o755)
    add("run/pipe", tarfile.FIFOTYPE, mode=0o600)
    add("dev", tarfile.DIRTYPE, mode=0o755)
    add("dev/null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3))
    add("d" * 120 + "/" + "long-name-" + "x" * 140, data=b"long\n")  # 271 bytes: pax path
    add("caf\udce9", data=b"latin-1 name\n")  # byte 0xe9: not UTF-8, must be kept byte-exact
    add("na\u00efve-\u00fcn\u00efc\u00f6d\u00e9", data=b"utf-8 name\n")  # pax path record in UTF-8
    add("empty", data=b"")
    return out

def order(entries, how, seed=7):
    if how == "sorted":
        entries = sorted(entries, key=lambda e: e[0].name.encode("utf-8", "surrogateescape"))
    elif how == "reversed":
        entries = sorted(entries, key=lambda e: e[0].name.encode("utf-8", "surrogateescape"), reverse=True)
    else:
        entries = list(entries)
        random.Random(seed).shuffle(entries)
    # A hardlink must follow its target: swap the roles of the pair when it does not.
    names = [e[0].name for e in entries]
    for i, (ti, data) in enumerate(entries):
        if ti.type == tarfile.LNKTYPE and names.index(ti.linkname) > i:
            j = names.index(ti.linkname)
            target, tdata = entries[j]
            ti.type, target.type = tarfile.REGTYPE, tarfile.LNKTYPE
            ti.size, target.size = target.size, 0
            target.linkname, ti.linkname = ti.name, ""
            entries[i], entries[j] = (ti, tdata), (target, b"")
    return entries

def write_tar(entries, a):
    fmt = {"gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT, "ustar": tarfile.USTAR_FORMAT}[a.format]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape") as tf:
        if a.dot:
            root = tarfile.TarInfo("./")
            root.type = tarfile.DIRTYPE
            root.mode = 0o755
            tf.addfile(root)
        for ti, data in entries:
            if a.dot:
                ti.name = "./" + ti.name
                if ti.type == tarfile.LNKTYPE:
                    ti.linkname = "./" + ti.linkname
            if a.noise:
                ti.pax_headers = dict(ti.pax_headers, atime="1234567.5", ctime="1234568.25")
                ti.mtime = ti.mtime + 0.5 if fmt == tarfile.PAX_FORMAT else ti.mtime
            tf.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
    return buf.getvalue()

def compress(data, how):
    if how == "none":
        return data
    if how == "gzip":
        out = io.BytesIO()
        with gzip.GzipFile(filename="layer.tar", mode="wb", fileobj=out, mtime=987654321) as g:
            g.write(data)
        return out.getvalue()
    cmd = {"xz": ["xz", "-c"], "bz2": ["bzip2", "-c"], "zstd": ["zstd", "-q", "-c", "--content-size"]}[how]
    return subprocess.run(cmd, input=data, stdout=subprocess.PIPE, check=True).stdout

def one(name, data=b"", type=tarfile.REGTYPE, link=""):
    ti = tarfile.TarInfo(name)
    ti.type, ti.size, ti.linkname = type, len(data), link
    return ti, data

def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind")
    p.add_argument("out")
    p.add_argument("--order", default="sorted")
    p.add_argument("--format", default="pax")
    p.add_argument("--mtime", type=int, default=1700000000)
    p.add_argument("--owner", type=int, default=0)
    p.add_argument("--noise", action="store_true")
    p.add_argument("--dot", action="store_true")
    p.add_argument("--compress", default="none")
    p.add_argument("--entries", type=int, default=100000)
    p.add_argument("--no-xattrs", action="store_true")
    p.add_argument("--tweak", action="store_true")
    a = p.parse_args()
    k = a.kind
    if k == "tree":
        entries = order(tree_entries(a), a.order)
    elif k == "absolute":
        entries = [one("ok", b"1"), one("/etc/passwd", b"root")]
    elif k == "dotdot":
        entries = [one("a/../../escape", b"x")]
    elif k == "hardlink-escape":
        entries = [one("a", b"x"), one("b", type=tarfile.LNKTYPE, link="../outside")]
    elif k == "hardlink-missing":
        entries = [one("b", type=tarfile.LNKTYPE, link="nowhere")]
    elif k == "duplicates":
        entries = [one("same", b"first"), one("other", b"o"), one("same", b"second")]
    elif k == "many":
        entries = [one("d%03d/f%06d" % (i % 100, i), b"") for i in range(a.entries)]
        random.Random(3).shuffle(entries)
    elif k == "bomb":
        entries = [one("zeros", bytes(64 << 20))]
    elif k == "socket-free-devices":
        entries = [one("dev", type=tarfile.DIRTYPE), (lambda t: t)(one("dev/sda", type=tarfile.BLKTYPE)[0]), one("fifo", type=tarfile.FIFOTYPE)]
        entries = [(e if isinstance(e, tuple) else (e, b"")) for e in entries]
    else:
        sys.exit("unknown kind " + k)
    data = write_tar(entries, a)
    with open(a.out, "wb") as f:
        f.write(compress(data, a.compress))

if __name__ == "__main__":
    main()
