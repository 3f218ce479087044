#!/usr/bin/env bash
# `sandbox shell` as a person uses it: in a terminal (tmux), typing, resizing the window,
# exiting with a code. Checks the output on screen, the exit code, and that the local terminal
# is left as it was (raw mode undone).
# Skips (exit 77) only when tmux is not installed (scripts/bootstrap installs it).
set -euo pipefail
cli=$1
if ! command -v tmux >/dev/null 2>&1; then
  echo "SKIP: tmux is not installed (scripts/bootstrap installs it)"
  exit 77
fi
unset SANDBOX_API_URL SANDBOX_AGENT_URL SANDBOX_API_KEY
dir=$(mktemp -d)
sock="$dir/tmux.sock"
t() { tmux -S "$sock" "$@"; }
cleanup() {
  t kill-server >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

# The pane runs a wrapper: remember the terminal settings, run the shell, report.
cat >"$dir/run.sh" <<SCRIPT
#!/usr/bin/env bash
before=\$(stty -g)
"$cli" shell clishell
code=\$?
after=\$(stty -g)
if [ "\$before" = "\$after" ]; then echo "TTY-RESTORED"; else echo "TTY-CHANGED"; fi
echo "SHELL-EXIT=\$code"
sleep 600
SCRIPT
chmod +x "$dir/run.sh"

t -f /dev/null new-session -d -s test -x 100 -y 30 "$dir/run.sh"

screen() { t capture-pane -p -J -t test -S -200; }
# Polls the screen for a pattern (extended regex) with a deadline.
wait_for() {
  local pattern=$1 deadline=$((SECONDS + ${2:-60}))
  while [ $SECONDS -lt $deadline ]; do
    if screen | grep -Eq -- "$pattern"; then return 0; fi
    sleep 0.1
  done
  echo "FAIL: '$pattern' did not appear on the screen; the screen was:"
  screen
  exit 1
}

# The remote shell's prompt, then typing runs commands; the terminal has this window's size.
wait_for '[$#] *$'
t send-keys -t test 'echo hello-$((6*7)); stty size' Enter
wait_for '^hello-42'
wait_for '^30 100$'

# Resizing the window reaches the remote shell (SIGWINCH -> resize).
t resize-window -t test -x 120 -y 40
t send-keys -t test 'stty size' Enter
wait_for '^40 120$'

# Ctrl-C interrupts the remote command, not the local client.
# (the marker is printed by the foreground child itself, so Ctrl-C is sent while it runs)
t send-keys -t test "sh -c 'echo sleeping-\$((2+2)); exec sleep 300'" Enter
wait_for '^sleeping-4'
t send-keys -t test C-c
t send-keys -t test 'echo after-$((1+1))' Enter
wait_for '^after-2'

# The shell's exit code becomes the command's; the local terminal is restored.
t send-keys -t test 'exit 5' Enter
wait_for '^SHELL-EXIT=5$'
if ! screen | grep -q '^TTY-RESTORED$'; then
  echo "FAIL: the local terminal settings were not restored"
  screen
  exit 1
fi
# Not a terminal: standard input is sent as it is, and its end as Ctrl-D.
set +e
out=$(printf 'echo piped-$((3+4))\nexit 3\n' | "$cli" shell clipipe)
code=$?
set -e
[ "$code" = 3 ] || { echo "FAIL: piped shell exited $code, expected 3"; exit 1; }
case "$out" in *piped-7*) ;; *) echo "FAIL: piped shell printed: $out"; exit 1 ;; esac
out=$(printf 'echo eof-$((2+2))\n' | "$cli" shell clieof)
case "$out" in *eof-4*) ;; *) echo "FAIL: shell ended by EOF printed: $out"; exit 1 ;; esac
echo "cli shell ok"
