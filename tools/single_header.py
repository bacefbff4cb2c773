#!/usr/bin/env python3
"""Generates the one vendorable header from include/.

    tools/single_header.py [--root include] [--entry sockserv.hpp] OUTPUT

Starting at the umbrella header, every `#include "..."` of a project header
is replaced by that header's text, once, at its first use, so each header
lands after everything it depends on. `#pragma once` lines of the inlined
headers become include guards (the output has one #pragma once of its own);
system includes (`<...>`) stay where they are. Nothing is maintained by
hand: include/ is the only source.
"""
import argparse
import os
import re
import subprocess
import sys

QUOTED = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
OPENS = re.compile(r'^\s*#\s*if')          # #if, #ifdef, #ifndef
CLOSES = re.compile(r'^\s*#\s*endif\b')
PRAGMA_ONCE = re.compile(r'^\s*#\s*pragma\s+once\b')
SPDX = re.compile(r'^//\s*SPDX-License-Identifier:')  # the output states it once, at the top
VERSION = re.compile(r'^#define\s+SOCKSERV_VERSION_STRING\s+"([^"]+)"', re.M)


def revision(root):
    """Short git revision of the tree the header came from, if there is one."""
    try:
        out = subprocess.run(["git", "-C", root, "describe", "--always", "--dirty"],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def guard_name(rel):
    return "SOCKSERV_SINGLE_" + re.sub(r"[^A-Za-z0-9]", "_", rel).upper()


def inline(path, root, state, stack, out, conditional):
    """Appends the text of `path`, its project includes inlined.

    Each header goes in once, guarded by its own macro (the #pragma once it
    replaces). A header first reached inside an #if (say, epoll.hpp under
    __linux__) is not taken as done: an unconditional include of it later
    inlines it again, and the guard keeps whichever copy comes first.
    """
    real = os.path.realpath(path)
    if real in state["done"] or (conditional and real in state["conditional"]):
        return
    if real in stack:
        chain = " -> ".join(os.path.relpath(p, root) for p in stack + [real])
        sys.exit(f"single_header: include cycle: {chain}")
    stack.append(real)
    rel = os.path.relpath(real, root)
    guard = guard_name(rel)
    out.append(f"// ---- begin {rel} ----\n#ifndef {guard}\n#define {guard}\n")
    with open(real, encoding="utf-8") as source:
        depth = 0
        for line in source:
            if PRAGMA_ONCE.match(line) or SPDX.match(line):
                continue
            depth += 1 if OPENS.match(line) else -1 if CLOSES.match(line) else 0
            match = QUOTED.match(line)
            if match:
                target = os.path.join(os.path.dirname(real), match.group(1))
                if not os.path.exists(target):  # as with -I include
                    target = os.path.join(root, match.group(1))
                if not os.path.exists(target):
                    sys.exit(f"single_header: {rel}: cannot find \"{match.group(1)}\"")
                inline(target, root, state, stack, out, conditional or depth > 0)
                continue
            out.append(line)
    if out and not out[-1].endswith("\n"):
        out.append("\n")
    out.append(f"#endif  // {guard}\n// ---- end {rel} ----\n")
    stack.pop()
    state["conditional" if conditional else "done"].add(real)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="include")
    parser.add_argument("--entry", default="sockserv.hpp")
    parser.add_argument("--license", help="license text for the top (default: ROOT/../LICENSE)")
    parser.add_argument("output")
    args = parser.parse_args()

    root = os.path.realpath(args.root)
    body = []
    state = {"done": set(), "conditional": set()}
    inline(os.path.join(root, args.entry), root, state, [], body, False)

    # A header that the umbrella does not reach is not in the single header
    # either: say so (it may be a deliberate opt-in, so this is no error).
    reached = {os.path.relpath(p, root) for p in state["done"] | state["conditional"]}
    missing = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name.endswith(".hpp"):
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                if rel not in reached:
                    missing.append(rel)
    if missing:
        print("single_header: warning: not reachable from " + args.entry + ", left out: " +
              ", ".join(sorted(missing)), file=sys.stderr)

    with open(os.path.join(root, "sockserv", "version.hpp"), encoding="utf-8") as version_header:
        version = VERSION.search(version_header.read())
    if not version:
        sys.exit("single_header: no SOCKSERV_VERSION_STRING in sockserv/version.hpp")
    license_path = args.license or os.path.join(os.path.dirname(root), "LICENSE")
    with open(license_path, encoding="utf-8") as license_file:
        license_text = "".join(f"// {line}".rstrip() + "\n" for line in license_file)

    header = (
        "// SPDX-License-Identifier: BSL-1.0\n"
        "// sockserv.hpp — single-header build of sockserv, Python's socketserver\n"
        "// for embedded POSIX, header-only C++17.\n"
        "//\n"
        f"// sockserv {version.group(1)}, commit {revision(root)}.\n"
        "// GENERATED by tools/single_header.py from include/.\n"
        "// Do not edit: change include/ and run `make single-header`.\n"
        "//\n"
        f"{license_text}"
        "#pragma once\n"
        "#ifndef SOCKSERV_SINGLE_HEADER\n"
        "#define SOCKSERV_SINGLE_HEADER 1\n"
        "#endif\n\n"
    )
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(header)
        out.writelines(body)
    os.replace(tmp, args.output)


if __name__ == "__main__":
    main()
