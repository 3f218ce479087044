#!/usr/bin/env bash
# The `sandbox` command as a user runs it, on the embedded default.
set -euo pipefail
cli=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")  # absolute: run-code runs in a temp dir
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
# run-code: output and values printed, images written to files, exit 1 when the code raised.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=$(cd "$work" && printf 'print("hi")\n6 * 7\n' | "$cli" run-code -)
[ "$out" = "$(printf 'hi\n42')" ] || { echo "run-code printed '$out'"; exit 1; }
printf 'import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()\n' > "$work/plot.py"
(cd "$work" && "$cli" run-code plot.py 2>/dev/null)
head -c 8 "$work/result-1.png" | od -An -c | grep -q 'P   N   G' || { echo "no PNG written"; exit 1; }
out=$(echo 'const a: number = 2; a + 1' | "$cli" run-code --language typescript -)
[ "$out" = "3" ] || { echo "typescript printed '$out'"; exit 1; }
set +e
echo '1/0' | "$cli" run-code - 2>"$work/err"
code=$?
set -e
[ "$code" = 1 ] && grep -q 'ZeroDivisionError: division by zero' "$work/err" ||
  { echo "a raising run: exit $code, stderr $(cat "$work/err")"; exit 1; }
# expose / tunnel print URLs of the right shape; bad ports are refused (the private sandboxd
# ends with each command, so the URLs are not fetched here: see tests/sdk/ports_test.cpp).
url=$("$cli" expose demo 8000 --token cli_token)
[[ "$url" =~ ^http://8000-[a-z2-7]+-cli_token\.localhost:[0-9]+/$ ]] || { echo "expose printed '$url'"; exit 1; }
url=$("$cli" tunnel demo 8000)
[[ "$url" =~ ^http://127\.0\.0\.1:[0-9]+/$ ]] || { echo "tunnel printed '$url'"; exit 1; }
set +e
"$cli" expose demo 3000 2>"$work/err"
code=$?
set -e
[ "$code" = 1 ] && grep -q INVALID_PORT "$work/err" || { echo "expose 3000: exit $code"; exit 1; }
echo "cli ok"
