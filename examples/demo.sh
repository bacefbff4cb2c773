#!/bin/sh
# demo.sh — the seed's examples, run end to end (`make demo`).
#
# Each server starts in the background on a port the kernel picks (argument
# 0); the demo waits for its "listening on 127.0.0.1:PORT" line, runs the
# matching client with the seed's words, shows both outputs, checks them
# against what the seed's Python programs print, and stops the server with
# SIGTERM. Then the daemon examples (chat_server, routerd) talk with a small
# Python client (demo_daemons.py). Nothing waits longer than DEMO_TIMEOUT
# seconds (default 10).
# Exit 0: every output was right; 1: something failed.
#
# Environment: BUILD (default build) — where `make examples` put the binaries.
# SERVERS (default: the same) — where the servers (and threaded_tcp,
# forking_tcp) come from, and RUN — a prefix for running them: a cross
# build's servers run under qemu and talk to the native clients
# (tests/cross/run_examples.sh).
set -u

bin=${BUILD:-build}/examples
servers=${SERVERS:-$bin}
run=${RUN:-}
limit=${DEMO_TIMEOUT:-10}
failures=0

work=$(mktemp -d "${TMPDIR:-/tmp}/sockserv-demo.XXXXXX") || exit 1
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# Prints a file indented under its label.
show() {
  echo "-- $1"
  sed 's/^/   | /' "$2"
}

# wait_for PID: waits for a background process, killing it after $limit
# seconds, and returns its exit status (137 if it had to be killed).
wait_for() {
  (
    trap 'kill "$sleeper" 2>/dev/null; wait "$sleeper"; exit 0' TERM  # called off: leave no sleep behind
    sleep "$limit" &
    sleeper=$!
    wait "$sleeper" && kill -KILL "$1"
  ) >/dev/null 2>&1 &
  watchdog=$!
  wait "$1"
  waited_status=$?
  kill "$watchdog" 2>/dev/null
  return "$waited_status"
}

# run_limited OUTFILE COMMAND...: runs a command with a time limit, its
# output (stdout and stderr) into OUTFILE.
run_limited() {
  out=$1
  shift
  "$@" >"$out" 2>&1 &
  wait_for $!
}

# start_server NAME: starts build/examples/NAME on a free port and sets
# $port once the server has printed that it listens.
start_server() {
  # Made here first: the background shell may not have opened it yet when
  # the loop below first reads it.
  : >"$work/$1.out"
  # shellcheck disable=SC2086  # RUN may be a command with arguments
  $run "$servers/$1" 0 >"$work/$1.out" 2>&1 &
  server_pid=$!
  ticks=0
  while :; do
    line=$(sed -n '/^listening on /{p;q;}' "$work/$1.out")
    [ -n "$line" ] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
      show "$1 exited before listening:" "$work/$1.out"
      server_pid=
      return 1
    fi
    ticks=$((ticks + 1))
    if [ "$ticks" -gt $((limit * 20)) ]; then
      show "$1 did not print 'listening on' within ${limit}s:" "$work/$1.out"
      return 1
    fi
    sleep 0.05
  done
  port=${line##*:}
}

# stop_server NAME: SIGTERM, then the server must exit 0 by itself.
stop_server() {
  kill -TERM "$server_pid"
  wait_for "$server_pid"
  status=$?
  server_pid=
  [ "$status" -eq 0 ] || fail "$1 exited with status $status after SIGTERM"
}

# demo SERVER CLIENT EXPECTED_SERVER_OUTPUT EXPECTED_CLIENT_OUTPUT
# Runs CLIENT twice (the seed's two messages) against SERVER.
demo() {
  server=$1 client=$2
  echo
  echo "=== $server + $client"
  if [ ! -x "$servers/$server" ] || [ ! -x "$bin/$client" ]; then
    fail "$servers/$server or $bin/$client is missing: run 'make examples'"
    return
  fi
  start_server "$server" || { fail "$server did not start"; return; }
  echo "-- $server listening on 127.0.0.1:$port"
  : >"$work/client.out"
  for words in "hello world with TCP" "python is nice"; do
    echo "-- \$ $client --port $port $words"
    # shellcheck disable=SC2086  # the words are meant to be split
    run_limited "$work/one.out" "$bin/$client" --port "$port" $words
    status=$?
    sed 's/^/   | /' "$work/one.out"
    cat "$work/one.out" >>"$work/client.out"
    [ "$status" -eq 0 ] || fail "$client exited with status $status"
  done
  stop_server "$server"
  sed '/^listening on /d' "$work/$server.out" >"$work/server.out"
  show "$server printed (after its 'listening on' line):" "$work/server.out"
  printf "%b" "$3" >"$work/expected-server"
  printf "%b" "$4" >"$work/expected-client"
  cmp -s "$work/server.out" "$work/expected-server" || fail "$server output differs from the seed's"
  cmp -s "$work/client.out" "$work/expected-client" || fail "$client output differs from the seed's"
}

# The seed's first TCP server echoes the newline it received, so its client
# prints an empty line after each reply, exactly as the Python client does.
demo tcp_uppercase tcp_client \
  'Received from 127.0.0.1:\nhello world with TCP\n\nReceived from 127.0.0.1:\npython is nice\n\n' \
  'Sent:     hello world with TCP\nReceived: HELLO WORLD WITH TCP\n\nSent:     python is nice\nReceived: PYTHON IS NICE\n\n'

demo tcp_uppercase_stream tcp_client \
  '127.0.0.1 wrote:\nhello world with TCP\n127.0.0.1 wrote:\npython is nice\n' \
  'Sent:     hello world with TCP\nReceived: HELLO WORLD WITH TCP\nSent:     python is nice\nReceived: PYTHON IS NICE\n'

# The seed's UDP server prints the bytes object: b'...'.
demo udp_uppercase udp_client \
  "127.0.0.1 wrote:\nb'hello world with TCP'\n127.0.0.1 wrote:\nb'python is nice'\n" \
  'Sent:     hello world with TCP\nReceived: HELLO WORLD WITH TCP\nSent:     python is nice\nReceived: PYTHON IS NICE\n'

# ---- ThreadingMixIn / ForkingMixIn examples --------------------------------
# threaded_tcp (and forking_tcp) run their own server and three clients and
# exit by themselves; each is run if it has been built.
for example in threaded_tcp forking_tcp; do
  echo
  echo "=== $example"
  if [ ! -x "$servers/$example" ]; then
    echo "-- not built: skipped"
    continue
  fi
  # shellcheck disable=SC2086
  run_limited "$work/$example.out" $run "$servers/$example"
  status=$?
  show "\$ $example" "$work/$example.out"
  [ "$status" -eq 0 ] || fail "$example exited with status $status"
  for n in 1 2 3; do
    grep -q "^Received: .*Hello World $n\$" "$work/$example.out" || fail "$example: no reply to 'Hello World $n'"
  done
done

# ---- A sockserv server inside another library's main loop ------------------
# embed_libuv and embed_glib are built when pkg-config finds their library: an
# echo server served by that main loop, on the program's one thread.
for example in embed_libuv embed_glib; do
  echo
  echo "=== $example + tcp_client"
  if [ ! -x "$bin/$example" ]; then
    echo "-- not built: skipped"
    continue
  fi
  start_server "$example" || { fail "$example did not start"; continue; }
  echo "-- $example listening on 127.0.0.1:$port"
  run_limited "$work/one.out" "$bin/tcp_client" --port "$port" hello from the host loop
  sed 's/^/   | /' "$work/one.out"
  grep -q '^Received: hello from the host loop$' "$work/one.out" || fail "$example did not echo"
  threads=$(ls "/proc/$server_pid/task" 2>/dev/null | wc -l)
  [ "$threads" -eq 1 ] || fail "$example runs $threads threads, not 1"
  stop_server "$example"
done

# ---- The daemon's loop: chat_server and routerd -----------------------------
# A small Python client (examples/demo_daemons.py) starts each on loopback,
# talks to it, shows the conversation and what the server logged, and stops
# it with SIGTERM; it exits 1 if any answer was not the expected one.
for example in chat_server routerd; do
  echo
  echo "=== $example"
  if [ ! -x "$bin/$example" ]; then
    echo "-- not built: skipped"
    continue
  fi
  run_limited "$work/$example.out" python3 "$(dirname "$0")/demo_daemons.py" "$example" "$bin"
  status=$?
  cat "$work/$example.out"
  [ "$status" -eq 0 ] || fail "$example: the conversation went wrong (status $status)"
done

# ---- TLS: tls_echo with a throwaway CA, talked to by openssl s_client ------
# Built only when libbearssl-dev is installed; needs the openssl command.
# A cross build's tls_echo (static musl, libbearssl.a) runs under $run.
echo
echo "=== tls_echo + openssl s_client"
if [ ! -x "$servers/tls_echo" ] || ! command -v openssl >/dev/null 2>&1; then
  echo "-- tls_echo or openssl not available: skipped"
else
  tls=$work/tls
  mkdir -p "$tls"
  {
    openssl ecparam -name prime256v1 -genkey -noout -out "$tls/ca.key" &&
      openssl req -x509 -new -key "$tls/ca.key" -subj "/CN=demo CA" -days 1 -out "$tls/ca.pem" &&
      openssl ecparam -name prime256v1 -genkey -noout -out "$tls/server.key" &&
      openssl req -new -key "$tls/server.key" -subj "/CN=localhost" -out "$tls/server.csr" &&
      openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
        -days 1 -out "$tls/server.pem"
  } >"$tls/openssl.out" 2>&1 || fail "openssl could not make the demo certificates"
  : >"$work/tls_echo.out"
  $run "$servers/tls_echo" --listen 127.0.0.1:0 --cert "$tls/server.pem" --key "$tls/server.key" >"$work/tls_echo.out" 2>&1 &
  server_pid=$!
  ticks=0
  until grep -q '^listening on ' "$work/tls_echo.out" || [ "$ticks" -gt $((limit * 20)) ]; do
    ticks=$((ticks + 1))
    sleep 0.05
  done
  port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/tls_echo.out")
  echo "-- tls_echo listening on 127.0.0.1:$port"
  echo "-- \$ echo 'hello over TLS' | openssl s_client -connect 127.0.0.1:$port -CAfile ca.pem -quiet"
  # -quiet keeps the connection open after stdin ends: the server's reply is
  # the one line wanted, then the client is stopped.
  (echo "hello over TLS"; sleep 2) | openssl s_client -connect "127.0.0.1:$port" -CAfile "$tls/ca.pem" \
    -verify_return_error -quiet >"$work/s_client.out" 2>/dev/null &
  client_pid=$!
  ticks=0
  until grep -q 'hello over TLS' "$work/s_client.out" || [ "$ticks" -gt $((limit * 20)) ]; do
    ticks=$((ticks + 1))
    sleep 0.05
  done
  kill "$client_pid" 2>/dev/null
  wait "$client_pid" 2>/dev/null
  show "s_client printed:" "$work/s_client.out"
  grep -qx 'hello over TLS' "$work/s_client.out" || fail "tls_echo did not echo over TLS"
  stop_server tls_echo
fi

echo
if [ "$failures" -ne 0 ]; then
  echo "demo: $failures check(s) FAILED"
  exit 1
fi
echo "demo: all outputs match the seed's, and the daemons answered as expected"
exit 0
