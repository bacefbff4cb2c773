#!/usr/bin/env python3
"""Where a static binary's bytes go, from its GNU ld map (-Wl,-Map,FILE).

    tools/size_map.py [--top N] [--markdown] MAP

Sums the sizes of the allocated input sections the linker kept (after
--gc-sections) by where they came from: each libc.a member on its own
(vfprintf.o, strerror.o, ...), and the program's own object split by symbol
into sockserv's out-of-line functions (namespace sockserv), the program
(main() and the rest it defines; the server templates are mostly inlined
there) and string literals; libgcc and the crt files are listed apart. The N largest
pieces are listed, the rest summed into one line. Output is a Markdown
table (--markdown) or plain columns.
"""
import argparse
import collections
import os
import re
import subprocess

# An input section line of the memory map: " .text.name 0xADDR 0xSIZE file"
# (a long section name puts the address on the next line).
SECTION = re.compile(r"^ (\.\S+|COMMON)\s*$|^ (\.\S+|COMMON)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
KEPT = ("text", "rodata", "data", "bss", "init_array", "fini_array", "init", "fini",
        "tdata", "tbss", "eh_frame", "gcc_except_table", "sdata", "sbss", "got", "MIPS", "ARM")


def demangle(names):
    try:
        out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True,
                             text=True, check=True).stdout.splitlines()
        return dict(zip(names, out))
    except (OSError, subprocess.CalledProcessError):
        return {n: n for n in names}


def origin(path):
    """'libc.a(vfprintf.o)' -> ('musl', 'vfprintf.o'); gcc's files -> ('gcc', ...)."""
    member = re.match(r"(.*)\((.*)\)$", path)
    if member:
        archive = os.path.basename(member.group(1))
        kind = "musl" if archive == "libc.a" else "gcc" if archive.startswith("libgcc") else archive
        return kind, member.group(2)
    base = os.path.basename(path)
    if base.startswith("crt") and base.endswith(".o"):
        return "crt", base
    return "program", base


def parse(map_path):
    """Yields (section name, size, file) for every kept input section."""
    in_map = False
    pending = None
    with open(map_path, encoding="utf-8", errors="replace") as text:
        for line in text:
            if line.startswith("Linker script and memory map"):
                in_map = True
                continue
            if not in_map or line.startswith("/DISCARD/"):
                if line.startswith("/DISCARD/"):
                    in_map = False
                continue
            match = SECTION.match(line.rstrip("\n"))
            if not match:
                pending = None
                continue
            if match.group(1):  # name alone; address, size and file follow
                pending = match.group(1)
                continue
            name = match.group(2) or pending
            pending = None
            if not name:
                continue
            size = int(match.group(4), 16)
            if size == 0 or name.split(".")[1] not in KEPT and not name.startswith(".COMMON"):
                continue
            yield name, size, match.group(5).strip()


def where_bytes_go(map_path, top):
    """[(where from, bytes)], the `top` largest first, then one line for the
    rest; and the total of the kept sections."""
    pieces = collections.Counter()
    program_sections = []
    for name, size, path in parse(map_path):
        kind, what = origin(path)
        if kind == "program":
            program_sections.append((name, size))
        else:
            pieces[f"{kind}: {what}"] += size
    # The program's object: by the function or object each section holds
    # (-ffunction-sections -fdata-sections give each its own section).
    symbols = [re.sub(r"^\.(text|rodata|data|bss)(\.unlikely|\.startup|\.hot)?\.", "", n) for n, _ in program_sections]
    readable = demangle(sorted(set(symbols)))
    for (name, size), symbol in zip(program_sections, symbols):
        text = readable.get(symbol, symbol)
        owner = ("sockserv: its out-of-line functions" if re.search(r"\bsockserv::", text)
                 else "the program: main() and the example's functions, with the server templates inlined")
        if re.match(r"^\.(rodata|data)(\.str|\.cst|$)", name):
            owner = "string literals and constants (program)"
        pieces[owner] += size
    ranked = pieces.most_common()
    rows = ranked[:top]
    rest = ranked[top:]
    if rest:
        rows.append((f"{len(rest)} smaller pieces", sum(size for _, size in rest)))
    return rows, sum(pieces.values())


def markdown(rows, total):
    lines = ["| from | bytes | share |", "| --- | ---: | ---: |"]
    lines += [f"| {what} | {size:,} | {100 * size / total:.1f}% |" for what, size in rows]
    lines.append(f"| **sections kept, total** | **{total:,}** | 100% |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("map")
    parser.add_argument("--top", type=int, default=14)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    rows, total = where_bytes_go(args.map, args.top)
    if args.markdown:
        print(markdown(rows, total))
        return
    for what, size in rows:
        print(f"{what:48} {size:8} {100 * size / total:5.1f}%")
    print(f"{'sections kept, total':48} {total:8}")


if __name__ == "__main__":
    main()
