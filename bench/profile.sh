#!/bin/sh
# bench/profile.sh — profiles one server under the benchmark's load, the way
# the analysis in bench/analysis.md was made.
#
#   bench/profile.sh FAMILY MODE CLIENTS TOOL -- SERVER [ARGS...]
#     FAMILY tcp|udp|unix   MODE echo|once   CLIENTS N
#     TOOL   perf     perf record -g of everything on the server's CPU -> /tmp/perf.data
#            strace   strace -c -f of the server: system calls per request
#            faults   perf record of page faults on the server's CPU (-d)
#            stat     perf stat of the server process: task-clock, context switches, faults
#            none     just the load generator's numbers
#   e.g. bench/profile.sh udp echo 16 strace -- build/examples/echo_server --policy sync
#
# As in bench/run.py: the server is pinned to CPU 1 and the load generator
# to CPU 0, each in its own session whose scheduling autogroup is raised to
# nice -10 (root), listen backlog 1024, 0.5 s warm-up; the tool samples 1.5 s
# from the middle of a 3 s run. Build first: make bench-quick (or bench/run.py).
set -eu
[ $# -ge 6 ] && [ "$5" = "--" ] || { sed -n '2,16p' "$0"; exit 2; }
family=$1 mode=$2 clients=$3 tool=$4
shift 5
loadgen=build/bench/loadgen
work=$(mktemp -d)
address=127.0.0.1:0
case $family in unix*) address=$work/server.sock ;; esac

setsid sh -c 'echo -10 >/proc/self/autogroup 2>/dev/null; echo $$ >"$0/pid"; exec taskset -c 1 "$@"' "$work" \
  "$@" --family "$family" --listen "$address" --mode "$mode" --backlog 1024 >"$work/out" 2>"$work/err" &
i=0
until grep -q listening "$work/out" 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 200 ] || { cat "$work/err"; exit 1; }; sleep 0.05
done
pid=$(cat "$work/pid")
where=$(sed -n 's/listening on //p' "$work/out")
setsid sh -c 'echo -10 >/proc/self/autogroup 2>/dev/null; exec taskset -c 0 "$@"' raised "$loadgen" \
  --family "$family" --connect "$where" --mode "$mode" --clients "$clients" --duration 3 --warmup 0.5 >"$work/load" &
load=$!
sleep 1
case $tool in
  perf) perf record -F 2999 -g -a -C 1 -o /tmp/perf.data -- sleep 1.5 >/dev/null 2>&1
        echo "perf report -i /tmp/perf.data --children --sort sym" ;;
  faults) perf record -e page-faults -d -a -C 1 -o /tmp/perf.data -- sleep 1.5 >/dev/null 2>&1
        echo "perf report -i /tmp/perf.data --sort comm,sym" ;;
  strace) timeout 1 strace -c -f -p "$pid" 2>&1 >/dev/null | sed -n '3,14p' || true ;;
  stat) perf stat -e task-clock,context-switches,page-faults -p "$pid" -- sleep 1.5 2>&1 | grep -E 'clock|switch|fault' ;;
  none) ;;
  *) echo "unknown tool $tool" >&2 ;;
esac
wait $load || true
cat "$work/load"
kill "$pid" 2>/dev/null || true
sleep 0.2
kill -KILL -"$pid" 2>/dev/null || true
rm -rf "$work"
