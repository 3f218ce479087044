#!/usr/bin/env bash
# run_with_agent.sh AGENT_BIN PROGRAM [ARGS...]: starts AGENT_BIN on an ephemeral loopback port
# with a temp workspace, runs PROGRAM URL ARGS..., stops the agent by pid.
set -euo pipefail
agent=$1; shift
workdir=$(mktemp -d)
fifo="$workdir/out"
mkfifo "$fifo"
"$agent" --listen 127.0.0.1:0 --workspace "$workdir" >"$fifo" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$workdir"' EXIT
exec 3<"$fifo"
read -r -t 30 line <&3
port=${line##* }
"$@" "http://127.0.0.1:$port"
