#pragma once
// A local S3-compatible server for the bucket-mount tests: s3rver (tests/compat's npm
// packages, installed by scripts/bootstrap) run by node on 127.0.0.1, an ephemeral port and a
// temp data directory; killed by pid at destruction.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "support/server_process.hpp"

namespace sandbox::testing {

inline const std::string kS3rverScript =
    std::string(SANDBOX_COMPAT_DIR) + "/node_modules/s3rver/bin/s3rver.js";

inline bool bubblewrapWorks() {
    static const bool ok =
        std::system("bwrap --unshare-all --ro-bind / / true >/dev/null 2>&1") == 0;
    return ok;
}

/// "" when bucket mounts can be tested here (s3fs, /dev/fuse, bubblewrap, node, s3rver), else
/// what is missing.
inline std::string missingForBucketMounts() {
    if (::access("/usr/bin/s3fs", X_OK) != 0) return "s3fs is not installed";
    if (::access("/dev/fuse", R_OK | W_OK) != 0) return "/dev/fuse is not available";
    if (!bubblewrapWorks()) return "bubblewrap cannot create namespaces here";
    if (::access(kS3rverScript.c_str(), R_OK) != 0) return "s3rver is not installed (npm ci)";
    if (std::system("node --version >/dev/null 2>&1") != 0) return "node is not installed";
    return {};
}

/// s3rver on 127.0.0.1, an ephemeral port, a temp data directory, with the given buckets.
class S3Server {
  public:
    explicit S3Server(const std::vector<std::string>& buckets) {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        std::vector<std::string> args = {"node", kS3rverScript, "-d", dir_.path(),
                                         "-a",   "127.0.0.1",   "-p", "0"};
        for (const auto& b : buckets) args.insert(args.end(), {"--configure-bucket", b});
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        int rc = posix_spawnp(&pid_, "node", &fa, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        ::close(fds[1]);
        if (rc != 0) ::close(fds[0]);
        REQUIRE(rc == 0);
        // "S3rver listening on 127.0.0.1:PORT" (after an empty line)
        std::string line;
        char c;
        while (line.find("listening") == std::string::npos) {
            line.clear();
            bool more = false;
            while ((more = ::read(fds[0], &c, 1) == 1) && c != '\n') line.push_back(c);
            if (!more) break;
        }
        // It logs every request on stdout: keep reading (and dropping) it until it exits.
        drain_ = std::thread([fd = fds[0]] {
            char buf[4096];
            while (::read(fd, buf, sizeof buf) > 0) {
            }
            ::close(fd);
        });
        if (line.find("listening") == std::string::npos) {
            stop();  // no server to use: none left running either
            FAIL("s3rver did not report its address: '" << line << "'");
        }
        url_ = "http://127.0.0.1:" + line.substr(line.rfind(':') + 1);
    }
    ~S3Server() { stop(); }
    const std::string& url() const { return url_; }

  private:
    void stop() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            int st;
            ::waitpid(pid_, &st, 0);
            pid_ = -1;
        }
        if (drain_.joinable()) drain_.join();
    }

    TempDir dir_;
    pid_t pid_ = -1;
    std::string url_;
    std::thread drain_;
};

}  // namespace sandbox::testing
