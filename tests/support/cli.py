"""Helpers for the process-level tests (tests/*_cli_test.py): checks counted
into the Catch2-style summary line that tests/run_all.sh reads, and line
readers over sockets and pipes whose every wait is bounded by a deadline."""
import os
import select
import socket
import subprocess
import time

BUILD = os.environ.get("BUILD", "build")
TIMEOUT = 10  # seconds any single wait may take
results = []


def example(name):
    return os.path.join(BUILD, "examples", name)


def check(name, condition, detail=""):
    results.append(bool(condition))
    print(("ok     " if condition else "FAILED ") + name + ("" if condition else "  " + str(detail)))
    return condition


# Set by make tsan: ThreadSanitizer runs a signal handler only once the
# system call the signal interrupted has returned (or at a call TSan knows
# to block), so a server blocked in recv() does not see its SIGTERM until
# the client sends something.
UNDER_TSAN = os.environ.get("SOCKSERV_TEST_SANITIZER") == "thread"


def not_run(name, why):
    """A check this build cannot make: said, and counted neither way."""
    print("not run " + name + "  (" + why + ")")


def summary():
    """Prints the summary line; returns the exit status."""
    if not results:
        check("some check ran", False)
    passed = sum(results)
    failed = len(results) - passed
    if failed:
        print("test cases: %d | %d passed | %d failed" % (len(results), passed, failed))
    else:
        print("All tests passed (%d assertions in %d test cases)" % (len(results), len(results)))
    return 1 if failed else 0


class Lines:
    """Lines (bytes, without the newline) from a socket or a pipe. Every
    wait ends by its deadline; what a search skipped is kept in `seen`."""

    def __init__(self, source):
        self.source = source
        self.buffer = b""
        self.eof = False
        self.reset = False
        self.seen = []

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([self.source], [], [], left)[0]:
            return False
        try:
            if isinstance(self.source, socket.socket):
                chunk = self.source.recv(65536)
            else:
                chunk = os.read(self.source.fileno(), 65536)
        except ConnectionResetError:
            chunk, self.reset = b"", True
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        return True

    def line(self, timeout=TIMEOUT):
        """The next line, or None at end of input or when time is up."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            if self.eof or not self._fill(deadline):
                return None
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def until(self, wanted, timeout=TIMEOUT):
        """The first line for which wanted(line) is true (a bytes argument:
        the first line starting with it); earlier lines go to `seen`."""
        test = (lambda line: line.startswith(wanted)) if isinstance(wanted, bytes) else wanted
        deadline = time.monotonic() + timeout
        while True:
            line = self.line(max(deadline - time.monotonic(), 0))
            if line is None or test(line):
                return line
            self.seen.append(line)

    def to_eof(self, timeout=TIMEOUT):
        """Every line left until the other end closes (None if it does not in time)."""
        deadline = time.monotonic() + timeout
        lines = []
        while True:
            line = self.line(max(deadline - time.monotonic(), 0))
            if line is None:
                return lines + ([self.buffer] if self.buffer else []) if self.eof else None
            lines.append(line)


def start(argv, **popen):
    """Starts a program with its stdout as a Lines reader (stdout.lines)."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, bufsize=0, **popen)
    process.lines = Lines(process.stdout)
    return process


def stop(process, sig, timeout=TIMEOUT):
    """Sends sig; returns (exit status or None, seconds it took, the rest of stdout)."""
    began = time.monotonic()
    process.send_signal(sig)
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        code = None
    took = time.monotonic() - began
    rest = process.lines.to_eof(1) or []
    return code, took, rest


def kill(process):
    if process.poll() is None:
        process.kill()
        process.wait()


def connect(address, family=socket.AF_INET, source=None, receive_buffer=None):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    if receive_buffer is not None:  # before connect(): it sets the window offered
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    if source is not None:
        s.bind(source)
    s.connect(address)
    return s
