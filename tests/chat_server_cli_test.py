#!/usr/bin/env python3
"""examples/chat_server as its users see it: greetings, joins and leaves,
relays to the others only, /who, ticks from the timer, and what happens to
a client that stops reading (--slow close disconnects it, --slow drop makes
it miss messages, counted) while the others keep receiving. Loopback only;
every wait is bounded. Ends with a Catch2-style summary line."""
import os
import re
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from cli import Lines, check, connect, example, kill, start, stop, summary  # noqa: E402

SERVER = example("chat_server")
LINE = 4000  # bytes per relayed line in the slow-consumer cases


def start_chat(*options):
    server = start([SERVER, "--listen", "127.0.0.1:0"] + list(options))
    first = server.lines.line()
    match = re.match(rb"listening on 127\.0\.0\.1:(\d+)$", first or b"")
    if not check("chat_server %s prints 'listening on HOST:PORT'" % " ".join(options or ["(no options)"]), match,
                 repr(first)):
        kill(server)
        return None, None
    return server, ("127.0.0.1", int(match.group(1)))


def join(address, **options):
    """A client and its id, from the greeting."""
    s = connect(address, **options)
    lines = Lines(s)
    welcome = lines.line()
    match = re.match(rb"welcome (\d+)$", welcome or b"")
    return s, lines, (match.group(1) if match else None), welcome


def not_ticks(lines):
    return [line for line in lines if not line.startswith(b"tick ")]


def stopped_counts(rest):
    """(dropped, disconnected) from the line chat_server prints at exit."""
    for line in rest:
        match = re.match(rb"stopped: (\d+) messages dropped, (\d+) slow clients disconnected", line)
        if match:
            return int(match.group(1)), int(match.group(2))
    return None


def conversation():
    server, address = start_chat("--tick-ms", "50")
    if server is None:
        return
    try:
        a, a_lines, a_id, welcome = join(address)
        check("the first client is greeted with 'welcome <id>'", a_id is not None, repr(welcome))
        b, b_lines, b_id, welcome = join(address)
        check("the second client gets its own id", b_id is not None and b_id != a_id, repr((a_id, welcome)))
        joined = a_lines.until(lambda line: not line.startswith(b"tick "))
        check("the others hear 'joined <id>'", joined == b"joined " + (b_id or b""), repr(joined))

        long_line = b"L" * 4096
        a.sendall(b"hello\nsecond line\n" + long_line + b"\n/who\n")
        relayed = [b_lines.until(lambda line: not line.startswith(b"tick ")) for _ in range(3)]
        expected = [a_id + b": hello", a_id + b": second line", a_id + b": " + long_line]
        check("lines (up to 4 KiB) reach the others as '<id>: L', in order", relayed == expected,
              repr([r[:40] if r else r for r in relayed]))
        who = a_lines.until(b"who ")
        check("'/who' is answered with 'who <count>'", who == b"who 2", repr(who))
        own = [line for line in a_lines.seen if line.startswith((a_id or b"?") + b": ")]
        check("a sender does not get its own lines back", own == [], repr(own))

        first = b_lines.until(b"tick ")
        second = b_lines.until(b"tick ")
        numbers = [int(t.split()[1]) for t in (first, second) if t]
        check("--tick-ms sends 'tick <n>' to every client, counting up", len(numbers) == 2 and
              numbers[1] == numbers[0] + 1, repr((first, second)))
        a_tick = a_lines.until(b"tick ")
        check("every client gets the ticks", a_tick is not None, repr(a_tick))

        b.close()
        left = a_lines.until(lambda line: not line.startswith(b"tick "))
        check("the others hear 'left <id>'", left == b"left " + (b_id or b""), repr(left))
        code, took, rest = stop(server, signal.SIGTERM)
        check("SIGTERM stops chat_server gracefully (exit 0)", code == 0, repr((code, took)))
        check("it prints the counts at exit", stopped_counts(rest) == (0, 0), repr(rest[-3:]))
        a.close()
    finally:
        kill(server)


def enough_lines():
    """More lines than the kernel can buffer for a client that does not read:
    its socket's send buffer (at most tcp_wmem's maximum) twice over."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as limits:
            send_buffer = int(limits.read().split()[2])
    except (OSError, ValueError, IndexError):
        send_buffer = 4 << 20
    return min(2 * (send_buffer + (1 << 20)) // LINE, 20000)


def slow_consumer(policy, given=True):
    """A client that stops reading, a sender and a reader: every line the
    sender sends reaches the reader before the next is sent, whatever the
    slow client does. given=False: no --slow option (drop is the default)."""
    label = "--slow " + policy if given else "no --slow (so drop)"
    server, address = start_chat(*(["--slow", policy] if given else []))
    if server is None:
        return
    try:
        slow, slow_lines, slow_id, _ = join(address, receive_buffer=4096)
        sender, _, sender_id, _ = join(address)
        reader, reader_lines, reader_id, _ = join(address)
        check(label + ": three clients joined", None not in (slow_id, sender_id, reader_id))
        slow_id, sender_id = slow_id or b"?", sender_id or b"?"
        payload = b"x" * (LINE - 16)
        total = enough_lines()
        delivered = 0
        slow_left_at = None
        for i in range(total):
            sender.sendall(b"%d %s\n" % (i, payload))
            got = reader_lines.until(lambda line: line.startswith(sender_id + b": ") or line.startswith(b"left "))
            while got is not None and got.startswith(b"left "):
                if got == b"left " + slow_id and slow_left_at is None:
                    slow_left_at = i
                got = reader_lines.until(lambda line: line.startswith(sender_id + b": ") or line.startswith(b"left "))
            if got != b"%s: %d %s" % (sender_id, i, payload):
                break
            delivered += 1
            if policy == "close" and slow_left_at is not None and i >= slow_left_at + 100:
                break  # a hundred more lines after it was cut off
        sent = i + 1
        check(label + ": the reader got each line before the next was sent, while the slow client did not read",
              delivered == sent, "%d of %d" % (delivered, sent))

        if policy == "close":
            check(label + ": the slow client was disconnected (the others heard 'left <id>')",
                  slow_left_at is not None, "after %d lines of %d bytes" % (sent, LINE))
            rest = slow_lines.to_eof()
            relays = [line for line in (rest or []) if line.startswith(sender_id + b": ")]
            check(label + ": it reads what it had, then the connection ends", rest is not None and
                  len(relays) < sent, "%s lines" % (None if rest is None else len(relays)))
        else:
            check(label + ": the slow client stays connected", slow_left_at is None, repr(slow_left_at))
            # It reads again: /who is answered after everything queued for
            # it, so once "who" arrives it has all it is going to get.
            slow.sendall(b"/who\n")
            who = slow_lines.until(b"who ")
            relays = [line for line in slow_lines.seen if line.startswith(sender_id + b": ")]
            numbers = [int(line.split()[1]) for line in relays]
            check(label + ": it missed messages, and what it got is in order", who == b"who 3" and
                  0 < len(relays) < sent and numbers == sorted(set(numbers)), "%r, %d of %d" % (who, len(relays), sent))
            sender.sendall(b"after\n")
            after = slow_lines.until(lambda line: line.startswith(sender_id + b": "))
            check(label + ": reading again, it gets new messages", after == sender_id + b": after", repr(after))
            missed = sent - len(relays)

        code, took, rest = stop(server, signal.SIGTERM)
        counts = stopped_counts(rest)
        check(label + ": SIGTERM stops it (exit 0)", code == 0, repr((code, took)))
        if policy == "close":
            check(label + ": one slow client counted as disconnected, nothing dropped", counts == (0, 1),
                  repr(counts))
        else:
            check(label + ": every missed message is counted", counts == (missed, 0),
                  "%r, missed %d" % (counts, missed))
        for s in (slow, sender, reader):
            s.close()
    finally:
        kill(server)


def main():
    conversation()
    slow_consumer("close")
    slow_consumer("drop")
    slow_consumer("drop", given=False)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
