#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/NAME/ (one small, readable-by-intent
input per file; see the input layout at the top of fuzz/NAME.hpp). Run from
the repository root; existing seeds of the same name are overwritten."""
import os

def op(kind, v):  # line_reader op byte: kind 0 readline(limit) 1 readline() 2 read(n) 3 read_to_eof(n)
    return bytes([(v << 2) | kind])

seeds = {
    "line_reader": {
        # mode: capacity index | 8 packet | 16 trickle | piece index << 5
        "lines-64": bytes([5, 3]) + op(0, 10) + op(1, 0) + op(2, 5) + b"hello\nworld\na line longer than ten\nend",
        "capacity-1": bytes([0, 2]) + op(1, 0) + op(0, 3) + b"ab\ncd\n\n\nxyz",
        "capacity-7-read": bytes([3, 2]) + op(2, 19) + op(3, 21) + b"0123456789" * 8 + b"\npartial",
        "long-line-16": bytes([4, 1]) + op(0, 63) + b"x" * 300 + b"\n",
        "packet": bytes([8 | 5, 2]) + op(0, 4) + op(2, 2) + b"GET / HTTP/1.0\r\n\r\nbody",
        "packet-empty": bytes([8, 1]) + op(1, 0),
        "trickle-1": bytes([16 | 2 | (0 << 5), 2]) + op(1, 0) + op(0, 2) + b"one\ntwo\nthree\n",
        "trickle-17": bytes([16 | 6 | (4 << 5), 3]) + op(0, 30) + op(2, 9) + op(1, 0) + b"k=v\n" * 40,
        "empty-stream": bytes([7, 1]) + op(1, 0),
        "no-ops-4096": bytes([7, 0]) + b"a\n" * 100,
        "limit-zero": bytes([5, 2]) + op(0, 0) + op(1, 0) + b"z\n",
    },
    "datagram_io": {
        # sizes: W index | N index << 3; write count; write sizes; payload
        "echo-8192": bytes([6 | 6 << 3, 3, 5, 0, 200]) + b"one\ntwo\nthree",
        "oversized-1": bytes([0 | 0 << 3, 1, 2]) + b"abc",
        "oversized-64": bytes([4 | 3 << 3, 2, 64, 1]) + b"y" * 65,
        "exact-64": bytes([4 | 3 << 3, 0]) + b"z" * 64,
        "empty": bytes([3 | 2 << 3, 1, 0]),
        "mtu-1500": bytes([5 | 5 << 3, 4, 199, 250, 3, 9]) + (b"line of text\n" * 160)[:2000],
        "max-65507": bytes([7 | 7 << 3, 2, 255, 255]) + b"\x00\xff\n" * 100,
        "writer-3": bytes([2 | 4 << 3, 5, 1, 1, 1, 1, 0]) + b"abcd\n",
    },
    "framing": {
        # kind: framing | capacity index << 3; piece; stream
        "lines-16": bytes([0 | 5 << 3, 3]) + b"a\nbb\nccc\n" + b"x" * 40,
        "lines-semicolon-2": bytes([1 | 1 << 3, 1]) + b"a;bcd;;e",
        "prefix2-255": bytes([3 | 6 << 3, 1]) + b"\x00\x03abc\x00\x00\x00\x01z\x00",
        "prefix1-malformed": bytes([2 | 3 << 3, 2]) + b"\x03abc\x05hello",
        "prefix4-2048": bytes([4 | 7 << 3, 7]) + b"\x00\x00\x00\x02hi\x00\x00\x00\x00",
        "prefix2-5": bytes([3 | 4 << 3, 4]) + b"\x00\x03abc\x00\x04",
        "long-line-1": bytes([0 | 0 << 3, 5]) + b"abcdef\n\n",
        "empty": bytes([0 | 6 << 3, 1]),
    },
    "address": {
        # selector (0 inet4, 1 inet6, 2 unix, 3 raw); port high, low; text
        "inet4": bytes([0, 0x1f, 0x90]) + b"127.0.0.1",
        "inet4-any": bytes([0, 0, 0]),
        "inet4-localhost": bytes([0, 0, 80]) + b"localhost",
        "inet4-bad": bytes([0, 1, 1]) + b"256.0.0.1\n%s",
        "inet6": bytes([1, 0, 9]) + b"::1",
        "inet6-scope": bytes([1, 0, 9]) + b"[fe80::1%lo]",
        "inet6-unbalanced": bytes([1, 0, 9]) + b"[::1",
        "inet6-long": bytes([1, 0xff, 0xff]) + b"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
        "unix": bytes([2, 0, 0]) + b"/tmp/app.sock",
        "unix-abstract": bytes([2, 0, 0]) + b"@service",
        "unix-at": bytes([2, 0, 0]) + b"@",
        "unix-107": bytes([2, 0, 0]) + b"/" + b"p" * 106,
        "unix-108": bytes([2, 0, 0]) + b"/" + b"p" * 107,
        "unix-nul-inside": bytes([2, 0, 0]) + b"/tmp/a\x00b",
        "raw-inet4": bytes([3, 16, 0]) + b"\x1f\x90\x7f\x00\x00\x01",
        "raw-unix-long": bytes([3, 128, 2]) + b"\x00" + b"u" * 130,
        "raw-unix-short": bytes([3, 3, 2]) + b"\x00",
        "raw-unknown": bytes([3, 40, 77]) + b"?" * 40,
    },
}

for target, files in seeds.items():
    directory = os.path.join("fuzz", "corpus", target)
    os.makedirs(directory, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
    print(f"{directory}: {len(files)} seeds")
