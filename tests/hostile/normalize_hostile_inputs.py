#!/usr/bin/env python3
"""Writes the hostile and broken inputs of tests/hostile/normalize_hostile_test.cc, one KIND at a time.

usage: normalize_hostile_inputs.py KIND OUT [N M]

layers (a tar file at OUT):
  plain             one ordinary file
  dot-file          a regular file named "." beside an ordinary one
  empty-name-file   a regular file named "" beside an ordinary one
  dir-then-file     directory "a", file "a/child", then a regular file "a" replacing the directory
  file-then-child   a regular file "a", then "a/child" under it
  pax-nul-path      a pax "path" record holding a NUL byte ("evil\\0suffix")
  pax-nul-path-gz   the same, gzip-compressed, after 300 ordinary pax entries (long names)
  pax-nul-linkpath  a symlink whose pax "linkpath" record holds a NUL byte
  pax-long-names-gz 300 pax entries with long names and nothing wrong with them, gzip-compressed
  pax-malformed     a pax header whose first record claims 99 bytes, then path=etc/cron.d/evil; ustar name
                    "innocent" (libarchive drops the whole header, so the entry would keep "innocent")
  pax-malformed-gz  the same, gzip-compressed
  pax-record-over-1mb  a pax path record of 1,000,000 bytes (libarchive rejects it and keeps the ustar name)
  pax-link-with-data  a hardlink whose pax size record gives it 1 MiB of data, which is a tar of
                    etc/cron.d/evil: libarchive skips it as the link's data, Python's and Go's readers take it
                    as the next entry
  k-masks-malformed a GNU 'K' long-link header, then pax-malformed's header, then a symlink "innocent":
                    libarchive returns no warning at all
  realsize-file     a file of size 0 whose pax SCHILY.realsize says 1024 (libarchive reports 1024, and the
                    bytes read in place would be the next entry's header; Go reads 0 bytes)
  realsize-dir      a directory with a pax size record of 1 KiB holding a tar of etc/cron.d/evil, and
                    SCHILY.realsize=0, so that libarchive reports size 0
  sparse-map-masked a GNU.sparse.map that is not numbers, and a UTF-8 path whose conversion warning hides
                    libarchive's warning about the map
  pax-utf8-names    a file with UTF-8 owner names and a symlink with a UTF-8 target, in pax records: nothing
                    wrong with them (libarchive warns it cannot convert them to the C locale)
  gzip-bad-crc      a gzip layer (stored blocks) with one content byte altered after compression

images (an OCI layout directory at OUT, one single-layer image):
  oci-plain         index.json lists the manifest once: nothing wrong with it
  oci-dup           index.json lists a nested index 3 times; the nested index lists the manifest 3 times
  oci-flood N M     index.json lists a nested index N times; the nested index lists the manifest M times
  oci-symlink-blob  the layer blob is a symlink to a file outside the layout
  oci-big           an OCI layout tar (at OUT) whose one layer expands to 512 MiB of zeros (for interrupting)
"""
import gzip, hashlib, io, json, os, sys, tarfile, zlib

def tar_bytes(members, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for ti, data in members:
            t.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
    return buf.getvalue()

def reg(name, data=b"x"):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime = len(data), 1700000000
    return ti, data

def dir_(name):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1700000000
    return ti, b""

def layer(kind):
    if kind == "plain":
        return tar_bytes([reg("a")])
    if kind == "dot-file":
        return tar_bytes([reg("a"), reg(".", b"hidden")])
    if kind == "empty-name-file":
        return tar_bytes([reg("a"), reg("", b"hidden")])
    if kind == "dir-then-file":
        return tar_bytes([dir_("a"), reg("a/child"), reg("a", b"now a file")])
    if kind == "file-then-child":
        return tar_bytes([reg("a", b"a file"), reg("a/child")])
    if kind == "pax-nul-path":
        ti, data = reg("placeholder")
        ti.pax_headers = {"path": "evil\x00suffix"}
        return tar_bytes([reg("a"), (ti, data)])
    if kind in ("pax-nul-path-gz", "pax-long-names-gz"):
        members = [reg("d/" + "n" * 120 + "%03d" % i, b"x" * i) for i in range(300)]
        if kind == "pax-nul-path-gz":
            ti, data = reg("placeholder")
            ti.pax_headers = {"path": "evil\x00suffix"}
            members.append((ti, data))
        return gzip.compress(tar_bytes(members), mtime=0)
    if kind == "pax-nul-linkpath":
        ti = tarfile.TarInfo("lnk")
        ti.type, ti.linkname, ti.mtime = tarfile.SYMTYPE, "placeholder", 1700000000
        ti.pax_headers = {"linkpath": "target\x00suffix"}
        return tar_bytes([reg("a"), (ti, None)])
    if kind in ("pax-malformed", "pax-malformed-gz"):
        ti, data = reg("innocent", b"* * * * * root sh -c evil\n")
        ti.pax_headers = {"comment": "x", "path": "etc/cron.d/evil"}
        raw = tar_bytes([reg("a"), (ti, data)])
        assert raw.count(b"13 comment=x\n") == 1
        raw = raw.replace(b"13 comment=x\n", b"99 comment=x\n")  # record data only: header checksums hold
        return gzip.compress(raw, mtime=0) if kind.endswith("-gz") else raw
    if kind == "pax-record-over-1mb":
        ti, data = reg("innocent")
        ti.pax_headers = {"path": "d/" + "p" * 999985}
        raw = tar_bytes([(ti, data)])
        assert int(raw[512:520].split(b" ")[0]) > 999999
        return raw
    if kind == "pax-link-with-data":
        hidden = tar_bytes([reg("etc/cron.d/evil", b"* * * * * root sh -c evil\n")])[:-1024]  # no end blocks
        hidden += bytes((1 << 20) - len(hidden))
        link = tarfile.TarInfo("hl")
        link.type, link.linkname, link.mtime = tarfile.LNKTYPE, "a", 1700000000
        link.size, link.pax_headers = len(hidden), {"size": str(len(hidden))}
        b = io.BytesIO()
        with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
            t.addfile(reg("a")[0], io.BytesIO(b"x"))
            t.addfile(link, io.BytesIO(hidden))  # tarfile writes the data it is given after any header
        raw = b.getvalue()
        names = tarfile.open(fileobj=io.BytesIO(raw)).getnames()
        assert "etc/cron.d/evil" in names, names  # what Python (and Go) read
        return raw
    if kind == "pax-utf8-names":
        ti, data = reg("owned")
        ti.uname, ti.gname = "j\u00fcrgen", "gr\u00fcppe"
        link = tarfile.TarInfo("l\u00efnk")
        link.type, link.linkname, link.mtime = tarfile.SYMTYPE, "t\u00e4rget/\u4e2d", 1700000000
        return tar_bytes([(ti, data), (link, None)])
    if kind == "gzip-bad-crc":
        raw = tar_bytes([reg("greeting", b"hello world\n")])
        z = zlib.compressobj(0, zlib.DEFLATED, -15)  # stored blocks: the content bytes appear as they are
        body = z.compress(raw) + z.flush()
        gz = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + body + \
             (zlib.crc32(raw) & 0xffffffff).to_bytes(4, "little") + (len(raw) & 0xffffffff).to_bytes(4, "little")
        assert gzip.decompress(gz) == raw
        return gz.replace(b"hello world", b"jello world")
    return None

# Hand-made headers, for what tarfile will not write.
def raw_header(name, typ=b"0", size=0, link=b"", magic=b"ustar\x0000"):
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108], h[108:116], h[116:124] = b"0000644\0", b"0000000\0", b"0000000\0"
    h[124:136], h[136:148] = b"%011o\0" % size, b"%011o\0" % 1700000000
    h[156:157], h[157:157 + len(link)], h[257:265] = typ, link, magic
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)

def raw_pad(b): return b + bytes(-len(b) % 512)

def raw_record(key, value):
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n: n += 1
    return str(n).encode() + body

def raw_pax(records):
    data = b"".join(records)
    return raw_header(b"PaxHeaders/x", b"x", len(data)) + raw_pad(data)

def raw_file(name, data): return raw_header(name, b"0", len(data)) + raw_pad(data)

def raw_layer(kind):
    evil = raw_file(b"etc/cron.d/evil", b"* * * * * root sh -c evil\n")
    if kind == "k-masks-malformed":
        bad = b"99 comment=x\n" + raw_record(b"path", b"etc/cron.d/evil")
        body = raw_header(b"././@LongLink", b"K", 7, magic=b"ustar  \0") + raw_pad(b"target\0") + \
            raw_header(b"PaxHeaders/x", b"x", len(bad)) + raw_pad(bad) + raw_header(b"innocent", b"2", 0, b"t")
    elif kind == "realsize-file":
        body = raw_pax([raw_record(b"SCHILY.realsize", b"1024")]) + raw_header(b"a", b"0", 0) + raw_file(b"b", b"hi\n")
    elif kind == "realsize-dir":
        body = raw_pax([raw_record(b"SCHILY.realsize", b"0"), raw_record(b"size", str(len(evil)).encode())]) + \
            raw_header(b"d/", b"5") + evil
    elif kind == "sparse-map-masked":
        body = raw_pax([raw_record(b"GNU.sparse.map", b"0,5,x"), raw_record(b"path", "\u00e9vil".encode())]) + \
            raw_file(b"innocent", b"hello")
    else:
        return None
    return raw_file(b"a", b"x") + body + bytes(1024)

def sha(b): return hashlib.sha256(b).hexdigest()

def desc(media_type, data, **extra):
    d = {"mediaType": media_type, "digest": "sha256:" + sha(data), "size": len(data)}
    d.update(extra)
    return d

def oci_blobs(layer_bytes):
    """blob name -> bytes of a one-layer image; and the manifest bytes."""
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(layer_bytes)]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": desc("application/vnd.oci.image.config.v1+json", cfg),
                           "layers": [desc("application/vnd.oci.image.layer.v1.tar", layer_bytes)]}).encode()
    return {sha(b): b for b in (layer_bytes, cfg, manifest)}, manifest

def index(manifests):
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": manifests}).encode()

def write_layout(out, blobs, index_bytes, symlink_blob=None):
    os.makedirs(os.path.join(out, "blobs", "sha256"))
    with open(os.path.join(out, "oci-layout"), "w") as f: f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(out, "index.json"), "wb") as f: f.write(index_bytes)
    for name, data in blobs.items():
        p = os.path.join(out, "blobs", "sha256", name)
        if name == symlink_blob:
            outside = out.rstrip("/") + ".outside"
            with open(outside, "wb") as f: f.write(data)
            os.symlink(os.path.abspath(outside), p)
        else:
            with open(p, "wb") as f: f.write(data)

def image(kind, out, n, m):
    layer_bytes = tar_bytes([reg("etc/hello", b"hello\n")])
    blobs, manifest = oci_blobs(layer_bytes)
    mdesc = desc("application/vnd.oci.image.manifest.v1+json", manifest)
    if kind == "oci-plain":
        write_layout(out, blobs, index([mdesc]))
        return True
    if kind == "oci-symlink-blob":
        write_layout(out, blobs, index([mdesc]), symlink_blob=sha(layer_bytes))
        return True
    if kind in ("oci-dup", "oci-flood"):
        if kind == "oci-dup": n, m = 3, 3
        nested = index([mdesc] * m)
        blobs[sha(nested)] = nested
        write_layout(out, blobs, index([desc("application/vnd.oci.image.index.v1+json", nested)] * n))
        return True
    if kind == "oci-big":
        z = zlib.compressobj(1, zlib.DEFLATED, 31)
        ti = tarfile.TarInfo("zeros")
        ti.size, ti.mtime = 512 << 20, 1700000000
        head = ti.tobuf(format=tarfile.PAX_FORMAT)
        chunk = bytes(1 << 20)
        parts = [z.compress(head)] + [z.compress(chunk) for _ in range(512)] + [z.compress(bytes(1024)), z.flush()]
        big = b"".join(parts)
        blobs, manifest = oci_blobs(big)
        members = [reg("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                   reg("index.json", index([desc("application/vnd.oci.image.manifest.v1+json", manifest)]))]
        members += [reg("blobs/sha256/" + name, data) for name, data in blobs.items()]
        with open(out, "wb") as f: f.write(tar_bytes(members))
        return True
    return False

def main():
    kind, out = sys.argv[1], sys.argv[2]
    n, m = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (0, 0)
    data = layer(kind)
    if data is None:
        data = raw_layer(kind)
    if data is not None:
        with open(out, "wb") as f: f.write(data)
    elif not image(kind, out, n, m):
        sys.exit("unknown kind " + kind)

if __name__ == "__main__":
    main()
