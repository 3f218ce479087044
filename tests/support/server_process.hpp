#pragma once
// Test fixture: starts a real server binary (sandbox-agent, later sandboxd) on an ephemeral
// loopback port with a private temp directory, and stops it by pid when done.
#include <sys/types.h>

#include <string>
#include <vector>

#include "client/http_client.hpp"

namespace sandbox::testing {

/// A private directory under $TMPDIR, removed recursively at destruction.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

/// A server process started with `args` plus `--listen 127.0.0.1:0`; the port is read from its
/// first stdout line ("... listening on port N"). When `args` has a `--listen` of its own (a
/// unix socket: "... listening on unix:PATH"), port() is 0.
class ServerProcess {
  public:
    /// `extraEnv` entries ("NAME=value") replace inherited ones of the same name; a non-empty
    /// `stderrPath` receives the server's stderr (else it is inherited).
    ServerProcess(const std::string& binary, std::vector<std::string> args,
                  std::vector<std::string> extraEnv = {}, const std::string& stderrPath = {});
    ~ServerProcess();
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    int port() const { return port_; }
    pid_t pid() const { return pid_; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    client::HttpConnection connect() const;
    /// SIGKILL now (fault tests). The destructor then only reaps.
    void kill();

  private:
    pid_t pid_ = -1;
    int port_ = 0;
};

/// sandbox-agent with a temp workspace.
struct AgentFixture {
    TempDir dir;
    TempDir runtime;  ///< its named pipes (--runtime-dir): removed even when a test SIGKILLs it
    ServerProcess server;
    client::HttpConnection http;
    AgentFixture();
    const std::string& workspace() const { return dir.path(); }
    /// POST a JSON body; returns status and parsed body (null json when not JSON).
    client::HttpResponse post(const std::string& target, const std::string& body);
};

/// sandboxd with a temp state directory (`--state-dir`), optionally `--api-key KEY`, plus any
/// extra arguments (e.g. `--isolation bwrap`, `--memory-mb 256`). Its stderr goes to log().
struct DaemonFixture {
    TempDir dir;
    ServerProcess server;
    client::HttpConnection http;
    explicit DaemonFixture(const std::string& apiKey = {}, std::vector<std::string> extraArgs = {});
    std::string stateDir() const { return dir.path() + "/state"; }
    pid_t pid() const { return server.pid(); }
    /// `path` as sandboxd sees it: run as root, sandboxd keeps its mounts (each workspace's
    /// tmpfs, bucket mounts) in a mount namespace of its own, reached through /proc/PID/root.
    std::string seen(const std::string& path) const {
        return "/proc/" + std::to_string(pid()) + "/root" + path;
    }
    /// A sandbox's workspace directory as sandboxd sees it.
    std::string workspace(const std::string& id) const {
        return seen(stateDir() + "/sandboxes/" + id + "/workspace");
    }
    /// What sandboxd wrote to stderr so far.
    std::string log() const;
};

/// The whole content of a file, read with POSIX reads: /proc files of a process that exits
/// mid-read fail with ESRCH, which a std::ifstream turns into an exception. Whatever was read
/// (maybe nothing) is returned.
std::string readFile(const std::string& path);

/// A process as /proc/<pid>/stat shows it.
struct ProcEntry {
    pid_t pid = 0;
    std::string comm;  ///< the command name, without the parentheses
    char state = '?';  ///< R, S, Z, ...
};
/// The current children of `parent` (zombies included), read from /proc.
std::vector<ProcEntry> childrenOf(pid_t parent);

/// Path of a binary in the build tree's bin/ directory.
std::string binPath(const std::string& name);

}  // namespace sandbox::testing
