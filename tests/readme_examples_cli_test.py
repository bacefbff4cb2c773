"""The README's server programs, as printed there, built with exceptions and
with -fno-exceptions -fno-rtti (the project's warnings as errors), and run
against a port that is already taken: each must print the bind error and
exit 1 in both modes — not die of an uncaught exception in one of them.

The programs are cut out of README.md, so an edit there is what is tested:
"A complete server" (a whole program), and the bind_and_activate = false
fragment of "Errors, with and without exceptions" (given a main() and a
handler H)."""
import errno
import os
import re
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "support"))
from cli import TIMEOUT, check, summary  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CXX = os.environ.get("CXX", "g++").split()
FLAGS = ["-std=c++17", "-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Wconversion", "-Wsign-conversion",
         "-Werror", "-O0", "-I" + os.path.join(ROOT, "include"), "-pthread"]
MODES = {"with exceptions": [], "without exceptions": ["-fno-exceptions", "-fno-rtti"]}
PORT = 9999  # the README's

FRAGMENT_FRAME = """#include <sockserv.hpp>
#include <cstdio>
struct H : sockserv::stream_request_handler<> {
  void handle() { wfile.write(rfile.readline()); }
};
int main() {
%s
  return 0;
}
"""


def cpp_blocks(readme):
    """Every ```cpp block, with its indentation removed."""
    blocks = []
    for match in re.finditer(r"^( *)```cpp\n(.*?)^ *```", readme, re.S | re.M):
        indent = len(match.group(1))
        blocks.append("\n".join(line[indent:] for line in match.group(2).splitlines()) + "\n")
    return blocks


def programs():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        blocks = cpp_blocks(f.read())
    complete = [b for b in blocks if "int main()" in b and "sockserv::tcp_server<uppercase>" in b]
    deferred = [b for b in blocks if "server.server_bind()" in b and "int main" not in b]
    found = {}
    if check("README has the complete server", len(complete) == 1, "found %d" % len(complete)):
        found["complete server"] = complete[0]
    if check("README has the bind_and_activate = false fragment", len(deferred) == 1, "found %d" % len(deferred)):
        found["bind_and_activate = false"] = FRAGMENT_FRAME % deferred[0]
    return found


def hold_port():
    """A listener on 127.0.0.1:PORT, or None if something else has it (the
    bind under test then fails all the same)."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", PORT))
        holder.listen(1)
        return holder
    except OSError as failure:
        holder.close()
        if failure.errno != errno.EADDRINUSE:
            raise
        return None


def main():
    found = programs()
    holder = hold_port()
    with tempfile.TemporaryDirectory() as work:
        for name, source in found.items():
            path = os.path.join(work, re.sub(r"\W+", "_", name) + ".cpp")
            with open(path, "w", encoding="utf-8") as f:
                f.write(source)
            for mode, extra in MODES.items():
                binary = path[:-4] + ("_noexc" if extra else "_exc")
                built = subprocess.run(CXX + FLAGS + extra + [path, "-o", binary],
                                       capture_output=True, text=True)
                if not check("%s builds %s" % (name, mode), built.returncode == 0, built.stderr[-2000:]):
                    continue
                ran = subprocess.run([binary], capture_output=True, text=True, timeout=TIMEOUT)
                check("%s, %s, on a busy port: exits 1 (not killed by an exception)" % (name, mode),
                      ran.returncode == 1, "exit status %d, stderr %r" % (ran.returncode, ran.stderr))
                check("%s, %s: prints the bind error" % (name, mode),
                      "bind 127.0.0.1:%d: Address already in use" % PORT in ran.stderr, repr(ran.stderr))
    if holder is not None:
        holder.close()
    return summary()


if __name__ == "__main__":
    sys.exit(main())
