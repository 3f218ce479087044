#!/usr/bin/env bash
# Installs the build into a temp prefix and checks it as a user would meet it:
# - every installed program starts from the prefix with no LD_LIBRARY_PATH (RUNPATH $ORIGIN)
#   and reports the one version with --version;
# - tests/consumer builds against it with find_package and runs the quickstart on the
#   embedded default, sandboxd found beside the installed library (not on PATH);
# - the prefix still works after it is moved elsewhere (relocatable).
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
version=$(sed -n 's/^#define SANDBOX_VERSION_STRING "\(.*\)"$/\1/p' "$tmp/prefix/include/sandbox/version.hpp")
[[ -n "$version" ]] || { echo "no version in the installed version.hpp" >&2; exit 1; }
# A PATH without the prefix, and nothing that points at the build tree.
clean=(env -u SANDBOX_API_URL -u SANDBOX_AGENT_URL -u SANDBOX_API_KEY -u SANDBOXD_PATH
       -u LD_LIBRARY_PATH PATH=/usr/bin:/bin)
for tool in sandbox sandboxd sandbox-agent; do
  out=$("${clean[@]}" "$tmp/prefix/bin/$tool" --version)
  [[ "$out" == "$tool $version" ]] || { echo "$tool --version said '$out'" >&2; exit 1; }
done
[[ -f "$tmp/prefix/share/doc/sandbox/LICENSE" ]] || { echo "LICENSE not installed" >&2; exit 1; }

cmake -S "$src" -B "$tmp/build" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_CXX_FLAGS="${SANDBOX_CONSUMER_CXXFLAGS:-}" >/dev/null
cmake --build "$tmp/build" >/dev/null
"${clean[@]}" "$tmp/build/consumer"

# Moved: the CLI finds its library and sandboxd from where the prefix is now.
mv "$tmp/prefix" "$tmp/moved"
out=$("${clean[@]}" "$tmp/moved/bin/sandbox" exec relocated -- echo relocated-ok)
[[ "$out" == *relocated-ok* ]] || { echo "the moved prefix did not run: '$out'" >&2; exit 1; }
