#include "agent/git.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/errors.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "core/utf8.hpp"

namespace sandbox::agent {
namespace wire = core::wire;
using core::ApiError;
using nlohmann::json;

namespace {

// Largest part of git's stderr kept for the error message.
constexpr std::size_t kMaxStderr = 16 * 1024;
// Grace between TERM and KILL when the clone times out (as `timeout -k 5`).
constexpr std::chrono::milliseconds kKillGrace{5000};

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

bool has(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

// "600", "1.5": the timeout in seconds as the reference prints it (millisecond precision).
std::string seconds(std::int64_t ms) {
    std::string s = std::to_string(ms / 1000);
    if (ms % 1000) {
        char frac[8];
        std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(ms % 1000));
        std::string f = frac;
        while (f.back() == '0') f.pop_back();
        s += f;
    }
    return s;
}

// The branch a fresh clone has checked out, from its HEAD file ("" when detached).
std::string checkedOutBranch(const std::string& dir) {
    std::ifstream f(dir + "/.git/HEAD");
    std::string line;
    if (!f || !std::getline(f, line)) return {};
    static constexpr std::string_view kRef = "ref: refs/heads/";
    if (line.rfind(kRef, 0) != 0) return {};
    return core::trim(line.substr(kRef.size()));
}

// The git binary: the first executable `git` on PATH (posix_spawn does not search PATH).
std::string gitBinary() {
    const char* path = std::getenv("PATH");
    std::string_view dirs = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
    while (!dirs.empty()) {
        auto colon = dirs.find(':');
        std::string dir(dirs.substr(0, colon));
        dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
        if (dir.empty()) continue;
        std::string candidate = dir + "/git";
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return "git";  // spawning fails with ENOENT: reported as git missing
}

bool pathExists(const std::string& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0;
}

}  // namespace

std::string gitErrorCode(int exitCode, std::string_view stderrText) {
    std::string s = lower(stderrText);
    if (exitCode == 124) return "GIT_NETWORK_ERROR";
    bool branchMissing = (has(s, "remote branch") && has(s, "not found")) ||
                         has(s, "did not match") || has(s, "pathspec");
    bool repoMissing = has(s, "repository not found") ||
                       has(s, "does not appear to be a git repository") ||
                       (has(s, "repository") && has(s, "does not exist"));
    bool auth = has(s, "authentication failed") || has(s, "could not read username") ||
                has(s, "could not read password") || has(s, "terminal prompts disabled") ||
                has(s, "invalid credentials");
    if (exitCode == 128) {
        // git's fatal errors: the reference maps only "repository not found"; the missing
        // branch and the other missing-repository wordings get their typed codes too.
        if (branchMissing) return "GIT_BRANCH_NOT_FOUND";
        if (repoMissing) return "GIT_REPOSITORY_NOT_FOUND";
        if (auth) return "GIT_AUTH_FAILED";
        return "GIT_OPERATION_FAILED";
    }
    if (auth || has(s, "permission denied") || has(s, "access denied") ||
        has(s, "authentication") || has(s, "credentials"))
        return "GIT_AUTH_FAILED";
    if (has(s, "not found") || has(s, "does not exist")) return "GIT_REPOSITORY_NOT_FOUND";
    if (branchMissing) return "GIT_BRANCH_NOT_FOUND";
    return "GIT_CLONE_FAILED";
}

awaitable<wire::GitCheckoutResponse> gitCheckout(Agent& agent, const wire::GitCheckoutRequest& r,
                                                 const std::optional<std::string>& ctxSession) {
    if (auto problems = wire::gitUrlProblems(r.repoUrl); !problems.empty())
        throw ApiError(
            "INVALID_GIT_URL",
            "Invalid Git URL '" + wire::redactCredentials(r.repoUrl) + "': " + problems,
            {{"validationErrors",
              json::array(
                  {{{"field", "repoUrl"}, {"message", problems}, {"code", "INVALID_GIT_URL"}}})}});
    const std::string url = core::trim(r.repoUrl);
    const std::string shown = wire::redactCredentials(url);
    if (r.branch) {
        std::string b = *r.branch;
        std::string problem;
        if (core::trim(b).empty())
            problem = "must not be empty";
        else if (b.find('\0') != std::string::npos)
            problem = "must not contain NUL bytes";
        else if (b.front() == '-')
            problem = "must not start with '-'";
        if (!problem.empty())
            throw core::validationError("Invalid branch name: " + problem, "branch",
                                        "INVALID_BRANCH", problem);
    }
    if (r.targetDir)
        if (auto problems = core::pathProblems(*r.targetDir); !problems.empty())
            throw core::validationError("Invalid targetDir '" + *r.targetDir + "': " + problems,
                                        "targetDir", "INVALID_PATH", problems);

    // The session: the body's, then the request context's, then "default". A relative
    // targetDir is relative to that session's working directory (as git run in it would be).
    std::optional<std::string> sid =
        r.sessionId && !r.sessionId->empty() ? r.sessionId : ctxSession;
    if (sid && core::trim(*sid).empty())
        throw core::validationError("sessionId must not be empty or whitespace", "sessionId",
                                    "INVALID_SESSION_ID", "must not be empty or whitespace");
    std::string session = sid.value_or(std::string(wire::kDefaultSession));
    std::string base = agent.config().workspace;
    if (session != wire::kNoSession) base = agent.session(session)->currentDir();
    std::string target =
        r.targetDir ? core::resolvePath(base, *r.targetDir)
                    : core::resolvePath(agent.config().workspace, wire::repoNameFromUrl(url));
    std::int64_t timeoutMs = r.timeoutMs.value_or(wire::kDefaultCloneTimeoutMs);

    json ctx = {{"repository", shown}, {"targetDir", target}};
    if (r.branch) ctx["branch"] = *r.branch;

    SpawnOptions so;
    so.argv = {
        gitBinary(),         "-c", "http.lowSpeedLimit=1024", "-c", "http.lowSpeedTime=30", "clone",
        "--filter=blob:none"};
    if (r.branch) so.argv.insert(so.argv.end(), {"--branch", *r.branch});
    if (r.depth) so.argv.insert(so.argv.end(), {"--depth", std::to_string(*r.depth)});
    so.argv.insert(so.argv.end(), {"--", url, target});
    // Never wait for a password on a terminal nobody sees.
    so.env = environWith({{"GIT_TERMINAL_PROMPT", "0"}, {"GCM_INTERACTIVE", "never"}});
    so.cwd = std::filesystem::is_directory(base) ? base : agent.config().workspace;
    Pipe out = Pipe::make(), err = Pipe::make();
    Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    so.fds = {{0, devnull.get()}, {1, out.write.get()}, {2, err.write.get()}};

    const bool existedBefore = pathExists(target);
    pid_t pid = -1;
    try {
        pid = spawnProcess(so);
    } catch (const std::system_error& e) {
        json c = ctx;
        c["exitCode"] = 127;
        c["stderr"] = e.what();
        throw ApiError("GIT_CLONE_FAILED",
                       "Failed to clone repository '" + shown +
                           "': cannot run git (is it installed?): " + e.what(),
                       c, "git.clone");
    }
    out.write.reset();
    err.write.reset();
    auto run = std::make_shared<RunningCommand>(agent.executor(), pid, std::move(out.read),
                                                std::move(err.read), openPidFd(pid),
                                                RunningCommand::ExitSource::PidFd);
    run->start();
    run->setTimeout(std::chrono::milliseconds(timeoutMs), kKillGrace);

    std::string stderrText;
    std::optional<int> exitCode;
    OutputChunk chunk;
    for (;;) {
        bool more = co_await run->next(chunk);
        if (!more) break;
        if (chunk.kind == OutputChunk::Stderr && stderrText.size() < kMaxStderr)
            stderrText.append(chunk.data.substr(0, kMaxStderr - stderrText.size()));
        else if (chunk.kind == OutputChunk::Exit)
            exitCode = chunk.exitCode;
    }
    int code = run->timedOut() ? 124 : exitCode.value_or(1);
    if (code != 0) {
        // A failed clone leaves nothing behind that it created.
        if (!existedBefore && pathExists(target)) {
            std::error_code ec;
            std::filesystem::remove_all(target, ec);
        }
        std::string errText = core::sanitizeUtf8(wire::redactCredentials(core::trim(stderrText)));
        ctx["exitCode"] = code;
        ctx["stderr"] = errText;
        std::string errCode = gitErrorCode(code, errText);
        if (code == 124)
            throw ApiError(
                errCode,
                "Git clone timed out after " + seconds(timeoutMs) + " seconds for '" + shown + "'",
                ctx, "git.clone");
        throw ApiError(errCode, "Failed to clone repository '" + shown + "': " + errText, ctx,
                       "git.clone");
    }

    wire::GitCheckoutResponse resp;
    resp.repoUrl = shown;
    resp.branch = checkedOutBranch(target);
    if (resp.branch.empty()) resp.branch = r.branch.value_or("unknown");
    resp.targetDir = target;
    resp.timestamp = core::isoTimestampNow();
    co_return resp;
}

}  // namespace sandbox::agent
