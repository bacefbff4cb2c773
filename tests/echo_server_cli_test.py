#!/usr/bin/env python3
"""echo_server as a service: a graceful stop on SIGTERM for every policy,
socket activation by systemd-socket-activate, and inetd's connection on
stdin. Runs build/examples/echo_server (BUILD from the environment) and ends
with a Catch2-style summary line that tests/run_all.sh counts."""
import os, signal, socket, subprocess, sys, tempfile, shutil

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from cli import TIMEOUT, UNDER_TSAN, check, connect, example, not_run, summary  # noqa: E402

SERVER = example("echo_server")


def read_to_eof(s):
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return data
        data += chunk


def graceful_stop(policy):
    """SIGTERM with a request in flight: it completes, the server exits 0.
    threading, forking, event: the request keeps its connection until the
    5 s stop deadline, so a line sent after the signal is still answered.
    sync: the request runs inside serve_forever(), and the stop ends its
    input (README, "Running as a service"): the handler sees end of input,
    its last replies go out, the connection ends. A line sent after the
    signal would race that end, so the sync client sends none; that what
    was sent before the stop is still read is a unit test
    (server_shutdown_test.cpp)."""
    server = subprocess.Popen([SERVER, "--family", "tcp", "--listen", "127.0.0.1:0", "--policy", policy],
                              stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        port = int(line.rsplit(":", 1)[1])
        c = connect(("127.0.0.1", port))
        c.sendall(b"first\n")
        first = c.recv(100)
        server.send_signal(signal.SIGTERM)
        seen, expected = [first], [b"first\n"]
        if policy != "sync":  # see above
            c.sendall(b"second\n")
            seen.append(c.recv(100))
            expected.append(b"second\n")
            c.shutdown(socket.SHUT_WR)
        seen.append(read_to_eof(c))  # sync: the stop ended the request, the client did not
        seen.append(server.wait(TIMEOUT))
        expected += [b"", 0]
        check("SIGTERM stops --policy %s gracefully" % policy, seen == expected, repr(seen))
        try:
            connect(("127.0.0.1", port)).close()
            check("no new clients after the stop (%s)" % policy, False, "connect succeeded")
        except OSError:
            check("no new clients after the stop (%s)" % policy, True)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def start_tcp_server(policy, stderr=None):
    server = subprocess.Popen([SERVER, "--family", "tcp", "--listen", "127.0.0.1:0", "--policy", policy],
                              stdout=subprocess.PIPE, stderr=stderr, text=True)
    return server, int(server.stdout.readline().rsplit(":", 1)[1])


def idle_client_cannot_hold_the_stop(policy):
    """SIGTERM with an idle client: the 5 s stop deadline ends its request
    (sync: the stop ends the request's input at once)."""
    server, port = start_tcp_server(policy)
    try:
        idle = connect(("127.0.0.1", port))
        idle.sendall(b"x")  # a request in flight that never ends by itself
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(5 + 2)
        except subprocess.TimeoutExpired:
            code = "still running 7 s after SIGTERM"
        check("SIGTERM with an idle client stops --policy %s within the deadline" % policy, code == 0, repr(code))
        idle.close()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def stats_on_sigusr1():
    """SIGUSR1 prints the counters on stderr."""
    server, port = start_tcp_server("threading", stderr=subprocess.PIPE)
    try:
        c = connect(("127.0.0.1", port))
        c.sendall(b"hello\n")
        c.shutdown(socket.SHUT_WR)
        read_to_eof(c)
        server.send_signal(signal.SIGUSR1)
        line = server.stderr.readline()
        check("SIGUSR1 prints stats", line.startswith("stats: accepted=1 ") and "failed=0" in line, repr(line))
        server.send_signal(signal.SIGTERM)
        server.wait(TIMEOUT)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def systemd_activation(directory, family_option):
    """systemd-socket-activate binds, echo_server --listen systemd serves;
    without --family it serves the unix socket it was handed as one."""
    tool = shutil.which("systemd-socket-activate")
    if tool is None:
        check("systemd-socket-activate is installed (Debian package systemd)", False)
        return
    path = os.path.join(directory, "activated%d.sock" % len(family_option))
    # stdin from /dev/null: with descriptor 0 closed (as CI runs), the tool's
    # socket becomes 0 and systemd-socket-activate aborts on its own
    # assertion ("r == SD_LISTEN_FDS_START + count"), refusing the client.
    manager = subprocess.Popen([tool, "-l", path, SERVER] + family_option + ["--listen", "systemd"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        announced = manager.stdout.readline()  # "Listening on PATH as 3."
        c = connect(path, socket.AF_UNIX)     # the first connection starts the service
        c.sendall(b"activated\n")
        reply = c.recv(100)
        c.close()
        manager.send_signal(signal.SIGTERM)   # systemd-socket-activate exec()s the service
        code = manager.wait(TIMEOUT)
        check("--listen systemd %s serves on the socket systemd-socket-activate passes" % " ".join(family_option),
              "Listening on" in announced and reply == b"activated\n" and code == 0,
              repr((announced, reply, code)))
    finally:
        if manager.poll() is None:
            manager.kill()
            manager.wait()


def inetd_connection(family_option):
    """inetd accepts, then runs echo_server with the connection as stdin
    (without --family: a TCP connection because the socket is one)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = connect(listener.getsockname())
    accepted, _ = listener.accept()
    service = subprocess.Popen([SERVER] + family_option + ["--inetd"], stdin=accepted, stdout=accepted)
    accepted.close()
    try:
        client.sendall(b"from inetd\nsecond line\n")
        client.shutdown(socket.SHUT_WR)
        reply = read_to_eof(client)
        code = service.wait(TIMEOUT)
        check("--inetd %s serves the connection on stdin, then exits 0" % " ".join(family_option),
              reply == b"from inetd\nsecond line\n" and code == 0, repr((reply, code)))
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
        listener.close()


def main():
    for policy in ("sync", "threading", "forking", "event"):
        if policy == "sync" and UNDER_TSAN:  # the stop must interrupt the handler's recv()
            not_run("SIGTERM stops --policy sync (twice)", "under TSan a signal waits for the recv() it interrupted")
            continue
        graceful_stop(policy)
        idle_client_cannot_hold_the_stop(policy)
    stats_on_sigusr1()
    directory = tempfile.mkdtemp(prefix="sockserv-cli-")
    try:
        systemd_activation(directory, ["--family", "unix"])
        systemd_activation(directory, [])
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    inetd_connection(["--family", "tcp"])
    inetd_connection([])
    return summary()


if __name__ == "__main__":
    sys.exit(main())
