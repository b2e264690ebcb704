#!/usr/bin/env python3
"""Writes a docker-archive as `docker save` does (manifest.json, <id>.json config, <id>/layer.tar or
blobs/sha256/<hex>), with layers made by GNU tar from a small tree, plus optional noise and damage.

make_image.py OUT [--layout legacy|blobs] [--mtime N] [--reverse] [--tag NAME:TAG] [--host-noise] [--greeting WORD]
                  [--symlink-layers] [--extra-file NAME]
                  [--damage corrupt-layer|missing-layer|hostile-path|absolute-path|broken-json|bad-config-digest|
                            symlink-escape]

--symlink-layers stores each layer as blobs/sha256/<hex> with <hex>/layer.tar a symlink to it (written before
its target unless --reverse), as docker save does for layers shared between images. --extra-file adds a file
of that name (any bytes but '/' and NUL: a hostile name) to the first layer.
"""
import argparse, hashlib, io, json, os, subprocess, sys, tarfile, tempfile

def sha(b): return hashlib.sha256(b).hexdigest()

def make_layer(tmp, files, mtime, reverse, name):
    root = os.path.join(tmp, name)
    for path, content in files.items():
        p = os.path.join(root, path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f: f.write(content)
    names = []
    for dirpath, dirs, fs in os.walk(root):
        for n in dirs + fs:
            full = os.path.join(dirpath, n)
            os.utime(full, (mtime, mtime), follow_symlinks=False)
            names.append(os.path.relpath(full, root))
    names.sort(reverse=reverse)
    out = os.path.join(tmp, name + ".tar")
    subprocess.run(["tar", "--format=posix", "--no-recursion", "-C", root, "-cf", out] + names, check=True)
    return open(out, "rb").read()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layout", default="legacy")
    ap.add_argument("--mtime", type=int, default=1600000000)
    ap.add_argument("--reverse", action="store_true")
    ap.add_argument("--tag", default="example/hello:v1")
    ap.add_argument("--host-noise", action="store_true")
    ap.add_argument("--damage", default="")
    ap.add_argument("--greeting", default="hello")
    ap.add_argument("--symlink-layers", action="store_true")
    ap.add_argument("--extra-file", default="")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        first = {"etc/hello.conf": "greeting=" + a.greeting + "\n", "usr/bin/hello": "#!/bin/sh\necho hello\n"}
        if a.extra_file:
            first[a.extra_file] = "extra\n"
        layers = [
            make_layer(tmp, first, a.mtime, a.reverse, "l1"),
            make_layer(tmp, {"etc/.wh.hello.conf": "", "srv/index.html": "<h1>hi</h1>\n"}, a.mtime, a.reverse, "l2"),
        ]
        diff_ids = ["sha256:" + sha(l) for l in layers]
        created = "2024-05-06T07:08:09.123456789Z" if a.host_noise else "2020-01-01T00:00:00Z"
        config = {"architecture": "amd64", "os": "linux", "created": created,
                  "config": {"Cmd": ["/usr/bin/hello"], "Env": ["PATH=/usr/bin:/bin"], "Hostname": "", "Image": ""},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids},
                  "history": [{"created": created, "created_by": "COPY hello /"}, {"created": created, "created_by": "COPY site /srv"}]}
        if a.host_noise:
            config["container"] = "3f4e5d6c7b8a"
            config["docker_version"] = "24.0.7"
            config["container_config"] = {"Hostname": "3f4e5d6c7b8a", "Cmd": ["/bin/sh", "-c", "#(nop) COPY"]}
            config["config"]["Hostname"] = "3f4e5d6c7b8a"
        config_bytes = json.dumps(config, indent=None if a.host_noise else 2).encode()
        if a.damage == "broken-json":
            config_bytes = config_bytes[:-5]
        members = []
        if a.layout == "blobs":
            cname = "blobs/sha256/" + sha(config_bytes)
            lnames = ["blobs/sha256/" + sha(l) for l in layers]
        else:
            cname = sha(config_bytes) + ".json"
            lnames = [sha(l) + "/layer.tar" for l in layers]
        if a.damage == "bad-config-digest":
            config_bytes = config_bytes.replace(b"amd64", b"arm64")
        members.append((cname, config_bytes))
        for n, l in zip(lnames, layers):
            if a.damage == "corrupt-layer" and n == lnames[1]:
                l = l.replace(b"<h1>hi</h1>", b"<h1>HI</h1>")
            if a.damage == "missing-layer" and n == lnames[1]:
                continue
            if a.symlink_layers:
                members.append(("blobs/sha256/" + sha(l), l))
                members.append((n, "../blobs/sha256/" + sha(l)))
            else:
                members.append((n, l))
        if a.damage == "symlink-escape":
            members.append(("evil", "../../outside"))
        if a.damage == "hostile-path":
            members.append(("../escaped", b"x"))
        if a.damage == "absolute-path":
            members.append(("/tmp/quorate-escaped", b"x"))
        manifest = [{"Config": cname, "RepoTags": [a.tag], "Layers": lnames}]
        members.append(("manifest.json", json.dumps(manifest).encode()))
        if not a.reverse:
            members.reverse()
        with tarfile.open(a.out, "w", format=tarfile.PAX_FORMAT) as t:
            for n, data in members:
                info = tarfile.TarInfo(n)
                info.mtime = a.mtime
                if isinstance(data, str):  # a symlink to this target
                    info.type = tarfile.SYMTYPE
                    info.linkname = data
                    t.addfile(info)
                else:
                    info.size = len(data)
                    t.addfile(info, io.BytesIO(data))

if __name__ == "__main__":
    sys.exit(main())
