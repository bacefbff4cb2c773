#!/usr/bin/env python3
"""examples/routerd as its users see it: started with no arguments it comes
up on defaults (its unix socket in the current directory, ephemeral ports
on stdout) on one thread; the control socket and the TCP port take
commands; UDP discovery is answered; the TCP allow list refuses others; a
SIGHUP re-reads the configuration; the helper's exit is reported; SIGTERM
(or `stop`) ends it with exit 0 within its deadline. Loopback only, every
wait bounded. Ends with a Catch2-style summary line."""
import os
import re
import shutil
import signal
import socket
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from cli import TIMEOUT, Lines, check, connect, example, kill, start, stop, summary  # noqa: E402

DAEMON = os.path.abspath(example("routerd"))
STOP_DEADLINE = 3.0  # routerd's own
MARGIN = 3.0         # for a loaded machine


def start_routerd(directory, *arguments):
    """Starts routerd in directory; returns (process, {what: address}) once it is ready."""
    daemon = start([DAEMON] + list(arguments), cwd=directory)
    found = {}
    patterns = {"control": rb"routerd: control socket (\S+)$", "tcp": rb"routerd: tcp control on (\S+):(\d+)$",
                "udp": rb"routerd: discovery on (\S+):(\d+)$"}
    ready = daemon.lines.until(b"routerd: ready")
    for line in daemon.lines.seen:
        for name, pattern in patterns.items():
            match = re.match(pattern, line)
            if match:
                found[name] = match.group(1).decode() if name == "control" else (match.group(1).decode(),
                                                                                  int(match.group(2)))
    if ready is None or len(found) != 3:
        check("routerd %s starts and prints its addresses" % " ".join(arguments), False,
              repr((ready, daemon.lines.seen)))
        kill(daemon)
        return None, None
    return daemon, found


class Session:
    """A control client: one command, one reply line."""

    def __init__(self, address, family=socket.AF_INET, source=None):
        self.socket = connect(address, family, source)
        self.lines = Lines(self.socket)

    def ask(self, command):
        try:
            self.socket.sendall(command.encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError):  # closed by the other side already
            self.lines.eof = True
            return None
        return self.lines.line()

    def close(self):
        self.socket.close()


def status_field(line, name):
    match = re.search(rb"\b" + name.encode() + rb"=(\S+)", line or b"")
    return match.group(1).decode() if match else None


def connects_as_nobody(path):
    """Whether a process running as user nobody can connect to a unix socket."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
            probe = socket.socket(socket.AF_UNIX)
            probe.settimeout(TIMEOUT)
            probe.connect(path)
            os._exit(0)
        except OSError:
            os._exit(1)
    return os.waitpid(pid, 0)[1] == 0


def thread_count(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def defaults(directory):
    """No arguments, no configuration file: the defaults, then SIGTERM."""
    daemon, where = start_routerd(directory)
    if daemon is None:
        return
    try:
        check("defaults: the control socket is routerd.sock in the current directory",
              where["control"] == "routerd.sock" and os.path.exists(os.path.join(directory, "routerd.sock")),
              repr(where["control"]))
        check("defaults: TCP and UDP on 127.0.0.1 with ephemeral ports",
              where["tcp"][0] == "127.0.0.1" and where["tcp"][1] > 0 and where["udp"][1] > 0, repr(where))
        helper = daemon.lines.until(re.compile(rb"routerd: helper \d+ exited").match)
        check("defaults: the default helper runs and its exit is reported",
              helper is not None and helper.endswith(b"exited with status 0"), repr(helper))
        session = Session(os.path.join(directory, "routerd.sock"), socket.AF_UNIX)
        status = session.ask("status")
        socket_path = os.path.join(directory, "routerd.sock")
        check("the control socket is for its user only (mode 0600)", os.stat(socket_path).st_mode & 0o777 == 0o600,
              oct(os.stat(socket_path).st_mode))
        if os.geteuid() == 0:
            os.chmod(directory, 0o755)  # so that the socket's own mode is what keeps others out
            check("another user cannot connect to it", not connects_as_nobody(socket_path))
        check("defaults: 'status' on the control socket", status_field(status, "name") == "routerd" and
              status_field(status, "helper") == "exited_with_status_0", repr(status))
        check("one thread serves everything (/proc/PID/task)", thread_count(daemon.pid) == 1,
              repr(os.listdir("/proc/%d/task" % daemon.pid)))
        code, took, rest = stop(daemon, signal.SIGTERM)
        check("defaults: SIGTERM ends it with exit 0 within the deadline",
              code == 0 and took < STOP_DEADLINE + MARGIN and b"routerd: stopped" in rest, repr((code, took, rest)))
        check("the idle control client was closed by the stop", session.lines.to_eof(1) == [])
        check("the control socket file is removed", not os.path.exists(os.path.join(directory, "routerd.sock")))
        session.close()
    finally:
        kill(daemon)


def write_config(path, *lines):
    with open(path, "w") as config:
        config.write("# routerd test configuration\n" + "".join(line + "\n" for line in lines))


def configured(directory):
    """A configuration, every service, a reload, the helper's exit status."""
    config = os.path.join(directory, "test.conf")
    write_config(config, "name gw-test", "allow 127.0.0.1/32", "status_interval 50")
    daemon, where = start_routerd(directory, "--config", config, "--control", "ctl.sock", "--helper", "exit 3")
    if daemon is None:
        return
    try:
        helper = daemon.lines.until(re.compile(rb"routerd: helper \d+ exited").match)
        check("the helper's exit status is reported", helper is not None and helper.endswith(b"with status 3"),
              repr(helper))
        ticks = [daemon.lines.until(b"routerd: status name=") for _ in range(2)]
        check("the status timer prints a status line periodically",
              None not in ticks and all(status_field(t, "name") == "gw-test" for t in ticks), repr(ticks))

        control = Session(os.path.join(directory, "ctl.sock"), socket.AF_UNIX)
        status = control.ask("status")
        check("control socket: status shows the configuration and the helper",
              status_field(status, "name") == "gw-test" and status_field(status, "helper") == "exited_with_status_3",
              repr(status))
        check("control socket: help", (control.ask("help") or b"").startswith(b"commands: "))
        unknown = control.ask("frobnicate")
        check("control socket: an unknown command gets an error and the session goes on",
              (unknown or b"").startswith(b"error: unknown command 'frobnicate'") and
              (control.ask("status") or b"").startswith(b"status "), repr(unknown))

        leaving = Session(os.path.join(directory, "ctl.sock"), socket.AF_UNIX)
        check("control socket: 'quit' says bye and ends the session",
              leaving.ask("quit") == b"bye" and leaving.lines.to_eof() == [])
        leaving.close()

        discovery = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        discovery.settimeout(TIMEOUT)
        discovery.sendto(b"hello?\n", where["udp"])    # not a discovery request: no answer
        discovery.sendto(b"DISCOVER\n", where["udp"])
        answer, _ = discovery.recvfrom(1024)
        check("UDP discovery: DISCOVER is answered with the name and where to reach it (nothing else is)",
              answer == b"ROUTERD name=gw-test tcp=127.0.0.1:%d control=ctl.sock\n" % where["tcp"][1], repr(answer))
        discovery.close()

        tcp = Session(where["tcp"])
        check("TCP control: an allowed client gets answers", status_field(tcp.ask("status"), "tcp_clients") == "1")
        outsider = Session(where["tcp"], source=("127.0.0.2", 0))
        refused = outsider.ask("status")
        check("TCP control: a client outside the allow list is closed unanswered",
              refused is None and outsider.lines.eof, repr(refused))
        logged = daemon.lines.until(b"routerd: refused tcp control client 127.0.0.2:")
        check("... and the refusal is logged", logged is not None)
        outsider.close()

        write_config(config, "name gw-reloaded", "allow 127.0.0.2/32", "status_interval 60000")
        daemon.send_signal(signal.SIGHUP)
        reloaded = daemon.lines.until(b"routerd: reload")
        check("SIGHUP re-reads the configuration", reloaded is not None and reloaded.startswith(b"routerd: reloaded")
              and b"gw-reloaded" in reloaded, repr(reloaded))
        insider = Session(where["tcp"], source=("127.0.0.2", 0))
        status = insider.ask("status")
        check("after the reload the new allow list applies (127.0.0.2 is in)",
              status_field(status, "name") == "gw-reloaded" and status_field(status, "reloads") == "1", repr(status))
        insider.close()
        shut_out = Session(where["tcp"])
        check("... and 127.0.0.1 is out", shut_out.ask("status") is None and shut_out.lines.eof)
        shut_out.close()

        write_config(config, "name broken", "allow not-a-network")
        reply = control.ask("reload")
        check("a configuration that does not parse is refused, naming the line",
              (reply or b"").startswith(b"error: ") and b"test.conf:3" in (reply or b""), repr(reply))
        check("... and the previous configuration stays", status_field(control.ask("status"), "name") == "gw-reloaded")
        check("the allowed TCP client is still served meanwhile",
              status_field(tcp.ask("status"), "name") == "gw-reloaded")
        check("still one thread", thread_count(daemon.pid) == 1, repr(os.listdir("/proc/%d/task" % daemon.pid)))

        check("control socket: 'stop' is acknowledged", control.ask("stop") == b"stopping")
        try:
            code = daemon.wait(STOP_DEADLINE + MARGIN)
        except Exception:
            code = None
        check("'stop' ends routerd with exit 0", code == 0, repr(code))
        check("sessions are closed by the stop", control.lines.to_eof(1) == [] and tcp.lines.to_eof(1) == [])
        control.close()
        tcp.close()
    finally:
        kill(daemon)


def helper_still_running(directory):
    """SIGTERM while the helper runs: the helper is stopped too, in time."""
    daemon, _ = start_routerd(directory, "--helper", "exec sleep 60")
    if daemon is None:
        return
    try:
        code, took, rest = stop(daemon, signal.SIGTERM)
        ended = [line for line in rest if re.match(rb"routerd: helper \d+ killed by signal 15$", line)]
        check("SIGTERM with the helper running: it is ended and reported, exit 0 within the deadline",
              code == 0 and took < STOP_DEADLINE + MARGIN and len(ended) == 1, repr((code, took, rest)))
    finally:
        kill(daemon)


def bad_configuration(directory):
    """A configuration that does not parse at start-up: a clear error, exit 1."""
    config = os.path.join(directory, "bad.conf")
    write_config(config, "name fine", "colour blue")
    daemon = start([DAEMON, "--config", config], cwd=directory)
    try:
        code = daemon.wait(TIMEOUT)
        said = daemon.lines.to_eof(1) or []
        check("a bad configuration at start-up is named with its line, exit 1",
              code == 1 and any(b"bad.conf:3: unknown key" in line for line in said), repr((code, said)))
    finally:
        kill(daemon)


def main():
    for case in (defaults, configured, helper_still_running, bad_configuration):
        directory = tempfile.mkdtemp(prefix="sockserv-routerd-")
        try:
            case(directory)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
