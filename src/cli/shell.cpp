// `sandbox shell [NAME]`: the sandbox's terminal in this one. The local terminal is put in raw
// mode (restored on every way out: normal exit, errors, SIGTERM/SIGHUP/SIGINT/SIGQUIT), window
// size changes (SIGWINCH) are forwarded, and the remote shell's exit code is returned.
#include "cli/shell.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <thread>

namespace sandbox::cli {
namespace {

termios gSaved{};
std::atomic<bool> gRaw{false};
int gWinchPipe[2] = {-1, -1};

void restoreTerminal() {
    if (gRaw.exchange(false)) ::tcsetattr(STDIN_FILENO, TCSADRAIN, &gSaved);
}

void onFatalSignal(int sig) {
    restoreTerminal();
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

void onWinch(int) {
    int saved = errno;
    char c = 'w';
    ssize_t ignored = ::write(gWinchPipe[1], &c, 1);
    (void)ignored;
    errno = saved;
}

struct RawMode {
    bool active = false;
    RawMode() {
        if (!::isatty(STDIN_FILENO) || ::tcgetattr(STDIN_FILENO, &gSaved) != 0) return;
        termios raw = gSaved;
        ::cfmakeraw(&raw);
        for (int sig : {SIGTERM, SIGHUP, SIGINT, SIGQUIT}) ::signal(sig, onFatalSignal);
        gRaw = true;
        if (::tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) != 0) {
            gRaw = false;
            return;
        }
        std::atexit(restoreTerminal);
        active = true;
    }
    ~RawMode() { restoreTerminal(); }
};

bool windowSize(int& cols, int& rows) {
    winsize ws{};
    for (int fd : {STDIN_FILENO, STDOUT_FILENO})
        if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
            cols = ws.ws_col;
            rows = ws.ws_row;
            return true;
        }
    return false;
}

void writeAll(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        data.remove_prefix(static_cast<size_t>(n));
    }
}

}  // namespace

int runShell(const Sandbox& sb) {
    PtyOptions opts;
    windowSize(opts.cols, opts.rows);
    if (::pipe2(gWinchPipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        std::cerr << "sandbox: pipe: " << std::strerror(errno) << "\n";
        return 1;
    }
    int endPipe[2];
    if (::pipe2(endPipe, O_CLOEXEC) != 0) {
        std::cerr << "sandbox: pipe: " << std::strerror(errno) << "\n";
        return 1;
    }
    Pty pty = sb.terminal(opts);  // before raw mode: errors print normally
    RawMode raw;
    ::signal(SIGWINCH, onWinch);

    std::thread output([&pty, endFd = endPipe[1]] {
        try {
            while (auto chunk = pty.read()) writeAll(STDOUT_FILENO, *chunk);
        } catch (...) {
        }
        char c = 'e';
        ssize_t ignored = ::write(endFd, &c, 1);
        (void)ignored;
    });

    bool stdinOpen = true;
    for (;;) {
        pollfd fds[3] = {{endPipe[0], POLLIN, 0},
                         {gWinchPipe[0], POLLIN, 0},
                         {stdinOpen ? STDIN_FILENO : -1, POLLIN, 0}};
        // After the end of (non-terminal) input, Ctrl-D is repeated while the terminal lives: one
        // sent while the shell starts up can be swallowed, and each program reading the
        // terminal (cat, then the shell) takes one.
        int n = ::poll(fds, 3, stdinOpen ? -1 : 500);
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (n == 0) {
            try {
                pty.write("\x04");
            } catch (const SandboxError&) {
            }
            continue;
        }
        if (fds[0].revents) break;  // the terminal ended
        if (fds[1].revents) {
            char buf[64];
            while (::read(gWinchPipe[0], buf, sizeof buf) > 0) {
            }
            int cols = 0, rows = 0;
            if (windowSize(cols, rows)) {
                try {
                    pty.resize(cols, rows);
                } catch (const SandboxError&) {
                }
            }
        }
        if (fds[2].revents) {
            char buf[4096];
            ssize_t r = ::read(STDIN_FILENO, buf, sizeof buf);
            if (r < 0 && errno == EINTR) continue;
            try {
                if (r > 0) {
                    pty.write(std::string_view(buf, static_cast<size_t>(r)));
                } else {
                    // End of input (not a terminal): end the shell's input with Ctrl-D.
                    stdinOpen = false;
                    pty.write("\x04");
                }
            } catch (const SandboxError&) {
                // the connection is gone: the output thread notices and ends
            }
        }
    }
    pty.close();
    output.join();
    ::signal(SIGWINCH, SIG_DFL);
    restoreTerminal();
    if (auto code = pty.exitCode()) return *code;
    std::cerr << "sandbox: the terminal connection closed without an exit status\n";
    return 1;
}

}  // namespace sandbox::cli
