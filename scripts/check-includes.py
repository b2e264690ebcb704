#!/usr/bin/env python3
"""Fails when a module includes a header of a module that docs/architecture.md does not list as its dependency.

Reads the module graph from the ```deps block of docs/architecture.md (lines "module -> dep, dep"), the
sources the build compiles from build/compile_commands.json, and the headers beside them in each module's
folder, and checks every `#include "quorate/<module>/..."` line. Tests, benchmarks and fuzz targets are not
modules and are not checked.

usage: scripts/check-includes.py [--build DIR] [--doc FILE]   (run from anywhere; exit 0 ok, 1 violations)
"""
import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDE = re.compile(r'^\s*#\s*include\s+"quorate/([a-z_]+)/')
# Folders that hold a module other than their first path component.
MODULE_FOLDERS = {"quorum/daemon": "quorumd"}
NOT_MODULES = {"tests", "bench", "fuzz", "build", "scripts", "docs", "examples"}


def read_graph(doc_path):
    """The ```deps block: {module: set(dependencies)}."""
    graph, inside = {}, False
    with open(doc_path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip() == "```deps":
                inside = True
            elif inside and line.strip() == "```":
                return graph
            elif inside and line.strip():
                if "->" not in line:
                    sys.exit(f"{doc_path}:{number}: expected 'module -> dep, dep': {line.strip()}")
                module, deps = (part.strip() for part in line.split("->", 1))
                graph[module] = {d.strip() for d in deps.split(",") if d.strip()}
    sys.exit(f"{doc_path}: no ```deps block (or it is not closed)")


def module_of(rel_path):
    for folder, module in MODULE_FOLDERS.items():
        if rel_path.startswith(folder + "/"):
            return module
    first = rel_path.split("/", 1)[0]
    return None if first in NOT_MODULES or "/" not in rel_path else first


def files_to_check(build_dir):
    """Compiled sources from compile_commands.json, plus every header and source in the same module folders."""
    with open(os.path.join(build_dir, "compile_commands.json"), encoding="utf-8") as f:
        commands = json.load(f)
    files = set()
    for entry in commands:
        path = os.path.normpath(os.path.join(entry.get("directory", ""), entry["file"]))
        rel = os.path.relpath(path, ROOT)
        if not rel.startswith("..") and module_of(rel) and os.path.exists(path):
            files.add(rel)
    folders = {rel.split("/", 1)[0] for rel in files}
    for folder in folders:
        for dirpath, _, names in os.walk(os.path.join(ROOT, folder)):
            for name in names:
                if name.endswith((".h", ".cc")):
                    files.add(os.path.relpath(os.path.join(dirpath, name), ROOT))
    return sorted(files)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--doc", default=os.path.join(ROOT, "docs", "architecture.md"))
    args = parser.parse_args()
    graph = read_graph(args.doc)
    problems, checked = [], 0
    for rel in files_to_check(args.build):
        module = module_of(rel)
        if module not in graph:
            problems.append(f"{rel}: module '{module}' is not in the graph of {args.doc}")
            continue
        checked += 1
        with open(os.path.join(ROOT, rel), encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if m and m.group(1) != module and m.group(1) not in graph[module]:
                    problems.append(f"{rel}:{number}: {module} includes quorate/{m.group(1)}/, "
                                    f"which {args.doc} does not list as a dependency of {module}")
    for p in problems:
        print(p)
    print(f"{checked} files checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
