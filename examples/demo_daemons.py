#!/usr/bin/env python3
"""The daemon examples, shown end to end (run by examples/demo.sh):

    demo_daemons.py chat_server|routerd BINARY_DIRECTORY

Starts the example on loopback, talks to it as small clients would, prints
the conversation, stops it with SIGTERM and prints what it logged. Exit 0:
every answer was the expected one; 1: something differed. Every wait is
bounded (the bounded line readers of tests/support/cli.py)."""
import os
import re
import signal
import socket
import sys
import tempfile
import shutil

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "support"))
from cli import Lines, connect, kill, start, stop  # noqa: E402

failures = []


def show(who, direction, text):
    print("   %-10s %s %s" % (who, direction, text.decode(errors="replace") if isinstance(text, bytes) else text))


def expect(who, got, wanted):
    """Shows a received line; notes a failure if it is not the one wanted."""
    show(who, "<-", got if got is not None else "(nothing)")
    if got is None or not re.fullmatch(wanted, got):
        failures.append("%s: expected %r, got %r" % (who, wanted, got))


def finish(name, process):
    code, took, rest = stop(process, signal.SIGTERM)
    print("-- SIGTERM: %s exited with %s after %.2f s; it logged:" % (name, code, took))
    for line in process.lines.seen + rest:
        print("   | " + line.decode(errors="replace"))
    if code != 0:
        failures.append("%s exited with %s after SIGTERM" % (name, code))


def chat(binary):
    argv = [binary, "--listen", "127.0.0.1:0", "--tick-ms", "300"]
    print("-- $ chat_server " + " ".join(argv[1:]))
    server = start(argv)
    try:
        listening = server.lines.line()
        print("   | " + (listening or b"(nothing)").decode())
        port = int(listening.rsplit(b":", 1)[1])
        alice, bob = connect(("127.0.0.1", port)), None
        alice_lines = Lines(alice)
        expect("alice", alice_lines.line(), rb"welcome \d+")
        bob = connect(("127.0.0.1", port))
        bob_lines = Lines(bob)
        expect("bob", bob_lines.line(), rb"welcome \d+")
        expect("alice", alice_lines.line(), rb"joined \d+")
        for text in (b"hello, bob", b"anyone else here?"):
            show("alice", "->", text)
            alice.sendall(text + b"\n")
            expect("bob", bob_lines.until(lambda line: not line.startswith(b"tick")), rb"\d+: " + re.escape(text))
        show("bob", "->", b"/who")
        bob.sendall(b"/who\n")
        expect("bob", bob_lines.until(lambda line: not line.startswith(b"tick")), rb"who 2")
        expect("bob", bob_lines.until(b"tick"), rb"tick \d+")
        show("bob", "--", "disconnects")
        bob.close()
        expect("alice", alice_lines.until(lambda line: not line.startswith(b"tick")), rb"left \d+")
        finish("chat_server", server)
        alice.close()
    finally:
        kill(server)


def routerd(binary):
    directory = tempfile.mkdtemp(prefix="sockserv-routerd-demo-")
    print("-- $ cd %s && routerd    (no arguments: the defaults)" % directory)
    daemon = start([binary], cwd=directory)
    try:
        ready = daemon.lines.until(b"routerd: ready")
        helper = daemon.lines.until(re.compile(rb"routerd: helper \d+ exited").match)  # it says hello and ends
        for line in daemon.lines.seen + [ready or b"(not ready)", helper or b"(the helper did not end)"]:
            print("   | " + line.decode(errors="replace"))
        log = b"\n".join(daemon.lines.seen)
        daemon.lines.seen = []
        found = dict(re.findall(rb"routerd: (tcp control|discovery) on 127\.0\.0\.1:(\d+)", log))
        tcp_port, udp_port = int(found[b"tcp control"]), int(found[b"discovery"])

        control = connect(os.path.join(directory, "routerd.sock"), socket.AF_UNIX)
        control_lines = Lines(control)
        for command, wanted in ((b"help", rb"commands: .*"), (b"status", rb"status name=routerd .*")):
            show("control", "->", command)
            control.sendall(command + b"\n")
            expect("control", control_lines.line(), wanted)

        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.settimeout(5)
        show("udp", "->", b"DISCOVER")
        probe.sendto(b"DISCOVER\n", ("127.0.0.1", udp_port))
        expect("udp", probe.recv(512).rstrip(b"\n"),
               rb"ROUTERD name=routerd tcp=127\.0\.0\.1:\d+ control=routerd\.sock")
        probe.close()

        tcp = connect(("127.0.0.1", tcp_port))
        show("tcp", "->", b"status")
        tcp.sendall(b"status\n")
        expect("tcp", Lines(tcp).line(), rb"status name=routerd .*tcp_clients=1 .*")
        tcp.close()
        outsider = connect(("127.0.0.1", tcp_port), source=("127.0.0.2", 0))
        show("127.0.0.2", "->", b"status   (not in the allow list)")
        outsider.sendall(b"status\n")
        answer = Lines(outsider).line()
        show("127.0.0.2", "<-", "(closed unanswered)" if answer is None else answer)
        if answer is not None:
            failures.append("a client outside the allow list got an answer: %r" % answer)
        outsider.close()

        show("routerd", "--", "SIGHUP (no routerd.conf here: the configuration is kept)")
        daemon.send_signal(signal.SIGHUP)
        reloaded = daemon.lines.until(b"routerd: reload")
        print("   | " + (reloaded or b"(no answer to SIGHUP)").decode(errors="replace"))
        if reloaded is None:
            failures.append("routerd did not answer SIGHUP")
        finish("routerd", daemon)
        control.close()
    finally:
        kill(daemon)
        shutil.rmtree(directory, ignore_errors=True)


def main():
    name, directory = sys.argv[1], sys.argv[2]
    try:
        {"chat_server": chat, "routerd": routerd}[name](os.path.abspath(os.path.join(directory, name)))
    except (OSError, ValueError, IndexError, KeyError) as error:  # no answer where one was due
        failures.append("%s: %r" % (name, error))
    for failure in failures:
        print("FAIL: " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
