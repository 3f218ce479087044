#!/usr/bin/env bash
# Installs the build into a temp prefix, builds tests/consumer against it with find_package,
# and runs it on the embedded default (sandboxd found in the install prefix).
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src" -B "$tmp/build" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_CXX_FLAGS="${SANDBOX_CONSUMER_CXXFLAGS:-}" >/dev/null
cmake --build "$tmp/build" >/dev/null
env -u SANDBOX_API_URL -u SANDBOX_AGENT_URL -u SANDBOX_API_KEY -u SANDBOXD_PATH \
  LD_LIBRARY_PATH="$tmp/prefix/lib:${LD_LIBRARY_PATH:-}" PATH="$tmp/prefix/bin:$PATH" "$tmp/build/consumer"
