#!/usr/bin/env python3
"""bench/ref/py_server.py -- the CPython socketserver reference servers.

    py_server.py --family tcp|udp|unix|unix-dgram --listen ADDR
                 [--mode echo|once] [--policy sync|threading|forking]
                 [--backlog N]

The same services as examples/echo_server.cpp, written the way the Python
documentation writes them: TCPServer / UDPServer / UnixStreamServer /
UnixDatagramServer, with ThreadingMixIn or ForkingMixIn (so ThreadingTCPServer,
ForkingTCPServer, ... exactly), a StreamRequestHandler that reads lines from
rfile and writes to wfile, and for datagrams a BaseRequestHandler that
answers with sendto (the faster of the documented two). Prints
"listening on ADDR" once bound; serves until killed.
"""
import argparse
import os
import socketserver
import sys

MODE = "echo"


class LineHandler(socketserver.StreamRequestHandler):
    def handle(self):
        if MODE == "once":
            self.wfile.write(self.rfile.readline().upper())
            return
        for line in self.rfile:
            self.wfile.write(line)


class DatagramHandler(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(data.upper() if MODE == "once" else data, self.client_address)


def main():
    global MODE
    parser = argparse.ArgumentParser()
    parser.add_argument("--family", required=True, choices=["tcp", "udp", "unix", "unix-dgram"])
    parser.add_argument("--listen", required=True)
    parser.add_argument("--mode", default="echo", choices=["echo", "once"])
    parser.add_argument("--policy", default="sync", choices=["sync", "threading", "forking"])
    parser.add_argument("--backlog", type=int, default=5)
    args = parser.parse_args()
    MODE = args.mode

    base = {"tcp": socketserver.TCPServer, "udp": socketserver.UDPServer,
            "unix": socketserver.UnixStreamServer,
            "unix-dgram": socketserver.UnixDatagramServer}[args.family]
    mixin = {"sync": None, "threading": socketserver.ThreadingMixIn,
             "forking": socketserver.ForkingMixIn}[args.policy]
    bases = (mixin, base) if mixin else (base,)
    server_class = type("BenchServer", bases, {"allow_reuse_address": True,
                                                "request_queue_size": args.backlog})
    if args.family in ("tcp", "udp"):
        host, port = args.listen.rsplit(":", 1)
        address = (host, int(port))
    else:
        address = args.listen
        if os.path.exists(address):
            os.unlink(address)
    handler = LineHandler if args.family in ("tcp", "unix") else DatagramHandler
    with server_class(address, handler) as server:
        where = server.server_address
        print("listening on %s" % ("%s:%d" % where if isinstance(where, tuple) else where), flush=True)
        server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
