#!/usr/bin/env python3
"""Scale benchmark: N load nodes (bench/load_node) + the real `quorate quorum` verifier, with CURVE and faults.

Each node runs in its own network namespace (veth pair to the host) when --netns is on or auto and the
machine allows it (root, `ip netns`); otherwise every process is on 127.0.0.1 ("loopback"). The fault mix:
node 0 is a rogue (signs another image digest for the same subjects) for the whole run; then, from
--fault-start seconds after the clock starts, one --fault-gap apart: SIGSTOP of node 2 (SIGCONT after
--stop-seconds), SIGKILL of node 1 (restarted after 1 s), a partition of node 3 for --partition-seconds (its
veth link down; iptables DROP on its ports under loopback), SIGKILL of the verifier (restarted after 1 s).

Prints decisions right/wrong/missing (every subject asked through the verifier's query socket at the end),
attestations published/stored/duplicated (the verifier's store, sqlite), ingest rate against
`openssl speed ed25519` measured in the same run, last publish -> last decision, peak RSS of the verifier
(VmHWM), history share, decision rows and bytes, query p99 during the run, the restarted verifier's time to
follow, and the load average. Every wait is bounded; every process is killed by PID at the end.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


_RESERVED = []


def free_port():
    """A port on 127.0.0.1 reserved for the life of this script: the probe stays bound (never listening,
    SO_REUSEADDR), so no bind(0) or outgoing connection takes it, while a daemon binding it with
    SO_REUSEADDR (libzmq does) still can."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    _RESERVED.append(s)
    return s.getsockname()[1]


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def openssl_verify_rate(seconds):
    """Ed25519 verifications per second on one core (openssl speed), or None."""
    try:
        out = subprocess.run(["openssl", "speed", "-seconds", str(seconds), "ed25519"], capture_output=True,
                             text=True, timeout=seconds * 2 + 60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        if "Ed25519" in line and "EdDSA" in line:
            nums = re.findall(r"[0-9.]+", line.split(")")[-1])
            if len(nums) >= 4:
                return float(nums[-1])
    return None


def proc_status(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])  # kB
    except OSError:
        pass
    return None


def proc_cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def main_thread_schedstat(pid):
    """(seconds on a CPU, seconds runnable waiting for one) of a process's main thread, or None."""
    try:
        with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
            on_cpu, waiting = f.read().split()[:2]
        return int(on_cpu) / 1e9, int(waiting) / 1e9
    except (OSError, ValueError):
        return None


def machine_cpu():
    """The first line of /proc/stat as a dict of ticks: user, nice, system, idle, iowait, irq, softirq, steal."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return dict(zip(("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"), v))


def json_lines(path):
    try:
        with open(path, errors="replace") as f:
            for line in f:
                try:
                    yield json.loads(line)
                except ValueError:
                    pass
    except OSError:
        return


class Bench:
    def __init__(self, a):
        self.a = a
        self.procs = {}  # name -> Popen (the live ones)
        self.cleanups = []
        self.work = a.work or tempfile.mkdtemp(prefix="quorate-scale-")
        os.makedirs(self.work, exist_ok=True)
        self.tag = str(os.getpid() % 100000)
        self.faults = []
        self.events = {}

    # ---- processes -----------------------------------------------------------------------------------
    def spawn(self, name, argv, out, err):
        p = subprocess.Popen(argv, stdout=open(out, "ab"), stderr=open(err, "ab"), stdin=subprocess.DEVNULL)
        self.procs[name] = p
        return p

    def kill(self, name, sig=signal.SIGKILL, wait=10):
        p = self.procs.get(name)
        if p is None:
            return None
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            code = p.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            code = p.wait(timeout=10)
        del self.procs[name]
        return code

    def kill_all(self):
        for name in list(self.procs):
            p = self.procs[name]
            try:
                os.kill(p.pid, signal.SIGCONT)
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            del self.procs[name]
        for c in reversed(self.cleanups):
            subprocess.run(c, capture_output=True)
        self.cleanups = []

    def run(self, argv, **kw):
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kw)

    # ---- network -------------------------------------------------------------------------------------
    def clear_stale_namespaces(self):
        """Every run gives its node i the addresses 10.213.<i>.1 (host side) and .2 (namespace side). A run killed
        before its cleanup leaves its namespaces, and with them host interfaces holding those addresses: the next
        run's nodes would be unreachable and it would wait until its timeout. Removes the namespaces of runs whose
        process is gone (named qs<tag>n<i>, tag = pid % 100000); exits when another run is going."""
        listed = self.run(["ip", "netns", "list"]).stdout.split("\n")
        stale = {}
        for line in listed:
            m = re.match(r"(qs(\d+)n\d+)\b", line.strip())
            if m and m.group(2) != self.tag:
                stale.setdefault(m.group(2), []).append(m.group(1))
        for tag, names in sorted(stale.items()):
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
                except OSError:
                    continue
                if int(pid) % 100000 == int(tag) and b"scale_bench" in cmdline:
                    sys.exit(f"another scale run (pid {pid}) holds network namespaces qs{tag}n*: runs share the "
                             "10.213.<i> addresses, run one at a time")
            for name in names:
                self.run(["ip", "netns", "del", name])
            print(f"removed {len(names)} network namespaces left by a scale run that was killed (qs{tag}n*)",
                  file=sys.stderr)

    def setup_network(self):
        mode = self.a.netns
        if mode in ("auto", "on") and os.geteuid() == 0 and shutil.which("ip") and self.a.nodes <= 250:
            self.clear_stale_namespaces()
            batch = []
            for i in range(self.a.nodes):
                ns, h, n = f"qs{self.tag}n{i}", f"qh{self.tag}_{i}", f"qn{self.tag}_{i}"
                batch += [f"netns add {ns}", f"link add {h} type veth peer name {n}", f"link set {n} netns {ns}",
                          f"addr add 10.213.{i}.1/24 dev {h}", f"link set {h} up"]
                self.cleanups.append(["ip", "netns", "del", ns])
                self.cleanups.append(["ip", "link", "del", h])
            r = subprocess.run(["ip", "-batch", "-"], input="\n".join(batch) + "\n", capture_output=True, text=True,
                               timeout=120)
            for i in range(self.a.nodes):
                if r.returncode != 0:
                    break
                ns, n = f"qs{self.tag}n{i}", f"qn{self.tag}_{i}"
                r = subprocess.run(["ip", "-n", ns, "-batch", "-"], capture_output=True, text=True, timeout=60,
                                   input=f"addr add 10.213.{i}.2/24 dev {n}\nlink set {n} up\nlink set lo up\n")
            if r.returncode == 0:
                self.netns = True
                return "network namespaces (one per node, veth to the host, 10.213.<i>.2)"
            for c in reversed(self.cleanups):
                subprocess.run(c, capture_output=True)
            self.cleanups = []
            if mode == "on":
                sys.exit("network namespaces refused: " + r.stderr.strip())
            self.netns_error = r.stderr.strip()
        self.netns = False
        return "loopback (127.0.0.1)" + (f"; namespaces refused: {self.netns_error}" if hasattr(self, "netns_error") else "")

    def node_endpoints(self, i):
        if self.netns:
            return f"tcp://10.213.{i}.2:7101", f"tcp://10.213.{i}.2:7102"
        return f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"

    def partition(self, i, on):
        if self.netns:
            self.run(["ip", "link", "set", f"qh{self.tag}_{i}", "down" if on else "up"])
            return "veth link down" if on else "up"
        if os.geteuid() != 0 or not shutil.which("iptables"):
            return None
        rules = []
        for ep in self.endpoints[i]:
            port = ep.rsplit(":", 1)[1]
            rules.append(["INPUT", "-i", "lo", "-p", "tcp", "--dport", port, "-j", "DROP"])
            rules.append(["INPUT", "-i", "lo", "-p", "tcp", "--sport", port, "-j", "DROP"])
        for r in rules:
            if on:
                self.run(["iptables", "-I"] + r)
                self.cleanups.append(["iptables", "-D"] + r)
            else:
                self.run(["iptables", "-D"] + r)
        return "iptables DROP on lo" if on else "up"

    # ---- the run -------------------------------------------------------------------------------------
    def node_argv(self, i):
        d = os.path.join(self.work, f"node{i}")
        pub, ctl = self.endpoints[i]
        argv = [self.a.load_node, "serve", "--dir", d, "--id", f"node-{i}", "--subjects", str(self.a.subjects),
                "--rate", str(self.a.rate), "--publish", pub, "--control", ctl, "--allow", self.verifier_pub,
                "--start-file", os.path.join(self.work, "start")]
        if i == 0 and self.a.rogue:
            argv.append("--rogue")
        if self.netns:
            argv = ["ip", "netns", "exec", f"qs{self.tag}n{i}"] + argv
        if self.a.node_nice:
            argv = ["nice", "-n", str(self.a.node_nice)] + argv
        return argv

    def start_node(self, i):
        d = os.path.join(self.work, f"node{i}")
        return self.spawn(f"node{i}", self.node_argv(i), os.path.join(d, "out.log"), os.path.join(d, "err.log"))

    def start_verifier(self):
        n = self.verifier_starts = getattr(self, "verifier_starts", 0) + 1
        err = os.path.join(self.work, f"verifier{n}.err")
        t = time.monotonic()
        p = self.spawn("verifier", [self.a.quorate, "quorum", "--config", os.path.join(self.work, "quorum.toml")],
                       os.path.join(self.work, "verifier.out"), err)
        self.verifier_errs.append(err)
        return p, t, err

    def wait_for(self, pred, limit, what):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if pred():
                return True
            time.sleep(0.05)
        raise RuntimeError(f"timed out after {limit} s waiting for {what}")

    def log_has(self, path, needle):
        try:
            with open(path, errors="replace") as f:
                return needle in f.read()
        except OSError:
            return False

    def store_counts(self, expected=None):
        """Attestations stored. The largest row id, which the store assigns one after the other (a refused or
        duplicate insert takes none): count(*) walks an index of the whole store, 14 ms of CPU at 500,000,
        every 0.5 s on the machine the verifier is measured on. Counted exactly once that reaches `expected`."""
        db = os.path.join(self.work, "verifier", "store.db")
        try:
            c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            n = c.execute("SELECT coalesce(max(id), 0) FROM attestations").fetchone()[0]
            if expected is not None and n >= expected:
                n = c.execute("SELECT count(*) FROM attestations").fetchone()[0]
            c.close()
            return n
        except sqlite3.Error:
            return None

    def sample_lag(self, now):
        """Each node's lag: what it has published (S in burst, rate x t otherwise) minus the verifier's saved
        cursor (cursors.db). Kept per node: the largest lag, and how often it grew between two samples while
        the node was not faulted and had stopped publishing."""
        if now - getattr(self, "last_lag_sample", -10) < 2.0:
            return
        self.last_lag_sample = now
        db = os.path.join(self.work, "verifier", "cursors.db")
        try:
            c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            rows = dict(c.execute("SELECT node_id, sequence FROM cursors").fetchall())
            c.close()
        except sqlite3.Error:
            return
        S, rate = self.a.subjects, self.a.rate
        for i in range(self.a.nodes):
            nid = f"node-{i}"
            published = S if rate == 0 else min(S, int(rate * now))
            lag = published - rows.get(nid, 0)
            st = self.lag.setdefault(nid, {"max": 0, "grew": 0, "last": None})
            st["max"] = max(st["max"], lag)
            if st["last"] is not None and lag > st["last"] and i not in (1, 2, 3) and published == S:
                st["grew"] += 1
            st["last"] = lag

    def sample_verifier(self):
        p = self.procs.get("verifier")
        if p is None:
            return
        hwm = proc_status(p.pid, "VmHWM")
        if hwm:
            self.peak_rss_kb = max(self.peak_rss_kb, hwm)
        cpu = proc_cpu_seconds(p.pid)
        if cpu is not None:
            self.verifier_cpu[p.pid] = cpu
        # The verifier's main thread (store, decide, answer) until everything was stored: on a CPU, waiting for
        # one, or neither (blocked: fsync, waits), over the wall time it lived.
        if not self.all_stored:
            st = main_thread_schedstat(p.pid)
            if st is not None:
                first = self.main_thread.setdefault(p.pid, {"t0": time.monotonic(), "first": st})
                first.update(t1=time.monotonic(), last=st)

    def harness_cpu(self):
        """CPU seconds so far of each process the benchmark runs besides the verifier (load nodes, watcher),
        by PID: (role, seconds)."""
        out = {}
        for name, p in self.procs.items():
            if name != "verifier":
                cpu = proc_cpu_seconds(p.pid)
                if cpu is not None:
                    out[p.pid] = ("watcher" if name == "watch" else "load_nodes", cpu)
        return out

    def main(self):
        a = self.a
        N, S = a.nodes, a.subjects
        self.verifier_errs, self.peak_rss_kb, self.verifier_cpu, self.lag = [], 0, {}, {}
        self.main_thread, self.all_stored, machine = {}, False, {}
        report = {"nodes": N, "subjects": S, "rate_per_node": a.rate, "load_average_start": loadavg()}
        t_openssl = time.monotonic()
        report["openssl_ed25519_verify_per_s"] = openssl_verify_rate(a.openssl_seconds)
        report["openssl_seconds"] = round(time.monotonic() - t_openssl, 1)

        # Keys: Ed25519 + CURVE per node, CURVE for the verifier and the watcher.
        def keys(d):
            return self.run([a.load_node, "keys", "--dir", d], check=True).stdout.strip()
        self.verifier_pub = keys(os.path.join(self.work, "verifier-keys"))
        watcher_pub = keys(os.path.join(self.work, "watcher"))
        node_pubs = [keys(os.path.join(self.work, f"node{i}")) for i in range(N)]
        report["network"] = self.setup_network()
        self.endpoints = [self.node_endpoints(i) for i in range(N)]

        threshold = a.threshold or N // 2 + 1
        with open(os.path.join(self.work, "policy.toml"), "w") as f:
            f.write(f'threshold = {threshold}\non_conflict = "majority"\n')
            for i in range(N):
                f.write(f'\n[[nodes]]\nid = "node-{i}"\npublic_key = "node{i}/node.key.pem.pub.pem"\n')
        self.query_ep, self.pub_ep = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
        if self.netns:  # the nodes reach nothing of the verifier; it connects out to them
            pass
        with open(os.path.join(self.work, "quorum.toml"), "w") as f:
            f.write(f'policy = "policy.toml"\ndata_dir = "verifier"\n[network]\npublish = "{self.pub_ep}"\n'
                    f'query = "{self.query_ep}"\ncurve_secret_key = "verifier-keys/node.curve.key"\n'
                    f'allowed_clients = ["{watcher_pub}"]\n')
            for i in range(N):
                pub, ctl = self.endpoints[i]
                f.write(f'\n[[nodes]]\nid = "node-{i}"\npublish = "{pub}"\ncontrol = "{ctl}"\n'
                        f'curve_public_key = "{node_pubs[i]}"\n')

        # Nodes pre-sign, then wait for the start file.
        t_prep = time.monotonic()
        for i in range(N):
            self.start_node(i)
        outs = [os.path.join(self.work, f"node{i}", "out.log") for i in range(N)]
        self.wait_for(lambda: all(self.log_has(o, '"event":"ready"') for o in outs) or
                      any(p.poll() is not None for p in self.procs.values()), a.prepare_timeout, "nodes pre-signing")
        dead = [n for n, p in self.procs.items() if p.poll() is not None]
        if dead:
            raise RuntimeError(f"{dead} exited while pre-signing: see {self.work}/node*/err.log")
        report["presign_seconds"] = round(time.monotonic() - t_prep, 2)

        _, _, err1 = self.start_verifier()
        self.wait_for(lambda: self.log_has(err1, "verifier_started") or self.procs["verifier"].poll() is not None,
                      60, "verifier_started")
        if self.procs["verifier"].poll() is not None:
            raise RuntimeError(f"verifier exited: see {err1}")
        watch_out = os.path.join(self.work, "watch.json")
        self.spawn("watch", [a.load_node, "watch", "--dir", os.path.join(self.work, "watcher"), "--decisions",
                             self.pub_ep, "--query", self.query_ep, "--server-key", self.verifier_pub, "--subjects",
                             str(S), "--nodes", str(N), "--rogue", "node-0" if a.rogue else "", "--out", watch_out,
                             "--query-interval-ms", str(a.query_interval_ms)],
                   os.path.join(self.work, "watch.out"), os.path.join(self.work, "watch.err"))
        time.sleep(1.0)  # the first (empty) history answers and the subscriptions settle

        # The clock starts.
        open(os.path.join(self.work, "start"), "w").close()
        t0 = time.monotonic()
        t0_wall = time.time()
        machine["start"] = machine_cpu()
        harness_start = self.harness_cpu()
        fs, gap, part = a.fault_start, a.fault_gap, a.partition_seconds
        stop_s = a.stop_seconds if a.stop_seconds is not None else part
        schedule = []
        if N >= 4 and a.faults:
            schedule = [(fs, "sigstop", 2), (fs + stop_s, "sigcont", 2), (fs + gap, "kill_node", 1),
                        (fs + gap + 1, "restart_node", 1), (fs + 2 * gap, "partition", 3),
                        (fs + 2 * gap + part, "heal", 3), (fs + 3 * gap, "kill_verifier", None),
                        (fs + 3 * gap + 1, "restart_verifier", None)]
        schedule.sort(key=lambda e: e[0])
        stored_samples = []  # (t, count)
        t_all_stored = None
        harness_cpu_s = None  # the load nodes' and the watcher's CPU until everything was stored
        restart = None
        follow = {}
        deadline = t0 + a.timeout
        last_sample = 0
        while time.monotonic() < deadline:
            now = time.monotonic() - t0
            while schedule and schedule[0][0] <= now:
                _, what, i = schedule.pop(0)
                self.fault(what, i, now, follow)
                if what == "restart_verifier":
                    restart = follow
            self.sample_verifier()
            if time.monotonic() - last_sample >= 0.5:
                last_sample = time.monotonic()
                n = self.store_counts(N * S)
                if n is not None:
                    stored_samples.append((now, n))
                    if t_all_stored is None and n >= N * S:
                        t_all_stored = now
                        self.all_stored = True
                        machine["all_stored"] = machine_cpu()
                        # A node killed and restarted counts from its restart only.
                        harness_cpu_s = {"load_nodes": 0.0, "watcher": 0.0}
                        for pid, (role, c) in self.harness_cpu().items():
                            harness_cpu_s[role] += c - harness_start.get(pid, (role, 0.0))[1]
                self.sample_lag(now)
                if restart is not None and "first_new_store_s" not in restart and n is not None and \
                        n > restart.get("stored_at_kill", n):
                    restart["first_new_store_s"] = round(time.monotonic() - restart["t"], 3)
            if restart is not None and "started_s" not in restart and self.log_has(restart["err"], "verifier_started"):
                restart["started_s"] = round(time.monotonic() - restart["t"], 3)
            if restart is not None and "first_decision_s" not in restart and \
                    self.log_has(restart["err"], '"event":"decision"'):
                restart["first_decision_s"] = round(time.monotonic() - restart["t"], 3)
            published = [self.published_all(i) for i in range(N)]
            watch = self.read_json(watch_out)
            if not schedule and all(published) and watch.get("subjects_right", 0) >= S and t_all_stored is not None:
                break
            time.sleep(0.05)
        report["timed_out"] = time.monotonic() >= deadline
        report["run_seconds"] = round(time.monotonic() - t0, 2)
        for what, i, *_ in schedule:
            self.faults.append({"fault": what, "node": i, "skipped": "run ended first"})

        # The answer to every subject, through the query socket.
        check_started_s = time.monotonic() - t0
        check_out = os.path.join(self.work, "check.json")
        check_timeout = max(60, S // 40)
        r = subprocess.run([a.load_node, "check", "--dir", os.path.join(self.work, "watcher"), "--query",
                            self.query_ep, "--server-key", self.verifier_pub, "--subjects", str(S), "--nodes", str(N),
                            "--rogue", "node-0" if a.rogue else "", "--out", check_out, "--timeout",
                            str(check_timeout)], capture_output=True, text=True, timeout=check_timeout + 60)
        check = self.read_json(check_out)
        self.sample_verifier()
        time.sleep(0.6)  # the watcher writes every 500 ms
        self.kill("watch", signal.SIGTERM)
        watch = self.read_json(watch_out)
        vcode = self.kill("verifier", signal.SIGTERM, wait=30)
        node_stats = {}
        for i in range(N):
            self.kill(f"node{i}", signal.SIGTERM)
        for i in range(N):
            for j in json_lines(os.path.join(self.work, f"node{i}", "out.log")):
                if j.get("event") in ("stopped", "published_all"):
                    node_stats.setdefault(i, []).append(j)
        report["load_average_end"] = loadavg()
        after = openssl_verify_rate(a.openssl_seconds)
        report["openssl_ed25519_verify_per_s_after"] = after

        # Figures.
        db = os.path.join(self.work, "verifier", "store.db")
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        stored = c.execute("SELECT count(*) FROM attestations").fetchone()[0]
        distinct = c.execute("SELECT count(DISTINCT node_id || ' ' || commit_id) FROM attestations").fetchone()[0]
        rejections = c.execute("SELECT count(*) FROM rejections").fetchone()[0]
        drows, dbytes = c.execute("SELECT count(*), coalesce(sum(length(decision)), 0) FROM decisions").fetchone()
        abytes = c.execute("SELECT coalesce(sum(length(envelope)), 0) FROM attestations").fetchone()[0]
        page = c.execute("PRAGMA page_size").fetchone()[0] * c.execute("PRAGMA page_count").fetchone()[0]
        c.close()
        store_bytes = sum(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p))
        counters = []
        for err in self.verifier_errs:
            last = None
            for j in json_lines(err):
                if j.get("event") in ("counters", "verifier_stopped"):
                    last = j
            counters.append(last or {})
        live = sum(x.get("live", 0) for x in counters)
        hist = sum(x.get("from_history", 0) for x in counters)
        last_pub_ms = max((j["ms"] for v in node_stats.values() for j in v if j.get("event") == "published_all"),
                          default=None)
        sent_live = sum(max((j.get("sent_live", 0) for j in v if j.get("event") == "stopped"), default=0)
                        for v in node_stats.values())
        cpu = sum(self.verifier_cpu.values())
        last_dec_ms = self.last_decision_ms()
        ingest_window = None
        for k in range(1, len(stored_samples)):
            (ta, na), (tb, nb) = stored_samples[k - 1], stored_samples[k]
            for m in range(k, len(stored_samples)):
                if stored_samples[m][0] - ta >= 60.0:
                    r2 = (stored_samples[m][1] - na) / (stored_samples[m][0] - ta)
                    ingest_window = max(ingest_window or 0, r2)
                    break
        steps = [b[1] - a_[1] for a_, b in zip(stored_samples, stored_samples[1:])]
        raw = report["openssl_ed25519_verify_per_s"]
        # Where the time went until everything was stored: the verifier's main thread (summed over its
        # processes) and the machine (shares of all CPUs' ticks).
        wall = sum(m["t1"] - m["t0"] for m in self.main_thread.values())
        on_cpu = sum(m["last"][0] - m["first"][0] for m in self.main_thread.values())
        runnable = sum(m["last"][1] - m["first"][1] for m in self.main_thread.values())
        time_split = {}
        if harness_cpu_s is not None:
            # The load nodes and the watcher stand for machines of their own: what they take here is taken
            # from the verifier.
            time_split["harness_cpu_s"] = {k: round(v, 2) for k, v in harness_cpu_s.items()}
        if wall > 0:
            time_split["verifier_main_thread"] = {
                "wall_s": round(wall, 1), "on_cpu": round(on_cpu / wall, 3), "waiting_for_cpu": round(runnable / wall, 3),
                "blocked": round(max(0.0, wall - on_cpu - runnable) / wall, 3)}
        if "all_stored" in machine:
            d = {k: machine["all_stored"][k] - machine["start"][k] for k in machine["start"]}
            total = sum(d.values()) or 1
            time_split["machine"] = {"busy": round((total - d["idle"] - d["iowait"]) / total, 3),
                                     "idle": round(d["idle"] / total, 3), "iowait": round(d["iowait"] / total, 3),
                                     "system": round((d["system"] + d["irq"] + d["softirq"]) / total, 3)}
        report.update({
            "time_split_until_all_stored": time_split,
            "faults": self.faults,
            "decisions": {"right": check.get("right"), "wrong": check.get("wrong"), "missing": check.get("missing"),
                          "partial": check.get("partial"), "rogue_dissents": check.get("rogue_dissents"),
                          "max_revision": check.get("max_revision"), "examples": check.get("examples")},
            "attestations": {"expected": N * S, "stored": stored, "distinct": distinct, "lost": N * S - distinct,
                             "duplicated": stored - distinct, "rejections": rejections,
                             "published_live_sends": sent_live},
            "ingest": {"all_stored_after_s": t_all_stored,
                       "wall_per_s": round(N * S / t_all_stored, 1) if t_all_stored else None,
                       "best_60s_window_per_s": round(ingest_window, 1) if ingest_window else None,
                       "verifier_cpu_s": round(cpu, 2),
                       "largest_store_step": max(steps, default=0),
                       "per_verifier_cpu_s": round(stored / cpu, 1) if cpu else None},
            "last_publish_to_last_decision_s": round((last_dec_ms - last_pub_ms) / 1000, 3)
            if last_pub_ms and last_dec_ms else None,
            "last_publish_to_last_subscribed_decision_s":
            round((watch.get("last_decision_ms", 0) - last_pub_ms) / 1000, 3)
            if last_pub_ms and watch.get("last_decision_ms") else None,
            "last_decision_s": round(last_dec_ms / 1000 - t0_wall, 3) if last_dec_ms else None,
            "last_publish_s": round(last_pub_ms / 1000 - t0_wall, 3) if last_pub_ms else None,
            "peak_rss_mb": round(self.peak_rss_kb / 1024, 1),
            "history_share": round(hist / (live + hist), 3) if live + hist else None,
            "delivered": {"live": live, "from_history": hist},
            "store": {"decision_rows": drows, "decision_bytes": dbytes, "attestation_envelope_bytes": abytes,
                      "file_bytes": store_bytes, "db_pages_bytes": page,
                      "decision_share": round(dbytes / page, 3) if page else None},
            "watch": {k: watch.get(k) for k in ("decisions_seen", "subjects_right", "wrong_seen",
                                                "revisions_not_increasing", "revision_conflicts", "query_p50_ms", "query_p99_ms",
                                                "query_max_ms", "queries_answered", "query_timeouts", "examples")},
            "queries_during_run": self.queries_in_run(watch.get("query_samples", []), t0_wall, check_started_s),
            "queries_while_verifier_up": self.queries_while_up(watch.get("query_samples", []), t0, t0_wall, restart,
                                                               check_started_s),
            "queries_after_restart_answered": self.queries_while_up(watch.get("query_samples", []), t0, t0_wall,
                                                                    restart, check_started_s, "first_decision_s"),
            "queries_from_connection": self.queries_from_connection(watch.get("query_samples", []),
                                                                    watch.get("query_connection_events", []),
                                                                    t0_wall, check_started_s),
            "verifier_restart": {k: v for k, v in (restart or {}).items() if k not in ("t", "err")},
            "stored_samples": [[round(t, 2), n] for t, n in stored_samples],
            "verifier_exit": vcode,
            "lag": {"max_over_nodes": max((v["max"] for v in self.lag.values()), default=None),
                    "worst_nodes": sorted(((v["max"], k) for k, v in self.lag.items()), reverse=True)[:3],
                    "unfaulted_growth_after_publishing": sum(v["grew"] for v in self.lag.values())},
        })
        if raw:
            report["ingest"]["wall_vs_raw"] = round(report["ingest"]["wall_per_s"] / raw, 3) if t_all_stored else None
            if ingest_window:
                report["ingest"]["best_window_vs_raw"] = round(ingest_window / raw, 3)
            if cpu:
                report["ingest"]["per_cpu_vs_raw"] = round(stored / cpu / raw, 3)
        return report

    @staticmethod
    def latency_summary(latencies, **extra):
        kept = sorted(latencies)

        def pct(q):
            return round(kept[min(len(kept) - 1, int(q * (len(kept) - 1) + 0.5))], 3) if kept else None  # as load_node
        return dict(extra, counted=len(kept), p50_ms=pct(0.5), p99_ms=pct(0.99), max_ms=kept[-1] if kept else None)

    def queries_in_run(self, samples, t0_wall, end_s):
        """The watcher's queries sent during the run (before `end_s`, when the check of every subject starts: its
        10,000 queries share the verifier's query socket with the watcher's and are not part of the run)."""
        return self.latency_summary([lat for sent_ms, lat in samples if sent_ms / 1000 - t0_wall < end_s],
                                    until_s=round(end_s, 3))

    def queries_from_connection(self, samples, events, t0_wall, end_s):
        """Query latency during the run counted from when the query could reach the verifier: a query sent while
        the watcher's query connection was down (the verifier killed, or not accepting yet) is counted from when the
        connection came up again (its libzmq socket monitor, read every 5 ms at most), not from when it was sent.
        What is left is the time the verifier took; the rest is this client's reconnect interval. A query lost with
        the killed verifier (sent while the connection was up) counts from its first send: the watcher sends it
        again once the connection is back, as wire::QueryClient does; unanswered after 10 s, it counts 10 s."""
        events = sorted((ms, what) for ms, what in events)
        if not samples or not events:
            return None
        kept, waited = [], []
        for sent_ms, latency in samples:
            if sent_ms / 1000 - t0_wall >= end_s:
                continue
            state = None
            for ms, what in events:
                if ms > sent_ms:
                    break
                state = what
            if state == "down" and latency < 10000:
                up = next((ms for ms, what in events if ms > sent_ms and what == "up"), None)
                if up is not None and up <= sent_ms + latency:
                    waited.append(up - sent_ms)
                    latency = sent_ms + latency - up
            kept.append(latency)
        outages = []
        down = None
        for ms, what in events:
            if what == "down" and down is None:
                down = ms
            elif what == "up" and down is not None:
                outages.append([round(down / 1000 - t0_wall, 3), round(ms / 1000 - t0_wall, 3)])
                down = None
        return self.latency_summary(kept, outages_s=outages, waited_for_connection=len(waited),
                                    longest_connection_wait_ms=max(waited, default=None))

    def queries_while_up(self, samples, t0, t0_wall, restart, end_s, until="started_s"):
        """Query latency during the run without the queries outstanding while the verifier was down: from its
        SIGKILL until the restarted one logged verifier_started (`until` "started_s"), or published its first
        decision ("first_decision_s": it had started its loop, reconnected and answered). Those wait for a process
        that does not exist or is starting (or are lost with it and time out after 10 s); the rest measure how
        fast a running verifier answers."""
        kill = next((f["at_s"] for f in self.faults if f["fault"] == "kill_verifier"), None)
        if kill is None or not samples:
            return None
        up = restart["t"] - t0 + restart[until] if restart and until in restart else None
        kept, dropped = [], 0
        for sent_ms, latency in samples:
            start = sent_ms / 1000 - t0_wall
            if start >= end_s:
                continue
            if up is None or (start <= up and start + latency / 1000 >= kill):
                dropped += 1
            else:
                kept.append(latency)
        return self.latency_summary(kept, down_from_s=kill, down_until_s=round(up, 3) if up is not None else None,
                                    excluded=dropped)

    def published_all(self, i):
        """Whether node i has published (or, restarted after its last reservation, can serve) everything."""
        if i in self.events:
            return True
        for j in json_lines(os.path.join(self.work, f"node{i}", "out.log")):
            if j.get("event") == "published_all" or (j.get("event") == "ready" and
                                                     j.get("resumed_at") == self.a.subjects):
                self.events[i] = True
                return True
        return False

    def last_decision_ms(self):
        """The time of the verifier's last `decision` log line, over both verifier processes (ms since epoch)."""
        last = None
        for err in self.verifier_errs:
            for j in json_lines(err):
                if j.get("event") == "decision" and "ts" in j:
                    t = datetime.datetime.strptime(j["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                        tzinfo=datetime.timezone.utc)
                    ms = int(t.timestamp() * 1000)
                    last = ms if last is None else max(last, ms)
        return last

    def read_json(self, path):
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def fault(self, what, i, now, follow):
        rec = {"fault": what, "node": i, "at_s": round(now, 2)}
        if what == "sigstop":
            os.kill(self.procs[f"node{i}"].pid, signal.SIGSTOP)
        elif what == "sigcont":
            os.kill(self.procs[f"node{i}"].pid, signal.SIGCONT)
        elif what == "kill_node":
            rec["exit"] = self.kill(f"node{i}", signal.SIGKILL)
        elif what == "restart_node":
            self.start_node(i)
        elif what == "partition":
            rec["how"] = self.partition(i, True)
            if rec["how"] is None:
                rec["skipped"] = "not root or no iptables: no partition under loopback"
        elif what == "heal":
            rec["how"] = self.partition(i, False)
        elif what == "kill_verifier":
            self.sample_verifier()
            rec["exit"] = self.kill("verifier", signal.SIGKILL)
            follow["stored_at_kill"] = self.store_counts() or 0
        elif what == "restart_verifier":
            _, t, err = self.start_verifier()
            follow.update({"t": t, "err": err})  # the main loop watches it start (no blocking wait here)
        self.faults.append(rec)


def print_report(r):
    d, at, ing, st, w = r["decisions"], r["attestations"], r["ingest"], r["store"], r["watch"]
    print(f"scale: {r['nodes']} nodes x {r['subjects']} subjects, rate/node {r['rate_per_node'] or 'burst'}, "
          f"network: {r['network']}")
    print(f"load average: start {r['load_average_start']}, end {r['load_average_end']}")
    print("faults: " + "; ".join(f"{f['fault']}({f['node']})@{f.get('at_s')}s" + (f" [{f['skipped']}]" if
                                  f.get("skipped") else "") for f in r["faults"]))
    print(f"decisions: right {d['right']} wrong {d['wrong']} missing {d['missing']} partial {d['partial']}; "
          f"rogue named as dissenter in {d['rogue_dissents']}; max revision {d['max_revision']}")
    print(f"attestations: expected {at['expected']} stored {at['stored']} lost {at['lost']} duplicated "
          f"{at['duplicated']} rejected {at['rejections']} (live sends by nodes: {at['published_live_sends']})")
    print(f"ingest: all stored {ing['all_stored_after_s']} s after start; {ing['wall_per_s']}/s wall, best 60 s "
          f"window {ing['best_60s_window_per_s']}/s, {ing['per_verifier_cpu_s']}/verifier-CPU-s "
          f"({ing['verifier_cpu_s']} CPU s); largest jump of the stored count between two samples 0.5 s apart "
          f"{ing['largest_store_step']}; openssl ed25519 verify {r['openssl_ed25519_verify_per_s']}/s before "
          f"({r.get('openssl_ed25519_verify_per_s_after')}/s after the run); ratios to the before figure: "
          f"wall {ing.get('wall_vs_raw')}, window {ing.get('best_window_vs_raw')}, per CPU {ing.get('per_cpu_vs_raw')}")
    ts = r.get("time_split_until_all_stored") or {}
    if ts:
        mt, m = ts.get("verifier_main_thread"), ts.get("machine")
        print("until all stored: " + "; ".join(filter(None, [
            f"verifier main thread on a CPU {mt['on_cpu']}, waiting for a CPU {mt['waiting_for_cpu']}, blocked "
            f"(fsync, waits) {mt['blocked']} of {mt['wall_s']} s" if mt else None,
            f"machine busy {m['busy']} (system {m['system']}), idle {m['idle']}, iowait {m['iowait']}" if m else None,
            f"CPU s of the load nodes {ts['harness_cpu_s']['load_nodes']}, of the watcher "
            f"{ts['harness_cpu_s']['watcher']}" if "harness_cpu_s" in ts else None])))
    print(f"last publish at {r['last_publish_s']} s, last decision at {r['last_decision_s']} s (verifier log): "
          f"last publish -> last decision {r['last_publish_to_last_decision_s']} s (as the subscriber saw it: "
          f"{r['last_publish_to_last_subscribed_decision_s']} s)")
    print(f"verifier peak RSS {r['peak_rss_mb']} MB; history share {r['history_share']} "
          f"(live {r['delivered']['live']}, history {r['delivered']['from_history']})")
    print(f"store: {st['decision_rows']} decision rows, {st['decision_bytes']} decision bytes = "
          f"{st['decision_share']} of {st['db_pages_bytes']} database bytes (files {st['file_bytes']})")
    print(f"subscriber: {w['decisions_seen']} decisions, revisions not increasing {w['revisions_not_increasing']}, "
          f"one revision with two contents {w['revision_conflicts']}, "
          f"wrong seen {w['wrong_seen']}; queries {w['queries_answered']} answered, p50 {w['query_p50_ms']} ms, "
          f"p99 {w['query_p99_ms']} ms, max {w['query_max_ms']} ms, timeouts {w['query_timeouts']} (with the check "
          f"of every subject after the run)")
    q = r.get("queries_during_run")
    if q:
        print(f"queries during the run (sent before the check at {q['until_s']} s): {q['counted']}, p50 {q['p50_ms']} ms, "
              f"p99 {q['p99_ms']} ms, max {q['max_ms']} ms")
    q = r.get("queries_while_verifier_up")
    if q:
        print(f"queries while the verifier was up (without the {q['excluded']} outstanding between its SIGKILL at "
              f"{q['down_from_s']} s and the restarted verifier's start at {q['down_until_s']} s): {q['counted']}, "
              f"p50 {q['p50_ms']} ms, p99 {q['p99_ms']} ms, max {q['max_ms']} ms")
    q = r.get("queries_after_restart_answered")
    if q:
        print(f"queries outside the restart (without the {q['excluded']} outstanding between the SIGKILL and the "
              f"restarted verifier's first decision at {q['down_until_s']} s): {q['counted']}, p50 {q['p50_ms']} ms, "
              f"p99 {q['p99_ms']} ms, max {q['max_ms']} ms")
    q = r.get("queries_from_connection")
    if q:
        print(f"queries during the run counted from when their connection was up (the watcher's query connection "
              f"was down {q['outages_s']}; {q['waited_for_connection']} queries waited for it, at most "
              f"{q['longest_connection_wait_ms']} ms): {q['counted']}, p50 {q['p50_ms']} ms, p99 {q['p99_ms']} ms, "
              f"max {q['max_ms']} ms")
    print(f"restarted verifier: {r['verifier_restart']}")
    print(f"lag (published - verifier cursor, every 2 s): max {r['lag']['max_over_nodes']}, worst "
          f"{r['lag']['worst_nodes']}; times an unfaulted node's lag grew after it stopped publishing: "
          f"{r['lag']['unfaulted_growth_after_publishing']}")
    print(f"run {r['run_seconds']} s{' (TIMED OUT)' if r['timed_out'] else ''}; pre-sign {r['presign_seconds']} s")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.path.join(HERE, "..", "build"), help="the CMake build directory")
    p.add_argument("--quorate", help="the quorate binary (default BUILD/cli/quorate)")
    p.add_argument("--load-node", help="the load_node binary (default BUILD/bench/load_node)")
    p.add_argument("--nodes", type=int, default=10)
    p.add_argument("--subjects", type=int, default=500)
    p.add_argument("--rate", type=int, default=0, help="attestations per second per node; 0: burst")
    p.add_argument("--threshold", type=int, default=0, help="policy k; default nodes/2 + 1")
    p.add_argument("--no-rogue", dest="rogue", action="store_false")
    p.add_argument("--no-faults", dest="faults", action="store_false")
    p.add_argument("--fault-start", type=float, default=1.0)
    p.add_argument("--fault-gap", type=float, default=1.0)
    p.add_argument("--partition-seconds", type=float, default=30.0)
    p.add_argument("--stop-seconds", type=float, default=None, help="SIGSTOP length; default the partition's")
    p.add_argument("--node-nice", type=int, default=19,
                   help="the load nodes' nice value (they stand for other machines: 19 gives the verifier and the "
                        "watcher the CPU first; 0: equal shares)")
    p.add_argument("--netns", choices=["auto", "on", "off"], default="auto")
    p.add_argument("--openssl-seconds", type=int, default=3)
    p.add_argument("--query-interval-ms", type=int, default=20)
    p.add_argument("--prepare-timeout", type=float, default=900)
    p.add_argument("--timeout", type=float, default=900, help="bound on the run after the clock starts")
    p.add_argument("--work", help="work directory (default: a new temporary one, removed unless --keep)")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--json", help="write the report here too")
    a = p.parse_args()
    a.quorate = a.quorate or os.path.join(a.build, "cli", "quorate")
    a.load_node = a.load_node or os.path.join(a.build, "bench", "load_node")
    for b in (a.quorate, a.load_node):
        if not os.access(b, os.X_OK):
            sys.exit(f"not executable: {b} (ninja -C build -j1 quorate load_node)")
    bench = Bench(a)

    def on_signal(sig, _):
        raise KeyboardInterrupt(f"signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)
    code = 2
    try:
        r = bench.main()
        print_report(r)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(r, f, indent=1, sort_keys=True)
        ok = (r["decisions"]["wrong"] == 0 and r["decisions"]["missing"] == 0 and r["decisions"]["partial"] == 0
              and r["attestations"]["lost"] == 0
              and r["attestations"]["duplicated"] == 0)
        code = 0 if ok else 1
    finally:
        bench.kill_all()
        if not a.keep and not a.work:
            shutil.rmtree(bench.work, ignore_errors=True)
        elif a.keep:
            print(f"work directory kept: {bench.work}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
