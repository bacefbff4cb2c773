#!/usr/bin/env python3
"""tls_echo against real TLS clients: openssl s_client, curl and Python's ssl
module, with certificates the openssl command makes in a temp dir. Echo under
each policy, a client certificate accepted and one refused (the verified
subject logged), resumption (s_client -reconnect, Python session reuse),
and failed handshakes (plaintext, TLS 1.3 only, a stall) that leave the
server serving, under threading and under the event loop. Runs
build/examples/tls_echo (BUILD from the environment); ends with a
Catch2-style summary line for tests/run_all.sh."""
import os, queue, shutil, socket, ssl, subprocess, sys, tempfile, threading

BUILD = os.environ.get("BUILD", "build")
SERVER = os.path.join(BUILD, "examples", "tls_echo")
TIMEOUT = 10
HANDSHAKE_MS = 500  # tls_echo --handshake-timeout, for the stalled client
results = []


def check(name, condition, detail=""):
    results.append(condition)
    print(("ok     " if condition else "FAILED ") + name + ("" if condition else "  " + detail))


def run(*args, stdin=b""):
    return subprocess.run(args, input=stdin, capture_output=True, timeout=TIMEOUT)


def make_certificates(d):
    def ec_key(name):
        run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{d}/{name}")
    def signed(key, subject, out):
        run("openssl", "req", "-new", "-key", f"{d}/{key}", "-subj", subject, "-out", f"{d}/req.csr")
        run("openssl", "x509", "-req", "-in", f"{d}/req.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
            "-CAcreateserial", "-days", "2", "-out", f"{d}/{out}")
    ec_key("ca.key")
    run("openssl", "req", "-x509", "-new", "-key", f"{d}/ca.key", "-subj", "/CN=tls_echo test CA", "-days", "2",
        "-out", f"{d}/ca.pem")
    ec_key("server.key")
    signed("server.key", "/CN=localhost", "server.pem")
    ec_key("client.key")
    signed("client.key", "/O=sockserv/CN=device-7", "client.pem")
    ec_key("rogue.key")
    run("openssl", "req", "-x509", "-new", "-key", f"{d}/rogue.key", "-subj", "/CN=rogue", "-days", "2",
        "-out", f"{d}/rogue.pem")


class server:
    """tls_echo in the background; its stderr lines collected on a thread."""
    def __init__(self, d, policy="threading", client_ca=False):
        args = [SERVER, "--listen", "127.0.0.1:0", "--cert", f"{d}/server.pem", "--key", f"{d}/server.key",
                "--policy", policy, "--handshake-timeout", str(HANDSHAKE_MS)]
        if client_ca:
            args += ["--client-ca", f"{d}/ca.pem"]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline().rsplit(":", 1)[1])
        self.lines = queue.Queue()
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self):
        for line in self.process.stderr:
            self.lines.put(line)

    def log_line_with(self, text):
        """The first stderr line containing text (bounded wait), or None."""
        try:
            while True:
                line = self.lines.get(timeout=TIMEOUT)
                if text in line:
                    return line
        except queue.Empty:
            return None

    def stop(self):
        self.process.terminate()
        return self.process.wait(TIMEOUT)


def s_client(port, d, *extra, stdin=b"hello from s_client\n"):
    return run("openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", f"{d}/ca.pem",
               "-verify_return_error", "-no_ign_eof", *extra, stdin=stdin)


def s_client_echo(port, d, *extra):
    """Sends a line through s_client and waits for it to come back; the
    echoed line, or what s_client printed if it never came."""
    client = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", f"{d}/ca.pem",
                               "-verify_return_error", "-quiet", *extra],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    timer = threading.Timer(TIMEOUT, client.kill)
    timer.start()
    try:
        client.stdin.write(b"hello from s_client\n")
        client.stdin.flush()
        return client.stdout.readline()
    finally:
        timer.cancel()
        client.kill()
        client.wait()


def python_echo(port, d, text=b"hello from python\n", session=None, context=None):
    context = context or ssl.create_default_context(cafile=f"{d}/ca.pem")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        with context.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
            tls.sendall(text)
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = tls.recv(1024)
                if not chunk:
                    break
                reply += chunk
            reused, kept = tls.session_reused, tls.session
            tls.unwrap()  # close_notify both ways
            return reply, reused, kept


def main():
    d = tempfile.mkdtemp(prefix="sockserv-tls-")
    try:
        make_certificates(d)
        for policy in ("threading", "sync", "forking", "event"):
            s = server(d, policy)
            try:
                reply, _, _ = python_echo(s.port, d)
                check(f"python ssl echo (--policy {policy})", reply == b"hello from python\n", repr(reply))
            finally:
                check(f"tls_echo --policy {policy} stops on SIGTERM", s.stop() == 0)

        for policy in ("threading", "event"):
            checks_on_one_server(d, policy)
            checks_with_client_certificates(d, policy)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    passed = sum(1 for r in results if r)
    failed = len(results) - passed
    print(f"test cases: {len(results)} | {passed} passed | {failed} failed")
    return 0 if failed == 0 else 1


def checks_on_one_server(d, policy):
    """Real clients, resumption and failed handshakes against one server."""
    s = server(d, policy)
    p = f" (--policy {policy})"
    try:
        echoed = s_client_echo(s.port, d)
        check("openssl s_client echo" + p, echoed == b"hello from s_client\n", repr(echoed))
        out = s_client(s.port, d, stdin=b"")
        check("TLS 1.2 negotiated" + p, b"TLSv1.2" in out.stdout)
        out = s_client(s.port, d, "-reconnect", stdin=b"")
        check("s_client -reconnect resumes the session" + p, out.stdout.count(b"Reused, TLSv1.2") >= 5,
              repr(out.stdout.count(b"Reused")))
        context = ssl.create_default_context(cafile=f"{d}/ca.pem")
        _, reused_first, kept = python_echo(s.port, d, context=context)
        _, reused_second, _ = python_echo(s.port, d, session=kept, context=context)
        check("python session reuse" + p, (reused_first, reused_second) == (False, True))
        out = run("curl", "-sS", "--max-time", "5", "--cacert", f"{d}/ca.pem", f"https://localhost:{s.port}/hi")
        check("curl --cacert" + p, out.returncode == 0 and out.stdout.startswith(b"GET /hi HTTP/1.1"),
              repr((out.returncode, out.stdout[:80], out.stderr[-200:])))

        with socket.create_connection(("127.0.0.1", s.port), timeout=TIMEOUT) as plain:
            plain.sendall(b"hello in plaintext\n")
            plain.recv(100)  # the server hangs up (possibly after an alert)
        line = s.log_line_with("TLS handshake failed")
        check("plaintext on the TLS port: a clear error" + p, line is not None and "plaintext" in line, repr(line))
        out = s_client(s.port, d, "-tls1_3")
        line = s.log_line_with("TLS handshake failed")
        check("a TLS 1.3-only client: refused with a clear error" + p,
              out.returncode != 0 and line is not None and "TLS 1.3" in line, repr(line))
        with socket.create_connection(("127.0.0.1", s.port), timeout=TIMEOUT) as staller:
            staller.sendall(b"\x16\x03\x01")  # a record header, then nothing
            line = s.log_line_with("TLS handshake failed")
            ended = staller.recv(100) == b""
        check("a stalled handshake: cut off at the deadline" + p,
              ended and line is not None and f"no progress within {HANDSHAKE_MS} ms" in line, repr(line))
        reply, _, _ = python_echo(s.port, d, b"still serving\n")
        check("the server keeps serving after failed handshakes" + p, reply == b"still serving\n")
    finally:
        check(f"tls_echo --policy {policy} stops on SIGTERM", s.stop() == 0)


def checks_with_client_certificates(d, policy):
    """--client-ca: a client certificate accepted (its subject logged) and two refused."""
    s = server(d, policy, client_ca=True)
    p = f" (--policy {policy})"
    try:
        echoed = s_client_echo(s.port, d, "-cert", f"{d}/client.pem", "-key", f"{d}/client.key")
        check("client certificate signed by the CA: accepted" + p, echoed == b"hello from s_client\n",
              repr(echoed))
        line = s.log_line_with("subject")
        check("its verified subject is logged" + p, line is not None and "subject CN=device-7,O=sockserv" in line,
              repr(line))
        out = s_client(s.port, d, "-cert", f"{d}/rogue.pem", "-key", f"{d}/rogue.key")
        line = s.log_line_with("TLS handshake failed")
        check("a self-signed client certificate: refused" + p,
              b"hello from s_client\n" not in out.stdout and line is not None and "trusted CA" in line, repr(line))
        out = s_client(s.port, d)
        line = s.log_line_with("TLS handshake failed")
        check("no client certificate: refused" + p, line is not None and "no certificate" in line, repr(line))
    finally:
        s.stop()


if __name__ == "__main__":
    sys.exit(main())
