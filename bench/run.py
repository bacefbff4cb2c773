#!/usr/bin/env python3
"""bench/run.py -- sockserv measured side by side with CPython socketserver,
standalone Asio and hand-written C, in one run, as ratios.

    python3 bench/run.py            the full matrix -> bench/RESULTS.md, bench/throughput.svg
    python3 bench/run.py --quick    the target cells only, short runs -> build/bench/quick/
    options: --reps N --duration S --warmup S --only SCENARIO[:CLIENTS] --no-pin --out DIR

`make bench` / `make bench-quick` install the dev dependencies (bench/setup.sh),
build the examples and run this. Needs only python3's standard library.
The method is written into RESULTS.md itself (see METHOD below).
"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
BUILD = os.path.join(ROOT, "build", "bench")
# echo_server built for the benchmark, -O2 with g++ as the C floors are
# built -O2 with gcc (the project's default build is -O0 -g, for the tests).
SOCKSERV_BUILD = os.path.join(BUILD, "sockserv")
ECHO_SERVER = os.path.join(SOCKSERV_BUILD, "examples", "echo_server")
OPTIMISED_MAKE = ["make", "-s", "-C", ROOT, "CXX=" + os.environ.get("CXX", "g++"), "OPTIMIZE=-O2"]
# The same program linked with -static (glibc), for the like-for-like fork
# comparison: fork and exit cost grows with the number of mappings.
STATIC_ECHO_SERVER = os.path.join(BUILD, "static", "examples", "echo_server")
PYTHON = sys.executable or "python3"
BACKLOG = 1024          # every server listens with this backlog
LINE = 64               # bytes per request line / datagram
CLIENT_COUNTS = [1, 16, 64, 1000]
SERVER_CPU, CLIENT_CPU = "1", "0"
PRIORITY = 0            # autogroup nice of the benchmark and each server (set by main)

# ---------------------------------------------------------------- servers --

SCENARIOS = {
    # key: (family, mode, title)
    "tcp-echo": ("tcp", "echo", "TCP echo (persistent connections, one 64-byte line out and back)"),
    "tcp-once": ("tcp", "once", "TCP once (connect, one line, upper-cased reply, close)"),
    "udp": ("udp", "echo", "UDP echo (one 64-byte datagram out and back)"),
    "unix-echo": ("unix", "echo", "Unix stream echo (persistent connections, 64-byte lines)"),
}


class Server:
    def __init__(self, key, group, argv, python_policy=None):
        self.key, self.group, self.argv, self.python_policy = key, group, argv, python_policy

    def label(self, family=None):
        if self.group != "CPython" or family is None:
            return self.key
        base = {"tcp": "TCPServer", "udp": "UDPServer", "unix": "UnixStreamServer",
                "unix-dgram": "UnixDatagramServer"}[family]
        prefix = {"sync": "", "threading": "Threading", "forking": "Forking"}[self.python_policy]
        return "CPython " + prefix + base

    def command(self, family, mode, address):
        return self.argv + ["--family", family, "--listen", address, "--mode", mode, "--backlog", str(BACKLOG)]


def sockserv(policy, *extra):
    return [ECHO_SERVER, "--policy", policy, *extra]


SERVERS = {s.key: s for s in [
    Server("sockserv sync", "sockserv", sockserv("sync")),
    Server("sockserv threading", "sockserv", sockserv("threading-64")),
    Server("sockserv forking", "sockserv", sockserv("forking")),
    Server("sockserv event", "sockserv", sockserv("event", "--poller", "epoll")),
    Server("sockserv forking, static", "sockserv", [STATIC_ECHO_SERVER, "--policy", "forking"]),
    Server("C blocking", "C", [os.path.join(BUILD, "c_block")]),
    Server("C thread", "C", [os.path.join(BUILD, "c_thread")]),
    Server("C fork", "C", [os.path.join(BUILD, "c_fork")]),
    Server("C fork, static", "C", [os.path.join(BUILD, "c_fork-static")]),
    Server("C epoll", "C", [os.path.join(BUILD, "c_epoll")]),
    Server("C recvfrom", "C", [os.path.join(BUILD, "c_dgram")]),
    Server("Asio", "Asio", [os.path.join(BUILD, "asio_server")]),
    Server("CPython sync", "CPython", [PYTHON, os.path.join(BENCH, "ref", "py_server.py"), "--policy", "sync"], "sync"),
    Server("CPython threading", "CPython",
           [PYTHON, os.path.join(BENCH, "ref", "py_server.py"), "--policy", "threading"], "threading"),
    Server("CPython forking", "CPython",
           [PYTHON, os.path.join(BENCH, "ref", "py_server.py"), "--policy", "forking"], "forking"),
]}
SOCKSERV = ["sockserv sync", "sockserv threading", "sockserv forking", "sockserv event", "sockserv forking, static"]

# Which server runs where, and for which client counts. A cell is left out
# where the model cannot serve that many clients at once (see NOT_MEANINGFUL).
PERSISTENT = {
    "sockserv sync": [1], "sockserv threading": [1, 16, 64], "sockserv forking": [1, 16],
    "sockserv event": [1, 16, 64, 1000],
    "C blocking": [1], "C thread": [1, 16, 64, 1000], "C fork": [1, 16], "C epoll": [1, 16, 64, 1000],
    "Asio": [1, 16, 64, 1000],
    "CPython sync": [1], "CPython threading": [1, 16, 64, 1000], "CPython forking": [1, 16],
}
ONCE = [1, 16, 64]
PER_CONNECTION = {k: ONCE for k in [
    "sockserv sync", "sockserv threading", "sockserv forking", "sockserv forking, static", "sockserv event",
    "C blocking", "C thread", "C fork", "C fork, static", "C epoll", "Asio",
    "CPython sync", "CPython threading", "CPython forking"]}
MATRIX = {
    "tcp-echo": PERSISTENT,
    "tcp-once": PER_CONNECTION,
    "udp": {"sockserv sync": [1, 16, 64], "sockserv threading": [16], "sockserv event": [1, 16, 64],
            "C recvfrom": [1, 16, 64], "Asio": [1, 16, 64], "CPython sync": [1, 16, 64],
            "CPython threading": [16]},
    "unix-echo": PERSISTENT,
}
QUICK_MATRIX = {
    "tcp-echo": {"sockserv threading": [64], "sockserv event": [64], "C epoll": [64], "Asio": [64],
                 "CPython threading": [64]},
    "tcp-once": {"sockserv sync": [16], "sockserv threading": [16], "sockserv forking": [16],
                 "sockserv forking, static": [16], "C blocking": [16], "C fork": [16], "C fork, static": [16],
                 "CPython forking": [16]},
    "udp": {"sockserv sync": [16], "C recvfrom": [16], "CPython sync": [16]},
}
NOT_MEANINGFUL = [
    "sync and C blocking serve one connection at a time: with persistent connections a second client "
    "waits until the first closes, so they run with 1 client only.",
    "threading is run as `threading<64>` (`echo_server --policy threading-64`): a fixed pool of 64 "
    "workers, each owning one persistent connection, so 1000 persistent clients cannot all be served "
    "(the rest wait in the listen backlog). CPython's ThreadingMixIn starts a thread per connection "
    "and is run at 1000 as a reference point.",
    "forking (sockserv and CPython) allows `max_children = 40` children: persistent connections run up "
    "to 16 clients. The C fork floor has no limit but is run at the same counts.",
    "tcp once and udp stop at 64 clients: with a connection (or datagram) per request, 1000 closed-loop "
    "clients measure the accept queue and socket buffers, not the server.",
]

TARGETS = [
    # scenario, clients, sockserv server, reference, minimum ratio
    ("tcp-echo", 64, "sockserv event", "C epoll", 0.95),
    ("tcp-echo", 64, "sockserv event", "Asio", 1.0),
    ("tcp-echo", 64, "sockserv threading", "CPython threading", 3.0),
    ("tcp-once", 16, "sockserv sync", "C blocking", 0.95),
    ("tcp-once", 16, "sockserv forking", "C fork", 0.9),
    ("tcp-once", 16, "sockserv forking", "CPython forking", 5.0),
    ("tcp-once", 16, "sockserv threading", "C blocking", 0.9),
    ("udp", 16, "sockserv sync", "C recvfrom", 0.95),
]
# Pairs shown in the ratio tables (besides the targets): each sockserv
# policy against the reference that does the same thing.
COUNTERPARTS = {
    "sockserv sync": ["C blocking", "C recvfrom", "CPython sync"],
    "sockserv threading": ["C thread", "C blocking", "CPython threading"],
    "sockserv forking": ["C fork", "CPython forking"],
    "sockserv forking, static": ["C fork, static"],
    "sockserv event": ["C epoll", "Asio", "C recvfrom"],
}

# ------------------------------------------------------------- utilities --


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def pin(cpu, argv, enabled):
    return (["taskset", "-c", cpu] + argv) if enabled and shutil.which("taskset") else argv


def read_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmHWM", "VmRSS"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def cpu_seconds(pid):
    """utime + stime of the process (all its threads) and of its reaped children."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def children_of(pid):
    kids = []
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                kids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return kids


def pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def socket_inodes(pid):
    found = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if target.startswith("socket:"):
                found.add(target)
    except OSError:
        pass
    return found


def raise_priority(nice):
    """Gives the benchmark's scheduling autogroup (its session: this script and
    the load generator; each server gets its own, set the same way) the nice
    value `nice`. With autogroups on
    (Linux's default), the CPU is shared between sessions first, so another
    session's compile jobs on this shared machine would otherwise take half of
    the server's core whatever its own nice value. Needs root or CAP_SYS_NICE."""
    if not nice:
        return "not raised (--priority 0)"
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(nice))
        return "session autogroup at nice %d" % nice
    except OSError:
        try:
            os.nice(nice)
            return "process nice %d (no autogroup)" % nice
        except OSError:
            return "not raised (no permission)"


class Running:
    """A server in its own process group, stopped by that group's id."""

    def __init__(self, argv, workdir, env=None, pinned=True):
        self.out = open(os.path.join(workdir, "server.out"), "w+")
        self.err = open(os.path.join(workdir, "server.err"), "w+")
        # Its own session: stopped as a process group (forked children too),
        # and its own scheduling autogroup, raised like the benchmark's (see
        # raise_priority). Sharing the load generator's autogroup would not do:
        # the group's weight is split by its CPUs' load, and the load generator
        # keeps its CPU busier than a server with many sleeping threads does.
        self.proc = subprocess.Popen(pin(SERVER_CPU, argv, pinned), stdout=self.out, stderr=self.err,
                                     stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        if PRIORITY:
            try:
                with open("/proc/%d/autogroup" % self.proc.pid, "w") as f:
                    f.write(str(PRIORITY))
            except OSError:
                pass
        self.address = None
        deadline = time.time() + 15
        while time.time() < deadline:
            self.out.seek(0)
            m = re.search(r"listening on (\S+)", self.out.read())
            if m:
                self.address = m.group(1)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        self.err.seek(0)
        why = self.err.read()[-500:]  # before stop(), which closes the file
        self.stop()
        raise RuntimeError("server did not start: %s: %s" % (" ".join(argv), why))

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        try:  # forked children of a server that already exited
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.out.close()
        self.err.close()


def listen_address(family, workdir, n):
    if family in ("unix", "unix-dgram"):
        return os.path.join(workdir, "s%d.sock" % n)
    return "127.0.0.1:0"


def loadgen(args, family, mode, address, clients, warmup, duration, pinned, sample=None):
    argv = pin(CLIENT_CPU, [os.path.join(BUILD, "loadgen"), "--family", family, "--connect", address,
                            "--mode", mode, "--clients", str(clients), "--size", str(LINE),
                            "--warmup", str(warmup), "--duration", str(duration)], pinned)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + warmup + duration + 30
    while proc.poll() is None:
        if sample:
            sample()
        if time.time() > deadline:
            proc.kill()
        time.sleep(0.1)
    out, err = proc.communicate()
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"rps": 0.0, "errors": -1, "failure": (err or out)[-300:]}


# --------------------------------------------------------------- building --

def build(args):
    os.makedirs(BUILD, exist_ok=True)
    log("building echo_server and the benchmark programs ...")
    run(OPTIMISED_MAKE + ["BUILD=" + SOCKSERV_BUILD, ECHO_SERVER])
    cxx = os.environ.get("CXX", "g++")
    cc = os.environ.get("CC", "gcc")
    jobs = [
        [cxx, "-std=c++17", "-O2", "-Wall", "-Wextra", "-o", os.path.join(BUILD, "loadgen"),
         os.path.join(BENCH, "loadgen.cpp")],
        [cxx, "-std=c++17", "-O2", "-Wall", "-Wextra", "-pthread", "-o", os.path.join(BUILD, "asio_server"),
         os.path.join(BENCH, "ref", "asio_server.cpp")],
        [cxx, "-std=c++17", "-O2", "-Wall", "-Wextra", "-pthread", "-I", os.path.join(ROOT, "include"),
         "-o", os.path.join(BUILD, "shutdown_latency"), os.path.join(BENCH, "shutdown_latency.cpp")],
        [cc, "-O2", "-Wall", "-Wextra", "-shared", "-fPIC", "-o", os.path.join(BUILD, "alloc_count.so"),
         os.path.join(BENCH, "alloc_count.c")],
    ]
    for name in ("c_block", "c_thread", "c_fork", "c_epoll", "c_dgram"):
        jobs.append([cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-pthread", "-o", os.path.join(BUILD, name),
                     os.path.join(BENCH, "ref", name + ".c")])
    jobs.append([cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-static", "-o", os.path.join(BUILD, "c_fork-static"),
                 os.path.join(BENCH, "ref", "c_fork.c")])
    jobs.append(OPTIMISED_MAKE + ["BUILD=build/bench/static", "LDFLAGS=-static",
                 os.path.relpath(STATIC_ECHO_SERVER, ROOT)])
    build_jobs(jobs)


def build_jobs(jobs):
    """Runs the build commands two at a time (the machine has two cores)."""
    procs = []
    for job in jobs:
        procs.append(subprocess.Popen(job))
        if len(procs) == 2:
            for p in procs:
                if p.wait() != 0:
                    sys.exit("build failed: %s" % " ".join(p.args))
            procs = []
    for p in procs:
        if p.wait() != 0:
            sys.exit("build failed: %s" % " ".join(p.args))


def probe_event_policy():
    """True if echo_server has --policy event (another engineer's policy)."""
    try:
        p = subprocess.run([ECHO_SERVER, "--policy", "event"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "unknown policy" not in p.stderr


# ------------------------------------------------------------ throughput --

def throughput(args, matrix, workdir, available):
    """Runs every cell: for each (scenario, clients), `reps` rounds; in each
    round every server of the cell runs once, sockserv and references
    alternating, the order rotated from round to round."""
    results = {}  # (scenario, clients, server) -> list of run dicts
    cells = []
    for scenario, servers in matrix.items():
        counts = sorted({n for ns in servers.values() for n in ns})
        for n in counts:
            if args.only and not any(o == scenario or o == "%s:%d" % (scenario, n) for o in args.only):
                continue
            names = [s for s, ns in servers.items() if n in ns]
            cells.append((scenario, n, names))
    done = 0
    started = time.time()
    target_cells = {(t[0], t[1]) for t in TARGETS}
    rounds = lambda scenario, n: max(args.reps, args.target_reps if (scenario, n) in target_cells else 0)
    total = sum(len(names) * rounds(scenario, n) for scenario, n, names in cells)
    for scenario, n, names in cells:
        family, mode, _ = SCENARIOS[scenario]
        ours = [s for s in names if s in SOCKSERV]
        refs = [s for s in names if s not in SOCKSERV]
        for rep in range(rounds(scenario, n)):
            a = ours[rep % len(ours):] + ours[:rep % len(ours)] if ours else []
            b = refs[rep % len(refs):] + refs[:rep % len(refs)] if refs else []
            order = []
            for i in range(max(len(a), len(b))):
                order += a[i:i + 1] + b[i:i + 1]
            for name in order:
                done += 1
                if name not in available:
                    results.setdefault((scenario, n, name), []).append({"unavailable": available_reason(name)})
                    continue
                r = one_run(args, SERVERS[name], family, mode, n, workdir, done)
                results.setdefault((scenario, n, name), []).append(r)
                eta = (time.time() - started) / done * (total - done)
                log("[%3d/%d] %-9s %4d  %-20s %9.0f req/s  p99 %7.0f us  err %s   (eta %.0f s)" % (
                    done, total, scenario, n, name, r.get("rps", 0), r.get("p99_us", 0), r.get("errors"), eta))
    return results


def available_reason(name):
    return "n/a (policy not built yet)" if name == "sockserv event" else "n/a"


def one_run(args, server, family, mode, clients, workdir, n):
    address = listen_address(family, workdir, n)
    try:
        srv = Running(server.command(family, mode, address), workdir, pinned=args.pin)
    except RuntimeError as e:
        log(str(e))
        return {"rps": 0.0, "errors": -1, "failure": str(e)[:300]}
    peak_children = [0, 0]  # PSS sum (KiB), count

    def sample():
        kids = children_of(srv.pid)
        if kids:
            peak_children[0] = max(peak_children[0], sum(pss_kib(k) for k in kids))
            peak_children[1] = max(peak_children[1], len(kids))

    try:
        cpu0 = cpu_seconds(srv.pid)
        r = loadgen(args, family, mode, srv.address, clients, args.warmup, args.duration, args.pin,
                    sample if "fork" in server.key else None)
        cpu1 = cpu_seconds(srv.pid)
        # Server CPU per request, warm-up included. Not for forking servers:
        # a child's time reaches the parent only when it is waited for, and
        # the C floor never waits (its children are reaped by the kernel).
        if cpu0 is not None and cpu1 is not None and r.get("all_requests") and "fork" not in server.key:
            r["cpu_us"] = (cpu1 - cpu0) / r["all_requests"] * 1e6
        status = read_status(srv.pid)
        r["vmhwm_kib"] = status.get("VmHWM", 0)
        r["children_pss_kib"], r["children"] = peak_children
        if srv.proc.poll() is not None:
            r["server_exit"] = srv.proc.returncode
    finally:
        srv.stop()
        if address.startswith("/") and os.path.exists(address):
            os.unlink(address)
    return r


# ---------------------------------------------------------------- memory --

IDLE_SERVERS = ["sockserv sync", "sockserv threading", "sockserv forking", "sockserv event", "C blocking",
                "C thread", "C fork", "C epoll", "Asio", "CPython sync", "CPython threading", "CPython forking"]


def idle_memory(args, workdir, available, clients):
    """Each stream server holding `clients` idle TCP connections."""
    out = {}
    for i, name in enumerate(IDLE_SERVERS):
        if name not in available:
            out[name] = {"unavailable": available_reason(name)}
            continue
        server = SERVERS[name]
        srv = Running(server.command("tcp", "echo", "127.0.0.1:0"), workdir, pinned=args.pin)
        try:
            before = read_status(srv.pid).get("VmRSS", 0)
            argv = pin(CLIENT_CPU, [os.path.join(BUILD, "loadgen"), "--family", "tcp", "--connect", srv.address,
                                    "--mode", "idle", "--clients", str(clients), "--timeout", "5",
                                    "--duration", "60"], args.pin)
            gen = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
            line = gen.stdout.readline()
            time.sleep(1.0)  # let the server accept what it will
            status = read_status(srv.pid)
            kids = children_of(srv.pid)
            sockets = socket_inodes(srv.pid)
            for k in kids:
                sockets |= socket_inodes(k)
            gen.send_signal(signal.SIGTERM)
            gen.wait(timeout=10)
            info = json.loads(line) if line.strip() else {}
            out[name] = {"rss_before_kib": before, "vmrss_kib": status.get("VmRSS", 0),
                         "vmhwm_kib": status.get("VmHWM", 0), "children": len(kids),
                         "children_pss_kib": sum(pss_kib(k) for k in kids) if kids else 0,
                         "established": info.get("established", 0),
                         "held": max(0, len(sockets) - 1)}  # minus the listening socket
            log("idle %-20s rss %6d KiB  hwm %6d KiB  children %4d  held %4d" % (
                name, out[name]["vmrss_kib"], out[name]["vmhwm_kib"], len(kids), out[name]["held"]))
        finally:
            srv.stop()
    return out


# ----------------------------------------------------------- allocations --

ALLOC_CASES = [
    ("sockserv sync", "tcp-once", 16), ("sockserv sync", "tcp-echo", 1), ("sockserv sync", "udp", 16),
    ("sockserv threading", "tcp-once", 16), ("sockserv threading", "tcp-echo", 16),
    ("sockserv forking", "tcp-once", 16),
    ("sockserv event", "tcp-echo", 64), ("sockserv event", "tcp-once", 16), ("sockserv event", "udp", 16),
    ("C epoll", "tcp-echo", 64),
    ("Asio", "tcp-echo", 64), ("Asio", "tcp-once", 16), ("Asio", "udp", 16),
    ("CPython sync", "tcp-once", 16), ("CPython threading", "tcp-echo", 16),
]


def allocations(args, workdir, available, quick):
    out = []
    for name, scenario, clients in ALLOC_CASES:
        if quick and scenario == "tcp-echo" and clients != 64 and name != "sockserv sync":
            continue
        if name not in available:
            out.append((name, scenario, clients, {"unavailable": available_reason(name)}))
            continue
        family, mode, _ = SCENARIOS[scenario]
        counter = os.path.join(workdir, "allocs")
        if os.path.exists(counter):
            os.unlink(counter)
        env = dict(os.environ, LD_PRELOAD=os.path.join(BUILD, "alloc_count.so"), ALLOC_COUNT_FILE=counter)
        if SERVERS[name].group == "CPython":
            env["PYTHONMALLOC"] = "malloc"  # every object allocation through malloc, so it is seen
        address = listen_address(family, workdir, 0)
        srv = Running(SERVERS[name].command(family, mode, address), workdir, env=env, pinned=args.pin)
        try:
            def count():
                with open(counter, "rb") as f:
                    return int.from_bytes(f.read(8), sys.byteorder)
            loadgen(args, family, mode, srv.address, clients, 0.0, 0.3, args.pin)  # warm up
            time.sleep(0.2)
            c0 = count()
            r = loadgen(args, family, mode, srv.address, clients, 0.0, args.alloc_seconds, args.pin)
            time.sleep(0.2)
            c1 = count()
            per = (c1 - c0) / r["requests"] if r.get("requests") else float("nan")
            out.append((name, scenario, clients, {"allocations": c1 - c0, "requests": r.get("requests", 0),
                                                  "per_request": per, "startup": c0}))
            log("allocs %-20s %-9s %3d: %d allocations / %d requests = %.4f per request" % (
                name, scenario, clients, c1 - c0, r.get("requests", 0), per))
        finally:
            srv.stop()
            if address.startswith("/") and os.path.exists(address):
                os.unlink(address)
    return out


# ------------------------------------------------- sizes, compile, shutdown --

def sizes():
    """Static, stripped binaries of comparable TCP line-echo servers."""
    rows = []
    glibc_vars = ["BUILD=build/bench/static-glibc", "CXX=g++", "OPTIMIZE=-Os",
                  "CXXFLAGS=-ffunction-sections -fdata-sections", "LDFLAGS=-static -Wl,--gc-sections -s"]
    make = ["make", "-s", "--no-print-directory", "-C", ROOT, "-f", "Makefile", "-f", "bench/size.mk"]

    def built(path, cmd):
        try:
            run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            return os.path.getsize(path)
        except (subprocess.CalledProcessError, OSError) as e:
            log("size build failed: %s: %s" % (" ".join(cmd), getattr(e, "stderr", b"")[-300:]))
            return None

    musl_dir = os.path.join(ROOT, "build", "x86_64-linux-musl")
    glibc_dir = os.path.join(ROOT, "build", "bench", "static-glibc")
    rows.append(("sockserv: `bench/size/sockserv_echo.cpp` (tcp_server, stream handler, synchronous)",
                 built(os.path.join(musl_dir, "bench-size", "sockserv_echo"),
                       make + ["TOOLCHAIN=x86_64-linux-musl", "build/x86_64-linux-musl/bench-size/sockserv_echo"]),
                 built(os.path.join(glibc_dir, "bench-size", "sockserv_echo"),
                       make + glibc_vars + ["build/bench/static-glibc/bench-size/sockserv_echo"])))
    rows.append(("sockserv: `examples/echo_server` (4 families x 5 policies, 3 pollers)",
                 built(os.path.join(musl_dir, "examples", "echo_server"),
                       make + ["TOOLCHAIN=x86_64-linux-musl", "build/x86_64-linux-musl/examples/echo_server"]),
                 built(os.path.join(glibc_dir, "examples", "echo_server"),
                       make + glibc_vars + ["build/bench/static-glibc/examples/echo_server"])))
    rows.append(("Asio: `bench/size/asio_echo.cpp` (async accept/read/write, one io_context)", None,
                 built(os.path.join(glibc_dir, "bench-size", "asio_echo"),
                       make + glibc_vars + ["build/bench/static-glibc/bench-size/asio_echo"])))
    cflags = ["-std=c11", "-Os", "-ffunction-sections", "-fdata-sections", "-Wl,--gc-sections", "-s", "-static"]
    for name, what in (("c_block", "blocking accept loop"), ("c_epoll", "epoll loop")):
        src = os.path.join(BENCH, "ref", name + ".c")
        musl = os.path.join(BUILD, name + "-musl")
        glibc = os.path.join(BUILD, name + "-static")
        rows.append(("C floor: `bench/ref/%s.c` (%s)" % (name, what),
                     built(musl, ["musl-gcc"] + cflags + ["-o", musl, src]) if shutil.which("musl-gcc") else None,
                     built(glibc, ["gcc"] + cflags + ["-o", glibc, src])))
    return rows


def compile_times(reps):
    """Wall time of compiling one example to an object file (-O2), median."""
    cases = [
        ("sockserv: `examples/tcp_uppercase_stream.cpp`",
         ["g++", "-std=c++17", "-O2", "-pthread", "-I", os.path.join(ROOT, "include"), "-c",
          os.path.join(ROOT, "examples", "tcp_uppercase_stream.cpp")]),
        ("sockserv: `bench/size/sockserv_echo.cpp`",
         ["g++", "-std=c++17", "-O2", "-pthread", "-I", os.path.join(ROOT, "include"), "-c",
          os.path.join(BENCH, "size", "sockserv_echo.cpp")]),
        ("Asio: `bench/size/asio_echo.cpp`",
         ["g++", "-std=c++17", "-O2", "-pthread", "-c", os.path.join(BENCH, "size", "asio_echo.cpp")]),
        ("C: `bench/ref/c_block.c`", ["gcc", "-std=c11", "-O2", "-c", os.path.join(BENCH, "ref", "c_block.c")]),
    ]
    rows = []
    obj = os.path.join(BUILD, "compile-time.o")
    for label, cmd in cases:
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            run(cmd + ["-o", obj], stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - t)
        pre = subprocess.run([c for c in cmd if c != "-c"] + ["-E", "-o", "-"], capture_output=True)
        rows.append((label, statistics.median(times), pre.stdout.count(b"\n")))
        log("compile %-45s %.2f s" % (label, statistics.median(times)))
    return rows


def shutdown_latency(reps_cpp, reps_py):
    cpp = json.loads(subprocess.run([os.path.join(BUILD, "shutdown_latency"), str(reps_cpp)], check=True,
                                    capture_output=True, text=True).stdout)
    py = json.loads(subprocess.run([PYTHON, os.path.join(BENCH, "shutdown_latency.py"), str(reps_py)],
                                   check=True, capture_output=True, text=True).stdout)
    log("shutdown sockserv %s / CPython %s" % (cpp, py))
    return cpp, py


# ---------------------------------------------------------------- report --

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def cell_runs(results, scenario, n, name):
    runs = results.get((scenario, n, name), [])
    return [r for r in runs if "unavailable" not in r]


def cell_rps(results, scenario, n, name):
    runs = cell_runs(results, scenario, n, name)
    return med([r.get("rps") for r in runs]) if runs else None


def paired_ratio(results, scenario, n, ours, ref):
    """Median over rounds of (ours / ref) within the same round, and the range."""
    a = results.get((scenario, n, ours), [])
    b = results.get((scenario, n, ref), [])
    ratios = [x["rps"] / y["rps"] for x, y in zip(a, b)
              if "unavailable" not in x and "unavailable" not in y and x.get("rps") and y.get("rps")]
    if not ratios:
        return None, None, None
    return statistics.median(ratios), min(ratios), max(ratios)


def plural(n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


def fmt_rps(v):
    if v is None:
        return "–"
    return "%.1fk" % (v / 1000) if v >= 1000 else "%.0f" % v


def fmt_us(v):
    if v is None:
        return "–"
    if v >= 10000:
        return "%.0f ms" % (v / 1000)
    return "%.0f" % v if v >= 100 else "%.1f" % v


def fmt_duration(v):
    if v is None:
        return "–"
    return fmt_us(v) if v >= 10000 else fmt_us(v) + " µs"


def fmt_kib(v):
    if not v:
        return "–"
    return "%.1f MiB" % (v / 1024) if v >= 10240 else "%d KiB" % v


def fmt_bytes(v):
    if v is None:
        return "–"
    return "%.1f KiB" % (v / 1024) if v < 1024 * 1024 else "%.2f MiB" % (v / 1048576)


def label_for(name, scenario):
    return SERVERS[name].label(SCENARIOS[scenario][0])


def throughput_tables(results, matrix):
    lines = []
    for scenario, servers in matrix.items():
        counts = sorted({n for ns in servers.values() for n in ns})
        counts = [n for n in counts if any((scenario, n, s) in results for s in servers)]
        if not counts:
            continue
        lines.append("### %s\n" % SCENARIOS[scenario][2])
        lines.append("Median requests/s over the rounds; p50 / p99 / p99.9 latency in µs; the server's CPU "
                     "time per request (user + system, all its threads, warm-up included; not for forking "
                     "servers). Medians over the rounds. Errors: every run's total.\n")
        lines.append("| server | " + " | ".join("%d client%s" % (n, "" if n == 1 else "s") for n in counts) +
                     " | errors |")
        lines.append("|---|" + "---|" * len(counts) + "---|")
        for name in servers:
            cells = []
            errors = 0
            for n in counts:
                runs = results.get((scenario, n, name))
                if runs is None:
                    cells.append("")
                    continue
                if all("unavailable" in r for r in runs):
                    cells.append(runs[0]["unavailable"])
                    continue
                good = cell_runs(results, scenario, n, name)
                errors += sum(abs(r.get("errors", 0)) for r in good)
                cpu = med([r.get("cpu_us") for r in good])
                cells.append("**%s** <br> %s / %s / %s%s" % (
                    fmt_rps(med([r.get("rps") for r in good])), fmt_us(med([r.get("p50_us") for r in good])),
                    fmt_us(med([r.get("p99_us") for r in good])), fmt_us(med([r.get("p999_us") for r in good])),
                    " <br> cpu %.1f µs" % cpu if cpu else ""))
            lines.append("| %s | %s | %s |" % (label_for(name, scenario), " | ".join(cells), errors))
        lines.append("")
        # Ratios of each sockserv policy to its counterparts in this scenario.
        rows = []
        for ours in SOCKSERV:
            if ours not in servers:
                continue
            for ref in COUNTERPARTS[ours]:
                if ref not in servers:
                    continue
                shared = [n for n in counts if n in servers[ours] and n in servers[ref]]
                if not shared:
                    continue
                cells = []
                for n in counts:
                    if n not in shared:
                        cells.append("")
                        continue
                    r, lo, hi = paired_ratio(results, scenario, n, ours, ref)
                    cells.append("–" if r is None else "%.2f× (%.2f–%.2f)" % (r, lo, hi))
                rows.append("| %s / %s | %s |" % (ours, label_for(ref, scenario), " | ".join(cells)))
        if rows:
            lines.append("Ratios (throughput, sockserv / reference; median of the per-round ratios, range in "
                         "parentheses):\n")
            lines.append("| ratio | " + " | ".join("%d" % n for n in counts) + " |")
            lines.append("|---|" + "---|" * len(counts))
            lines += rows
            lines.append("")
    return lines


def target_context(results, scenario, n, ours, ref):
    """What else the same run says about a target: the CPU each side spent per
    request, and for the threading and forking targets the bound set by the
    model itself (the C floors against the same reference)."""
    notes = []
    cpu = [med([r.get("cpu_us") for r in cell_runs(results, scenario, n, s)]) for s in (ours, ref)]
    if all(cpu):
        notes.append("CPU per request %.1f vs %.1f µs" % tuple(cpu))
    if ours == "sockserv threading" and ref.startswith("CPython"):
        for floor in ("C thread", "C epoll"):
            r = paired_ratio(results, scenario, n, floor, ref)[0]
            if r:
                notes.append("%s / CPython: %.2f×" % (floor, r))
    if ours == "sockserv forking" and ref == "C fork":
        r = paired_ratio(results, scenario, n, "sockserv forking, static", "C fork, static")[0]
        if r:
            notes.append("both linked static: %.2f×" % r)
    return "; ".join(notes)


def target_table(results, shutdown=None):
    lines = ["| target | clients | measured (median, range) | wanted | | same run |",
             "|---|---|---|---|---|---|"]
    verdicts = []
    for scenario, n, ours, ref, want in TARGETS:
        r, lo, hi = paired_ratio(results, scenario, n, ours, ref)
        unavailable = any("unavailable" in x for x in results.get((scenario, n, ours), []))
        if r is None:
            mark = "n/a (policy not built yet)" if unavailable else ("not run" if (scenario, n, ours) not in results
                                                                      else "no data")
            measured = "–"
        else:
            mark = "met" if r >= want else "**missed**"
            measured = "%.3f× (%.2f–%.2f)" % (r, lo, hi)
        verdicts.append((scenario, n, ours, ref, want, r, mark))
        lines.append("| %s: %s / %s | %d | %s | ≥ %.2f× | %s | %s |" % (
            scenario, ours, label_for(ref, scenario), n, measured, want, mark,
            target_context(results, scenario, n, ours, ref)))
    if shutdown and shutdown[0].get("median_us") is not None:
        cpp, py = shutdown
        ok = cpp["median_us"] <= 1000
        tail = "p99 %s, max %s" % (fmt_duration(cpp.get("p99_us")), fmt_duration(cpp.get("max_us")))
        lines.append("| shutdown() latency, poll_interval 0.5: sockserv (CPython: %s) | – | median %s | ≤ 1 ms | %s | "
                     "%s |" % (fmt_duration(py["median_us"]), fmt_duration(cpp["median_us"]),
                               "met" if ok else "**missed**", tail))
        verdicts.append(("shutdown", 0, "sockserv", "1 ms", 1.0, cpp["median_us"] / 1000, "met" if ok else "missed"))
    return lines, verdicts


def memory_tables(results, idle, idle_clients):
    lines = ["Peak resident memory of the server process (`VmHWM` from `/proc/PID/status`, read just before "
             "the server is stopped). For forking servers the children are listed apart: the peak over 100 ms "
             "samples of the sum of their proportional set sizes (`Pss`, so pages shared with the parent are "
             "not counted twice), and how many there were at most.\n"]
    columns = [("tcp-echo", 64), ("tcp-echo", 16), ("tcp-once", 16), ("udp", 16), ("unix-echo", 64)]
    columns = [c for c in columns if any(k[:2] == c for k in results)]
    head = ["server"] + ["%s, %d clients" % c for c in columns] + [
        "%d idle TCP connections (connections held)" % idle_clients]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|---" * len(head) + "|")
    for name in SERVERS:
        cells = []
        anything = False
        for scenario, n in columns:
            runs = cell_runs(results, scenario, n, name)
            if not runs:
                unavailable = results.get((scenario, n, name))
                cells.append(unavailable[0]["unavailable"] if unavailable else "")
                continue
            anything = True
            hwm = med([r.get("vmhwm_kib") for r in runs])
            kids = max(r.get("children_pss_kib", 0) for r in runs)
            nkids = max(r.get("children", 0) for r in runs)
            cells.append(fmt_kib(hwm) + (" + %s in ≤%d children" % (fmt_kib(kids), nkids) if nkids else ""))
        i = idle.get(name) if idle else None
        if i and "unavailable" not in i:
            anything = True
            c = fmt_kib(i["vmhwm_kib"])
            if i["children"]:
                c += " + %s in %d children" % (fmt_kib(i["children_pss_kib"]), i["children"])
            c += " (%d)" % i["held"]
            cells.append(c)
        elif i:
            cells.append(i["unavailable"])
        else:
            cells.append("")
        if anything:
            lines.append("| %s | %s |" % (name, " | ".join(cells)))
    return lines


def svg_plot(results, matrix, path):
    """Throughput versus clients, one panel per scenario, log-scaled x."""
    panels = [s for s in ("tcp-echo", "tcp-once", "udp", "unix-echo") if s in matrix]
    palette = {"sockserv sync": "#1f77b4", "sockserv threading": "#2ca02c", "sockserv forking": "#9467bd",
               "sockserv event": "#d62728", "sockserv forking, static": "#c5b0d5", "C blocking": "#555555",
               "C thread": "#98df8a", "C fork, static": "#c49c94", "C fork": "#8c564b", "C epoll": "#000000",
               "C recvfrom": "#7f7f7f", "Asio": "#ff7f0e", "CPython sync": "#17becf",
               "CPython threading": "#bcbd22", "CPython forking": "#e377c2"}
    dash = lambda name: "" if SERVERS[name].group == "sockserv" else (
        ' stroke-dasharray="6 3"' if SERVERS[name].group in ("C", "Asio") else ' stroke-dasharray="2 3"')
    pw, ph, left, top, gap = 330, 260, 60, 40, 30
    width = left + len(panels) * (pw + gap) + 10
    height = top + ph + 60 + 20 * ((len(palette) + 3) // 4)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
           'font-size="11">' % (width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="18" font-size="14">sockserv vs references: requests/s versus concurrent clients '
           '(median; solid sockserv, dashed C/Asio, dotted CPython)</text>' % left]
    xs = {n: math.log10(n) / 3 for n in CLIENT_COUNTS}  # log-scaled: 1 .. 1000
    used = set()
    for p, scenario in enumerate(panels):
        x0 = left + p * (pw + gap)
        series = {}
        for name in matrix[scenario]:
            pts = [(n, cell_rps(results, scenario, n, name)) for n in CLIENT_COUNTS]
            pts = [(n, v) for n, v in pts if v]
            if pts:
                series[name] = pts
        ymax = max([v for pts in series.values() for _, v in pts] + [1])
        step = 10 ** math.floor(math.log10(ymax))
        for m in (0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10):
            if ymax / (step * m) <= 6:
                step *= m
                break
        ytop = step * math.ceil(ymax / step)
        out.append('<text x="%d" y="%d" font-size="12" font-weight="bold">%s</text>' % (
            x0, top - 8, scenario))
        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>' % (x0, top, pw, ph))
        v = 0
        while v <= ytop + 1e-9:
            y = top + ph - v / ytop * ph
            out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/>' % (x0, x0 + pw, y, y))
            out.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (x0 - 4, y + 4, fmt_rps(v)))
            v += step
        for n, fx in xs.items():
            x = x0 + 10 + fx * (pw - 20)
            out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#eee"/>' % (x, x, top, top + ph))
            out.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (x, top + ph + 14, n))
        out.append('<text x="%d" y="%d" text-anchor="middle">clients</text>' % (x0 + pw / 2, top + ph + 28))
        for name, pts in series.items():
            used.add(name)
            coords = " ".join("%.1f,%.1f" % (x0 + 10 + xs[n] * (pw - 20), top + ph - v / ytop * ph) for n, v in pts)
            out.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>' % (
                coords, palette[name], dash(name)))
            for n, v in pts:
                out.append('<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>' % (
                    x0 + 10 + xs[n] * (pw - 20), top + ph - v / ytop * ph, palette[name]))
    for i, name in enumerate([n for n in SERVERS if n in used]):
        x = left + (i % 4) * 230
        y = top + ph + 50 + (i // 4) * 20
        out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"%s/>' % (
            x, x + 24, y - 4, y - 4, palette[name], dash(name)))
        out.append('<text x="%d" y="%d">%s</text>' % (x + 30, y, name))
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def machine_info():
    def first(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = "%.1f GiB" % (int(f.readline().split()[1]) / 1048576)
    except OSError:
        pass
    asio = "?"
    try:
        with open("/usr/include/asio/version.hpp") as f:
            v = int(re.search(r"#define ASIO_VERSION (\d+)", f.read()).group(1))
            asio = "%d.%d.%d" % (v // 100000, v // 100 % 1000, v % 100)
    except (OSError, AttributeError):
        pass
    commit = first(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", ROOT, "diff", "--quiet", "HEAD", "--", "include", "examples"]).returncode
    if dirty == 1:
        commit += " with uncommitted changes in include/ or examples/"
    return {
        "cpu": "%s, %d cores" % (cpu, os.cpu_count() or 0), "memory": mem,
        "kernel": platform.release(), "os": first(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "gcc": first(["g++", "--version"]), "glibc": platform.libc_ver()[1] or "?",
        "python": "CPython %s (%s)" % (platform.python_version(), PYTHON), "asio": asio, "commit": commit,
    }


def write_report(path, svg_name, args, info, results, matrix, idle, allocs, size_rows, compile_rows, shutdown,
                 load_before, load_after, elapsed):
    targets, verdicts = target_table(results, shutdown)
    lines = ["# sockserv benchmarks", ""]
    lines.append("Generated by `%s` on %s in %.0f s (commit %s). %s" % (
        "make bench-quick" if args.quick else "make bench",
        datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), elapsed, info["commit"],
        "A quick run: one short round, the target cells only." if args.quick else ""))
    lines.append("")
    lines.append("Everything on this page was measured in one run on one machine, sockserv and the references "
                 "alternating; the ratios are what to read, since the machine is shared and noisy and the absolute "
                 "numbers move from run to run. The method is at the end.")
    lines.append("")
    lines.append("## Targets")
    lines.append("")
    lines += targets
    lines.append("")
    analysis = os.path.join(BENCH, "analysis.md")
    if os.path.exists(analysis):
        with open(analysis) as f:
            lines.append(f.read().rstrip())
            lines.append("")
    lines.append("## Throughput and latency")
    lines.append("")
    lines.append("![requests/s versus clients](%s)" % svg_name)
    lines.append("")
    lines += throughput_tables(results, matrix)
    lines.append("Cells left empty were not run: " + " ".join(NOT_MEANINGFUL))
    lines.append("")
    lines.append("## Memory")
    lines.append("")
    lines += memory_tables(results, idle, args.idle_clients)
    lines.append("")
    lines.append("In the idle column a load generator opens %d TCP connections and sends nothing; after 1 s the "
                 "server's resident memory is read, and the number in parentheses counts the connections the "
                 "server (and its children) had accepted, from `/proc/PID/fd`. The others are established by the "
                 "kernel and wait in the listen backlog: sync and C blocking hold one, threading holds its 64 "
                 "workers' worth, forking 40 children, the event loop, epoll, Asio and CPython's threads all of "
                 "them." % args.idle_clients)
    lines.append("")
    lines.append("## Heap allocations per request")
    lines.append("")
    lines.append("`bench/alloc_count.so` is preloaded into the server and counts every malloc, calloc, realloc and "
                 "aligned allocation (operator new included) in a counter shared by all its threads and forked "
                 "children. After a warm-up run the counter is read, a second load run of %.1f s follows (its "
                 "clients connect afresh, so connection set-up is included), and the counter is read again. "
                 "CPython runs with `PYTHONMALLOC=malloc` so that its object allocations are seen. A handful of "
                 "allocations over thousands of requests (threading) come from worker threads the pool starts on "
                 "demand when more requests overlap than in the warm-up: `pthread_create` allocates; a started "
                 "pool allocates nothing." % args.alloc_seconds)
    lines.append("")
    lines.append("| server | load | allocations in the window | requests | per request |")
    lines.append("|---|---|---|---|---|")
    for name, scenario, clients, a in allocs:
        label = label_for(name, scenario)
        if "unavailable" in a:
            lines.append("| %s | %s, %s | %s | | |" % (label, scenario, plural(clients, "client"), a["unavailable"]))
        else:
            lines.append("| %s | %s, %s | %d | %d | **%.3g** |" % (
                label, scenario, plural(clients, "client"), a["allocations"], a["requests"], a["per_request"]))
    lines.append("")
    lines.append("## Binary size")
    lines.append("")
    lines.append("Comparable TCP line-echo servers, static and stripped, `-Os`, unused sections dropped "
                 "(`--gc-sections`). sockserv's musl build uses the project's own `toolchains/x86_64-linux-musl.mk`; "
                 "Asio needs libstdc++, which Debian does not build for musl.")
    lines.append("")
    lines.append("| program | static musl | static glibc |")
    lines.append("|---|---|---|")
    for label, musl, glibc in size_rows:
        lines.append("| %s | %s | %s |" % (label, fmt_bytes(musl) if musl else "–", fmt_bytes(glibc)))
    lines.append("")
    lines.append("## Compile time")
    lines.append("")
    lines.append("Wall time to compile one file to an object with `g++ -std=c++17 -O2` (C: `gcc -O2`), median "
                 "of %d, and the size of the translation unit after preprocessing." % args.compile_reps)
    lines.append("")
    lines.append("| file | compile time | preprocessed lines |")
    lines.append("|---|---|---|")
    for label, t, pre in compile_rows:
        lines.append("| %s | %.2f s | %d |" % (label, t, pre))
    lines.append("")
    lines.append("## shutdown() latency")
    lines.append("")
    cpp, py = shutdown
    lines.append("`server.shutdown()` timed from call to return while `serve_forever(poll_interval=0.5)` runs on "
                 "another thread, waiting in its poll (`bench/shutdown_latency.cpp`, `bench/shutdown_latency.py`).")
    lines.append("")
    lines.append("| server | repetitions | median | mean | p99 | max |")
    lines.append("|---|---|---|---|---|---|")
    for label, d in (("sockserv tcp_server", cpp), ("CPython TCPServer", py)):
        lines.append("| %s | %d | %s | %s | %s | %s |" % (
            label, d["repetitions"], fmt_duration(d["median_us"]), fmt_duration(d["mean_us"]),
            fmt_duration(d.get("p99_us")), fmt_duration(d["max_us"])))
    lines.append("")
    lines.append("sockserv's `shutdown()` writes to the server's wake-up pipe, which the loop's `poll()` watches "
                 "with the server socket, so the loop returns at once; CPython's `serve_forever` only looks at its "
                 "shutdown flag when its `select()` times out, so `shutdown()` waits for the rest of the "
                 "poll interval. The few slow repetitions are the scheduler's: the serving thread has been woken "
                 "but waits for the CPU (the program is not pinned, and this machine is shared).")
    lines.append("")
    lines.append("## Method")
    lines.append("")
    lines += method_lines(args, info, load_before, load_after)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return verdicts


def method_lines(args, info, load_before, load_after):
    return [
        "**Machine.** %s; %s RAM; %s, kernel %s; %s; glibc %s; %s; Asio %s (Debian `libasio-dev`). "
        "Load average %s at the start, %s at the end." % (
            info["cpu"], info["memory"], info["os"], info["kernel"], info["gcc"], info["glibc"], info["python"],
            info["asio"], load_before, load_after),
        "",
        "**Two cores, one each.** The server is pinned to CPU %s and the load generator to CPU %s (`taskset`), "
        "so neither steals the other's core; a threading or forking server's threads and children share the "
        "server's core, as do CPython's. Everything goes over loopback, so the kernel's TCP/UDP work for a "
        "request is done partly on each core. %s" % (
            SERVER_CPU, CLIENT_CPU, "" if args.pin else "(This run was not pinned: --no-pin.)"),
        "",
        "**Priority.** Other sessions share this machine (compilers, test suites: see the load average "
        "above). Linux schedules sessions as groups (autogroups) before processes, so without help a server "
        "would get half of its core or less whenever someone compiles. The benchmark's own session and each "
        "server's session are given nice %d at the group level (`/proc/PID/autogroup`; %s). On an idle "
        "machine this changes nothing." % (args.priority, args.priority_note),
        "",
        "**Load generator** (`bench/loadgen.cpp`). One thread, epoll, non-blocking sockets, N clients in a "
        "closed loop: each has one request outstanding and sends the next when the reply is complete. "
        "*echo*: persistent connections, one %d-byte line out, the same line back. *once*: connect, one line, "
        "the reply upper-cased, read to end of stream, close (a request is all of that). *udp*: one connected "
        "socket per client, a %d-byte datagram out and back (a reply not back within 1 s is an error and the "
        "client goes on). Every reply is checked byte for byte against the request, which carries the client "
        "and sequence numbers. Latency is from the first byte sent (once: from `socket()`) to the last byte "
        "received; percentiles are exact (all samples kept). Each run has a %.1f s warm-up that is not "
        "counted, then a %.1f s measurement window; stream clients in echo mode connect before the warm-up "
        "starts." % (LINE, LINE, args.warmup, args.duration),
        "",
        "**Rounds.** For each scenario and client count, %d rounds (%d for the cells a target is judged on); "
        "in each round every server of that cell "
        "runs once with a fresh process, sockserv and reference servers alternating, the order rotated from "
        "round to round. Tables show medians over the rounds; a ratio is the median of the per-round ratios "
        "(runs seconds apart, so a slow minute of the shared machine hits both sides), with the range over "
        "the rounds." % (args.reps, getattr(args, "target_reps", args.reps)),
        "",
        "**Servers.** All listen with backlog %d (`request_queue_size` for sockserv and CPython, `listen()` "
        "for the others) and serve the same thing: a line echo until the client closes, one line upper-cased "
        "then close, or a datagram echo. sockserv is `examples/echo_server` built with g++ `-O2` (`build/bench/sockserv`): "
        "`--policy sync`, `threading-64` (`threading<64>`), `forking` (`forking<40>`), `event` "
        "(`event_loop<epoll_poller>`), with the stream handler `readline()`/`wfile.write()`, and the event "
        "loop's line-framed handler. CPython: `bench/ref/py_server.py`, the documentation's "
        "`StreamRequestHandler` (rfile/wfile) or `BaseRequestHandler` with `sendto`, under TCPServer, "
        "ThreadingTCPServer, ForkingTCPServer, UDPServer and the Unix variants. Asio: `bench/ref/asio_server.cpp`, "
        "one `io_context` (concurrency hint 1) on one thread, a `shared_ptr` session per connection with "
        "`async_read_some`/`async_write`. C floors (`bench/ref/*.c`, `gcc -O2`): a blocking accept loop; "
        "fork per connection with `SIGCHLD` ignored (the kernel reaps; no `waitpid` at all); a level-triggered "
        "epoll loop; a blocking `recvfrom`/`sendto` loop; and, beyond the issue's list, a detached pthread per "
        "connection (`C thread`, the floor of the threading model). They do the least the service needs: no "
        "`shutdown()` before `close()`, no readiness wait before `accept` or `recvfrom`. The `, static` rows "
        "are the same echo_server and C fork floor linked with `-static`: fork and exit cost grows with a "
        "process's mappings, and a dynamically linked C++ program has more of them (libstdc++, libm, "
        "libgcc_s) than a C one." % BACKLOG,
        "",
        "**CPU per request** is the server's user + system time (all threads; for forking servers it is not "
        "shown, since children are counted only when reaped) over all requests of the run, warm-up included: "
        "on a noisy machine it moves less than throughput does, and it is what the server itself costs.",
        "",
        "**Memory, allocations, size, compile time, shutdown** are described with their tables. "
        "Reproduce with `make bench` (about 20 minutes; it installs its Debian dev packages through "
        "`bench/setup.sh`); `make bench-quick` runs the target cells once, briefly, into `build/bench/quick/`.",
    ]


# ------------------------------------------------------------------ main --

def main():
    global SERVER_CPU, CLIENT_CPU, PRIORITY
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--warmup", type=float)
    parser.add_argument("--only", action="append", help="SCENARIO or SCENARIO:CLIENTS (repeatable)")
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument("--priority", type=int, default=-10,
                        help="nice value for the benchmark's scheduling autogroup (0: leave it)")
    parser.add_argument("--out", help="directory for RESULTS.md and throughput.svg")
    parser.add_argument("--from-raw", action="store_true",
                        help="measure nothing: rewrite RESULTS.md and the plot from the run's raw.json")
    parser.add_argument("--skip", action="append", default=[],
                        help="leave out: throughput, idle, allocs, sizes, compile, shutdown")
    args = parser.parse_args()
    q = args.quick
    args.reps = args.reps or (1 if q else 3)
    args.target_reps = args.reps if q else max(args.reps, 5)  # the cells a target is judged on
    args.duration = args.duration or (0.5 if q else 1.5)
    args.warmup = args.warmup if args.warmup is not None else (0.2 if q else 0.3)
    args.alloc_seconds = 0.5 if q else 1.0
    args.compile_reps = 1 if q else 3
    args.idle_clients = 1000
    out_dir = args.out or (os.path.join(BUILD, "quick") if q else BENCH)
    os.makedirs(out_dir, exist_ok=True)
    if os.cpu_count() and os.cpu_count() < 2:
        SERVER_CPU = CLIENT_CPU = "0"

    if args.from_raw:
        return rewrite_from_raw(args, out_dir)
    t0 = time.time()
    args.priority_note = raise_priority(args.priority)
    PRIORITY = args.priority if args.priority_note.startswith("session") else 0
    load_before = "%.2f" % os.getloadavg()[0]
    build(args)
    available = set(SERVERS)
    if not probe_event_policy():
        log("echo_server has no --policy event yet: those rows say n/a")
        available.discard("sockserv event")
    info = machine_info()
    matrix = QUICK_MATRIX if q else MATRIX
    workdir = tempfile.mkdtemp(prefix="sockserv-bench-")
    try:
        results = throughput(args, matrix, workdir, available) if "throughput" not in args.skip else {}
        idle = idle_memory(args, workdir, available, args.idle_clients) if not q and "idle" not in args.skip else {}
        allocs = allocations(args, workdir, available, q) if "allocs" not in args.skip else []
        size_rows = sizes() if "sizes" not in args.skip else []
        compile_rows = compile_times(args.compile_reps) if "compile" not in args.skip else []
        shutdown = shutdown_latency(50 if q else 200, 4 if q else 20) if "shutdown" not in args.skip else (
            {"repetitions": 0, "median_us": None, "mean_us": None, "max_us": None},) * 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load_after = "%.2f" % os.getloadavg()[0]
    with open(os.path.join(out_dir, "raw.json"), "w") as f:
        json.dump({"results": {"%s|%d|%s" % k: v for k, v in results.items()}, "idle": idle,
                   "allocations": allocs, "sizes": size_rows, "compile": compile_rows, "shutdown": shutdown,
                   "machine": info, "load": [load_before, load_after], "elapsed": time.time() - t0,
                   "args": {k: getattr(args, k) for k in RUN_ARGS}}, f, indent=1)
    verdicts = render(args, out_dir, info, results, matrix, idle, allocs, size_rows, compile_rows, shutdown,
                      load_before, load_after, time.time() - t0)
    report_verdicts(verdicts)


RUN_ARGS = ["quick", "reps", "target_reps", "duration", "warmup", "alloc_seconds", "compile_reps", "idle_clients", "pin",
            "priority", "priority_note"]


def render(args, out_dir, info, results, matrix, idle, allocs, size_rows, compile_rows, shutdown, load_before,
           load_after, elapsed):
    svg_plot(results, matrix, os.path.join(out_dir, "throughput.svg"))
    report = os.path.join(out_dir, "RESULTS.md")
    verdicts = write_report(report, "throughput.svg", args, info, results, matrix, idle, allocs, size_rows,
                            compile_rows, shutdown, load_before, load_after, elapsed)
    log("\nwrote %s" % report)
    return verdicts


def rewrite_from_raw(args, out_dir):
    with open(os.path.join(out_dir, "raw.json")) as f:
        raw = json.load(f)
    args.target_reps = None
    for k, v in raw.get("args", {}).items():
        setattr(args, k, v)
    if args.target_reps is None:  # a run from before target cells had rounds of their own
        args.target_reps = args.reps
    results = {}
    for key, runs in raw["results"].items():
        scenario, n, name = key.split("|", 2)
        results[(scenario, int(n), name)] = runs
    matrix = QUICK_MATRIX if args.quick else MATRIX
    load_before, load_after = raw.get("load", ["?", "?"])
    verdicts = render(args, out_dir, raw["machine"], results, matrix, raw["idle"],
                      [tuple(a) for a in raw["allocations"]], [tuple(x) for x in raw["sizes"]],
                      [tuple(x) for x in raw["compile"]], tuple(raw["shutdown"]), load_before, load_after,
                      raw.get("elapsed", 0))
    report_verdicts(verdicts)


def report_verdicts(verdicts):
    for scenario, n, ours, ref, want, r, mark in verdicts:
        if scenario == "shutdown":
            log("  shutdown() latency median %.3f ms (want <= 1 ms): %s" % (r, mark))
            continue
        log("  %-9s %4d  %-18s / %-18s %s  (want >= %.2f): %s" % (
            scenario, n, ours, ref, "%.2fx" % r if r else "  -  ", want, mark.replace("*", "")))


if __name__ == "__main__":
    main()
