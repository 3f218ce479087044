#!/usr/bin/env bash
# with-bridge.sh AGENT_BIN PROGRAM [ARGS...]
#
# Serves Cloudflare's bridge Worker (serve.mjs, under the Bun pinned in package-lock.json) on an
# ephemeral loopback port, every sandbox's container a sandbox-agent AGENT_BIN, then runs
# PROGRAM with SANDBOX_API_URL=http://127.0.0.1:PORT and SANDBOX_API_KEY set (a random key
# unless SANDBOX_API_KEY is already set), and exits with PROGRAM's exit code. PROGRAM is bounded
# by BRIDGE_TIMEOUT_SECONDS (default 600; then SIGTERM, SIGKILL 10 s later, exit code 124).
# Whatever happens, the bridge is stopped by pid (it stops its containers) and the temp dir that
# holds every container's workspace is removed. Should this script be killed outright, the
# bridge sees its stdin pipe close and stops by itself.
set -uo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 AGENT_BIN PROGRAM [ARGS...]" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
agent=$1
shift
bun=${SANDBOX_BUN:-$here/node_modules/.bin/bun}
if [ ! -x "$bun" ]; then
  echo "with-bridge.sh: $bun missing: run \`npm ci\` in $here (and in $here/..)" >&2
  exit 2
fi
limit=${BRIDGE_TIMEOUT_SECONDS:-600}
key=${SANDBOX_API_KEY:-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')}

workdir=$(mktemp -d "${TMPDIR:-/tmp}/sandbox-bridge-run-XXXXXX")
mkfifo "$workdir/stdout" "$workdir/life"
bridge_pid=""
cleanup() {
  if [ -n "$bridge_pid" ]; then
    kill -TERM "$bridge_pid" 2>/dev/null
    wait "$bridge_pid" 2>/dev/null
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# fd 5 keeps the bridge's stdin open (read-write, so opening it does not block) for as long as
# this script lives; nothing else holds it.
exec 5<>"$workdir/life"
BRIDGE_TMPDIR=$workdir SANDBOX_API_KEY=$key \
  "$bun" "$here/serve.mjs" --watch-stdin "$agent" <"$workdir/life" >"$workdir/stdout" 5>&- &
bridge_pid=$!
exec 3<"$workdir/stdout"
if ! read -r -t 60 line <&3 || [[ "$line" != "listening on port "* ]]; then
  echo "with-bridge.sh: the bridge did not start (${line:-no output})" >&2
  exit 1
fi
port=${line##* }

env -u SANDBOX_AGENT_URL SANDBOX_API_URL="http://127.0.0.1:$port" SANDBOX_API_KEY="$key" \
  timeout --kill-after=10 "$limit" "$@" 3<&- 5>&- &
program_pid=$!
wait "$program_pid"
rc=$?
if [ "$rc" -eq 124 ]; then
  echo "with-bridge.sh: $1 did not finish within $limit s" >&2
fi
exit "$rc"
