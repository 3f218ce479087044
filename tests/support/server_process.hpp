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
/// first stdout line ("... listening on port N").
class ServerProcess {
  public:
    ServerProcess(const std::string& binary, std::vector<std::string> args,
                  std::vector<std::string> extraEnv = {});
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
    ServerProcess server;
    client::HttpConnection http;
    AgentFixture();
    const std::string& workspace() const { return dir.path(); }
    /// POST a JSON body; returns status and parsed body (null json when not JSON).
    client::HttpResponse post(const std::string& target, const std::string& body);
};

/// Path of a binary in the build tree's bin/ directory.
std::string binPath(const std::string& name);

}  // namespace sandbox::testing
