#!/usr/bin/env python3
"""compare.py: times two commands in alternating runs and prints what the comparison can and cannot claim.

Every shell benchmark of quorate compares through this script, so that each figure it prints comes from the
same procedure: a warm-up run of each command, then PAIRS pairs run A B A B ..., each run timed for wall
seconds and for the CPU seconds (user + sys) of the command and everything it waited for. It prints
min/median/max of each (and the cores it kept busy, CPU/wall: far below what the command can use means
other load took the machine), the median of the per-pair ratios A/B of wall and of CPU seconds with their range, the filesystem the named
files live on (tmpfs or disk), the core count and the load average before and after.

It flags what a reader must not trust:
  IMPOSSIBLE  a run whose wall time is below its CPU seconds / cores (a timing artifact);
  NOISE       the pair ratios straddle 1.0, or their spread (max - min) is larger than the effect
              (|median - 1|): then no ratio is quoted, only "noise larger than the effect";
  GOAL        with --goal G (A should take at most G times B): whether every pair, only the median, or no
              pair met it.

Usage: compare.py --a-name NAME --a 'COMMAND' --b-name NAME --b 'COMMAND' [options]
  --pairs N       alternating pairs after the warm-up (default 5; at least 5 for a figure you quote)
  --warmup N      warm-up runs of each command, not counted (default 1)
  --prep 'CMD'    run before every run of either command, untimed (e.g. remove the output, sync)
  --a-prep 'CMD', --b-prep 'CMD'   the same, before A's or B's runs only (after --prep)
  --where PATH    a file or directory the commands read or write; its filesystem type is printed (repeatable)
  --goal G        A should take at most G x B's wall time
  --a-rss-goal M  A's peak RSS should stay below M MiB in every run (printed as met or NOT met)
  --title TEXT    a heading for the comparison
  --json FILE     also write every run and the summary as JSON (for scripts that build tables)
Commands run through `bash -c`; a nonzero exit status of either stops the comparison (exit 2). The exit
status is 0 otherwise, whatever the figures: a benchmark reports, it does not assert.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

TIME = "/usr/bin/time"


def fs_type(path):
    """The filesystem type of the mount holding `path` (longest mount point prefix in /proc/self/mounts)."""
    real = os.path.realpath(path)
    best, kind = "", "unknown"
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                fields = line.split()
                if len(fields) < 3:
                    continue
                mnt = fields[1].replace("\\040", " ")
                inside = real == mnt or real.startswith(mnt.rstrip("/") + "/")
                if inside and len(mnt) >= len(best):
                    best, kind = mnt, fields[2]
    except OSError:
        pass
    return kind, best


def where_line(paths):
    parts = []
    for p in paths:
        kind, mnt = fs_type(p)
        label = "tmpfs (memory)" if kind == "tmpfs" else "disk (%s)" % kind if kind != "unknown" else "unknown"
        parts.append("%s on %s, mounted at %s" % (p, label, mnt or "?"))
    return "; ".join(parts) if parts else "not given (--where)"


def loadavg():
    return "%.2f %.2f %.2f" % os.getloadavg()


def run_once(command, prep):
    """Runs `command`; returns wall seconds, CPU seconds (user+sys of it and its waited-for children), peak
    RSS in MiB (the largest single process), exit status."""
    if prep:
        subprocess.run(["bash", "-c", prep], check=True, stdout=subprocess.DEVNULL)
    argv = ["bash", "-c", command]
    rss_file = None
    if os.access(TIME, os.X_OK):
        # GNU time forks from a small process, so its peak RSS is the command's, not this Python's.
        fd, rss_file = tempfile.mkstemp(prefix="compare-rss.")
        os.close(fd)
        argv = [TIME, "-f", "%M", "-o", rss_file] + argv
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    rss = usage.ru_maxrss / 1024.0
    if rss_file:
        try:
            with open(rss_file) as f:
                rss = int(f.read().split()[-1]) / 1024.0
        except (OSError, ValueError, IndexError):
            pass
        os.unlink(rss_file)
    return {"wall": wall, "cpu": cpu, "rss_mib": rss, "exit": proc.returncode}


def spread(values):
    return min(values), statistics.median(values), max(values)


def fmt3(values, unit="s"):
    lo, med, hi = spread(values)
    return "%.3f %s median (%.3f-%.3f)" % (med, unit, lo, hi)


def judge(ratios, goal, pairs):
    """What may be said of per-pair ratios A/B: their min/median/max, whether they are noise (they straddle 1.0,
    or their spread is larger than the median's distance from 1.0), how a goal "A <= goal x B" fared, and the
    flags (NOISE, FEW) that forbid quoting them."""
    lo, med, hi = spread(ratios)
    straddles = lo < 1.0 < hi
    too_wide = (hi - lo) > abs(med - 1.0)
    why = None
    flags = []
    if straddles or too_wide:
        why = "pair ratios straddle 1.0" if straddles else "ratio spread %.3f exceeds the effect %.3f" % (hi - lo, abs(med - 1))
        flags.append("NOISE: %s; noise larger than the effect; no ratio quoted" % why)
    goal_state = None
    if goal is not None:
        met = sum(1 for r in ratios if r <= goal)
        goal_state = "met in every pair" if met == len(ratios) else (
            "met by the median only (%d of %d pairs)" % (met, len(ratios)) if med <= goal else
            "NOT met (%d of %d pairs within)" % (met, len(ratios)))
    if pairs < 5:
        flags.append("FEW: only %d pair(s); quote no figure from fewer than 5" % pairs)
    return {"min": lo, "median": med, "max": hi, "noisy": why is not None, "why": why, "goal_state": goal_state,
            "flags": flags}


def impossible(wall, cpu, cores):
    """A run whose wall time is below its CPU seconds spread over every core is a timing artifact."""
    return wall < cpu / cores * 0.98


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--a-name", default="A")
    ap.add_argument("--b-name", default="B")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--prep", default="")
    ap.add_argument("--a-prep", default="")
    ap.add_argument("--b-prep", default="")
    ap.add_argument("--where", action="append", default=[])
    ap.add_argument("--goal", type=float)
    ap.add_argument("--a-rss-goal", type=float, help="A's peak RSS must stay below this many MiB in every run")
    ap.add_argument("--title", default="")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.pairs < 1:
        ap.error("--pairs must be at least 1")

    cores = os.cpu_count() or 1
    load_before = loadavg()
    names = {"a": args.a_name, "b": args.b_name}
    commands = {"a": args.a, "b": args.b}
    preps = {"a": args.a_prep, "b": args.b_prep}
    runs = {"a": [], "b": []}
    flags = []

    def one(key, counted):
        r = run_once(commands[key], "; ".join(p for p in (args.prep, preps[key]) if p))
        if r["exit"] != 0:
            print("compare: %s exited with status %d: %s" % (names[key], r["exit"], commands[key]), file=sys.stderr)
            sys.exit(2)
        if counted:
            r["impossible"] = impossible(r["wall"], r["cpu"], cores)
            if r["impossible"]:
                flags.append("IMPOSSIBLE: a run of %s took %.3f s wall for %.3f CPU-s on %d cores"
                             % (names[key], r["wall"], r["cpu"], cores))
            runs[key].append(r)
        print("  %-5s %-28s wall %7.3f s  cpu %7.3f s  rss %7.1f MiB%s"
              % ("warm" if not counted else "run", names[key][:28], r["wall"], r["cpu"], r["rss_mib"],
                 "  IMPOSSIBLE" if counted and r["impossible"] else ""), file=sys.stderr)

    if args.title:
        print("== %s" % args.title, file=sys.stderr)
    for _ in range(args.warmup):
        one("a", False)
        one("b", False)
    for _ in range(args.pairs):
        one("a", True)
        one("b", True)
    load_after = loadavg()

    ratios = [a["wall"] / b["wall"] for a, b in zip(runs["a"], runs["b"]) if b["wall"] > 0]
    cpu_ratios = [a["cpu"] / b["cpu"] for a, b in zip(runs["a"], runs["b"]) if b["cpu"] > 0]
    verdict = judge(ratios, args.goal, args.pairs)
    lo, med, hi = verdict["min"], verdict["median"], verdict["max"]
    noisy = verdict["noisy"]

    title = args.title or "%s against %s" % (args.a_name, args.b_name)
    print("%s" % title)
    print("  files: %s" % where_line(args.where))
    print("  cores %d; load average before %s, after %s; %d warm-up run(s) each, then %d alternating pairs (A B A B ...)"
          % (cores, load_before, load_after, args.warmup, args.pairs))
    for key in ("a", "b"):
        rs = runs[key]
        busy = statistics.median(r["cpu"] / r["wall"] for r in rs if r["wall"] > 0)
        print("  %s %-30s wall %s; cpu %s; %.2f cores busy (median cpu/wall); peak rss %.1f MiB"
              % (key.upper(), names[key], fmt3([r["wall"] for r in rs]), fmt3([r["cpu"] for r in rs], "CPU-s"),
                 busy, max(r["rss_mib"] for r in rs)))
        print("      command: %s" % commands[key])
    ratio_text = "A/B per pair: median %.3f (%.3f-%.3f)" % (med, lo, hi)
    if noisy:
        print("  ratio: noise larger than the effect; no ratio quoted (%s; %s)" % (verdict["why"], ratio_text))
    else:
        print("  ratio: %s  -> A takes %.2fx B's wall time" % (ratio_text, med))
    if cpu_ratios:
        cpu = judge(cpu_ratios, None, args.pairs)
        print("  cpu-seconds ratio A/B per pair: %smedian %.3f (%.3f-%.3f)"
              % ("noise larger than the effect; " if cpu["noisy"] else "", cpu["median"], cpu["min"], cpu["max"]))
    goal_state = verdict["goal_state"]
    if goal_state:
        print("  goal A <= %.2fx B: %s" % (args.goal, goal_state))
    rss_state = None
    if args.a_rss_goal is not None:
        peak = max(r["rss_mib"] for r in runs["a"])
        rss_state = "met" if peak < args.a_rss_goal else "NOT met"
        print("  goal A's peak rss < %g MiB: %s (largest %.1f MiB)" % (args.a_rss_goal, rss_state, peak))
    flags += verdict["flags"]
    for f in flags:
        print("  FLAG %s" % f)

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"title": title, "cores": cores, "load_before": load_before, "load_after": load_after,
                       "where": {p: fs_type(p)[0] for p in args.where}, "names": names, "commands": commands,
                       "runs": runs, "ratios": ratios, "ratio_median": med, "ratio_min": lo, "ratio_max": hi,
                       "noisy": noisy, "goal": args.goal, "goal_state": goal_state, "rss_goal_mib": args.a_rss_goal,
                       "rss_goal_state": rss_state, "flags": flags}, f, indent=1)


if __name__ == "__main__":
    main()
