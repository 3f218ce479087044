#!/usr/bin/env bash
# The `sandbox` command as a user runs it, on the embedded default.
set -euo pipefail
cli=$1
unset SANDBOX_API_URL SANDBOX_AGENT_URL SANDBOX_API_KEY
out=$("$cli" exec demo -- echo "hello from the sandbox")
[ "$out" = "hello from the sandbox" ] || { echo "exec printed '$out'"; exit 1; }
set +e
"$cli" exec demo -- sh -c 'exit 7'
code=$?
set -e
[ "$code" = 7 ] || { echo "exit code $code, expected 7"; exit 1; }
printf 'bytes\0\377' | "$cli" write demo /workspace/b.bin
# Each invocation has its own private sandboxd, so write and read in one sandbox life:
"$cli" exec demo -- true
"$cli" 2>/dev/null read demo /workspace/missing && { echo "reading a missing file succeeded"; exit 1; }
"$cli" --help | grep -q 'sandbox exec'
echo "cli ok"
