// Background processes (§3.5, §9.5) and port readiness (§3.4): lifecycle, exit codes
// 0/1/124/137/143, tree kills that leave no descendant (setsid, double fork, nohup), the bounded
// output ring and what a stream says about dropped output, replays without duplicates,
// port-watch in http and tcp modes, and every error response of these routes.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <dirent.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/agent_test_util.hpp"
#include "support/server_process.hpp"

using nlohmann::json;
using sandbox::testing::AgentFixture;
using sandbox::testing::childrenOf;
using sandbox::testing::ProcEntry;
using namespace sandbox::testing::agent;

namespace {
const std::string kNoSession = "__DISABLE_SESSION__";

Reply startProc(AgentFixture& a, const std::string& command, json extra = json::object()) {
    extra["command"] = command;
    return post(a, "/api/process/start", extra);
}

std::string started(AgentFixture& a, const std::string& command, json extra = json::object()) {
    auto r = startProc(a, command, std::move(extra));
    REQUIRE_MESSAGE(r.status == 200, r.raw);
    return r.body["processId"].get<std::string>();
}

json info(AgentFixture& a, const std::string& id) {
    auto r = get(a, "/api/process/" + id);
    REQUIRE_MESSAGE(r.status == 200, r.raw);
    return r.body["process"];
}

// Waits (bounded) until the process has an exit code; returns its record.
json waitEnded(AgentFixture& a, const std::string& id,
               std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    json p;
    bool ok = waitFor(
        [&] {
            p = info(a, id);
            return p.contains("exitCode") || p["status"] == "error";
        },
        timeout);
    REQUIRE_MESSAGE(ok, p.dump());
    return p;
}

Reply del(AgentFixture& a, const std::string& target) {
    return call(a.http, "DELETE", target);
}

// GET of an SSE route; `onEvent` may return false to hang up.
SseReply getStream(sandbox::client::HttpConnection& c, const std::string& target,
                   const std::function<bool(const json&)>& onEvent = {}) {
    SseReply out;
    sandbox::SseParser parser;
    auto add = [&](const sandbox::SseEvent& e) -> bool {
        json j = json::parse(e.data, nullptr, false);
        if (j.is_discarded()) j = nullptr;
        out.events.push_back(j);
        return !onEvent || onEvent(out.events.back());
    };
    auto resp = c.stream("GET", target, "", {}, [&](std::string_view chunk) {
        out.raw.append(chunk);
        bool keep = true;
        parser.feed(chunk, [&](sandbox::SseEvent&& e) {
            if (keep) keep = add(e);
        });
        return keep;
    });
    if (auto last = parser.finish()) add(*last);
    out.status = resp.status;
    out.contentType = resp.header("content-type").value_or("");
    return out;
}

// A loopback port nobody listens on.
int freePort() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    socklen_t len = sizeof sa;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    ::close(fd);
    return ntohs(sa.sin_port);
}

// Host processes whose command line contains `marker`.
int countMarked(const std::string& marker) {
    int n = 0;
    DIR* d = ::opendir("/proc");
    while (dirent* e = d ? ::readdir(d) : nullptr) {
        char* end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0 || pid == ::getpid()) continue;
        std::string cmd = readFile("/proc/" + std::to_string(pid) + "/cmdline");
        if (cmd.find(marker) == std::string::npos) continue;
        if (processGone(static_cast<pid_t>(pid))) continue;
        ++n;
    }
    if (d) ::closedir(d);
    return n;
}

long vmHwmKb(pid_t pid) {
    std::string status = readFile("/proc/" + std::to_string(pid) + "/status");
    auto p = status.find("VmHWM:");
    return p == std::string::npos ? -1 : std::stol(status.substr(p + 6));
}

std::string uniqueMarker(const char* prefix) {
    static int n = 0;
    return std::string(prefix) + std::to_string(::getpid()) + "x" + std::to_string(++n);
}

// Shell text that sets $m to `marker` without spelling it out (a `bash -c` command line must
// not match the marker itself), then links ./$m to sleep.
std::string linkMarker(const std::string& marker) {
    return "m=" + marker.substr(0, 3) + "; m=${m}" + marker.substr(3) +
           "; ln -sf /bin/sleep ./$m; ";
}
}  // namespace

TEST_CASE("process: start, get, list, logs, exit codes 0 and 1, in both modes") {
    AgentFixture a;
    for (const std::string& sid : {std::string("default"), kNoSession}) {
        CAPTURE(sid);
        auto r = startProc(a, "echo out-$X; echo err >&2",
                           {{"sessionId", sid},
                            {"env", {{"X", "42"}}},
                            {"processId", "ok-" + std::to_string(sid.size())}});
        REQUIRE_MESSAGE(r.status == 200, r.raw);
        CHECK(r.body["success"] == true);
        CHECK(r.body["pid"].is_number_integer());
        CHECK(r.body["command"] == "echo out-$X; echo err >&2");
        CHECK(isIsoTimestamp(r.body["timestamp"]));
        std::string id = r.body["processId"];
        json p = waitEnded(a, id);
        CHECK(p["id"] == id);
        CHECK(p["status"] == "completed");
        CHECK(p["exitCode"] == 0);
        CHECK(isIsoTimestamp(p["startTime"]));
        CHECK(isIsoTimestamp(p["endTime"]));
        auto logs = get(a, "/api/process/" + id + "/logs");
        REQUIRE(logs.status == 200);
        CHECK(logs.body["processId"] == id);
        CHECK(logs.body["stdout"] == "out-42\n");
        CHECK(logs.body["stderr"] == "err\n");
        CHECK(logs.body["stdoutDroppedBytes"] == 0);

        std::string bad = started(a, "exit 1", {{"sessionId", sid}});
        json q = waitEnded(a, bad);
        CHECK(q["status"] == "failed");
        CHECK(q["exitCode"] == 1);
    }
    // Listing: every process of the container; list entries carry no endTime.
    std::string running = started(a, "sleep 30", {{"processId", "sleeper"}});
    auto l = get(a, "/api/process/list");
    REQUIRE(l.status == 200);
    REQUIRE(l.body["processes"].is_array());
    CHECK(l.body["processes"].size() >= 5);
    CHECK(l.body["processes"][0]["id"] == "sleeper");  // running ones first
    for (const auto& p : l.body["processes"]) CHECK_FALSE(p.contains("endTime"));
    auto filtered = get(a, "/api/process/list?status=running");
    REQUIRE(filtered.body["processes"].size() == 1);
    CHECK(filtered.body["processes"][0]["id"] == running);
    CHECK(get(a, "/api/process/list?status=failed").body["processes"].size() == 2);
    // The process sees its tag (what a kill looks for) and the session's directory.
    std::string envp = started(a, "printenv SANDBOX_PROCESS_TAG; pwd");
    waitEnded(a, envp);
    std::string out = get(a, "/api/process/" + envp + "/logs").body["stdout"];
    CHECK(out.find(std::to_string(a.server.pid())) == 0);
    CHECK(out.find(a.workspace()) != std::string::npos);
    CHECK(del(a, "/api/process/sleeper").status == 200);
}

TEST_CASE(
    "process: kill gives 143, a TERM-proof tree 137, a timeout 124 (session and sessionless)") {
    AgentFixture a;
    for (const std::string& sid : {std::string("default"), kNoSession}) {
        CAPTURE(sid);
        std::string id = started(a, "sleep 60", {{"sessionId", sid}});
        auto k = del(a, "/api/process/" + id);
        REQUIRE_MESSAGE(k.status == 200, k.raw);
        CHECK(k.body["processId"] == id);
        json p = waitEnded(a, id);
        CHECK(p["status"] == "killed");
        CHECK(p["exitCode"] == 143);
        // Killing it again: already completed.
        checkError(del(a, "/api/process/" + id), 404, "COMMAND_NOT_FOUND");

        std::string stubborn =
            started(a, "trap '' TERM; echo armed; sleep 60; sleep 60", {{"sessionId", sid}});
        REQUIRE(waitFor([&] {
            return get(a, "/api/process/" + stubborn + "/logs").body["stdout"] == "armed\n";
        }));
        auto k2 = del(a, "/api/process/" + stubborn);
        REQUIRE(k2.status == 200);
        json q = waitEnded(a, stubborn);
        CHECK(q["status"] == "killed");
        CHECK(q["exitCode"] == 137);

        // A TERM-proof shell that forks nothing: in session mode it is a forked subshell whose
        // /proc environ lacks the tag, and its parent dies of the TERM. The kill must still find
        // it (it was a member when the kill began) and end it with KILL.
        std::string shell = started(a,
                                    "trap '' TERM; f=fifo$BASHPID; mkfifo $f; echo $BASHPID; "
                                    "while :; do read -t 60 <>$f; done",
                                    {{"sessionId", sid}});
        std::string pidText;
        REQUIRE(waitFor([&] {
            pidText = get(a, "/api/process/" + shell + "/logs").body["stdout"];
            return !pidText.empty() && pidText.back() == '\n';
        }));
        const pid_t loopPid = std::stoi(pidText);
        REQUIRE(del(a, "/api/process/" + shell).status == 200);
        json s = waitEnded(a, shell);
        CHECK(s["status"] == "killed");
        CHECK(s["exitCode"] == 137);
        CHECK(waitFor([&] {
            std::string st = readFile("/proc/" + std::to_string(loopPid) + "/stat");
            auto rp = st.rfind(')');
            return rp == std::string::npos || st[rp + 2] == 'Z';
        }));

        std::string forced = started(a, "sleep 60", {{"sessionId", sid}});
        REQUIRE(del(a, "/api/process/" + forced + "?signal=SIGKILL").status == 200);
        CHECK(waitEnded(a, forced)["exitCode"] == 137);

        std::string slow =
            started(a, "echo begun; sleep 60", {{"sessionId", sid}, {"timeoutMs", 300}});
        json t = waitEnded(a, slow);
        CHECK(t["exitCode"] == 124);
        CHECK(t["status"] == "failed");
        auto logs = get(a, "/api/process/" + slow + "/logs");
        CHECK(logs.body["stdout"] == "begun\n");
        CHECK(logs.body["stderr"] == "Command timed out after 300ms\n");
    }
}

TEST_CASE(
    "process: a kill leaves no descendant, even one that escaped with setsid, double fork or "
    "nohup") {
    AgentFixture a;
    for (const std::string& sid : {std::string("default"), kNoSession}) {
        CAPTURE(sid);
        std::string m = uniqueMarker("esc");
        // Four sleepers under a name unique to this test: setsid (own session), a double fork
        // (orphaned, reparented), nohup (ignores SIGHUP), and one in the foreground.
        std::string cmd = linkMarker(m) +
                          "setsid ./$m 1000 & ( (./$m 1000 &) & ); nohup ./$m 1000 >/dev/null "
                          "2>&1 & ./$m 1000";
        std::string id = started(a, cmd, {{"sessionId", sid}});
        REQUIRE_MESSAGE(waitFor([&] { return countMarked(m) == 4; }), countMarked(m));
        REQUIRE(del(a, "/api/process/" + id).status == 200);
        CHECK_MESSAGE(waitFor([&] { return countMarked(m) == 0; }, std::chrono::seconds(5)),
                      countMarked(m));
        CHECK(waitEnded(a, id)["status"] == "killed");
    }
    // kill-all takes every running tree; finished ones are not counted.
    std::string m = uniqueMarker("all");
    waitEnded(a, started(a, "true"));
    started(a, linkMarker(m) + "setsid ./$m 1000 & ./$m 1000");
    started(a, linkMarker(m) + "( (./$m 1000 &) & ); ./$m 1000", {{"sessionId", kNoSession}});
    REQUIRE(waitFor([&] { return countMarked(m) == 4; }));
    auto r = del(a, "/api/process/kill-all");
    REQUIRE_MESSAGE(r.status == 200, r.raw);
    CHECK(r.body["cleanedCount"] == 2);
    CHECK(isIsoTimestamp(r.body["timestamp"]));
    CHECK(waitFor([&] { return countMarked(m) == 0; }, std::chrono::seconds(5)));
    CHECK(del(a, "/api/process/kill-all").body["cleanedCount"] == 0);
}

TEST_CASE("process: orphans reparented to the agent are reaped (no zombies)") {
    AgentFixture a;
    std::string id = started(a, "for i in 1 2 3 4 5; do (sleep 0.05 &) ; done; sleep 0.3");
    waitEnded(a, id);
    auto zombies = [&] {
        auto kids = childrenOf(a.server.pid());
        return std::count_if(kids.begin(), kids.end(),
                             [](const ProcEntry& p) { return p.state == 'Z'; });
    };
    CHECK(waitFor([&] { return zombies() == 0; }));
    // The sessions still work (the agent's own children are not reaped behind their backs).
    CHECK(out(a, "echo still") == "still");
    CHECK(exec(a, "exit 3", kNoSession)["exitCode"] == 3);
}

TEST_CASE("process: the log stream replays, follows live output and never repeats a chunk") {
    AgentFixture a;
    // Finished process: process_info, replay, exit.
    std::string done = started(a, "echo a; echo b >&2; printf c");
    waitEnded(a, done);
    auto r = getStream(a.http, "/api/process/" + done + "/stream");
    REQUIRE(r.status == 200);
    CHECK(r.contentType == "text/event-stream");
    REQUIRE(r.events.size() >= 3);
    CHECK(r.events.front()["type"] == "process_info");
    CHECK(r.events.front()["processId"] == done);
    CHECK(r.events.front()["status"] == "completed");
    CHECK(r.joined("stdout") == "a\nc");
    CHECK(r.joined("stderr") == "b\n");
    CHECK(r.events.back()["type"] == "exit");
    CHECK(r.events.back()["exitCode"] == 0);
    CHECK(r.events.back()["data"] == "Process completed with exit code 0");
    for (const auto& e : r.ofType("stdout")) CHECK(e["processId"] == done);

    // Joining mid-way: every line exactly once, in order.
    std::string live = started(a, "for i in $(seq 1 300); do echo $i; sleep 0.002; done");
    REQUIRE(waitFor([&] {
        return get(a, "/api/process/" + live + "/logs").body["stdout"].get<std::string>().size() >
               50;
    }));
    auto s = getStream(a.http, "/api/process/" + live + "/stream");
    std::string expected;
    for (int i = 1; i <= 300; ++i) expected += std::to_string(i) + "\n";
    CHECK(s.joined("stdout") == expected);
    CHECK(s.ofType("dropped").empty());
    CHECK(s.events.back()["type"] == "exit");

    // Hanging up detaches; the process keeps running.
    std::string bg = started(a, "while true; do echo x; sleep 0.01; done");
    int seen = 0;
    getStream(a.http, "/api/process/" + bg + "/stream", [&](const json&) { return ++seen < 3; });
    CHECK(info(a, bg)["status"] == "running");
    REQUIRE(del(a, "/api/process/" + bg).status == 200);
}

TEST_CASE(
    "process: a flood of output stays within the ring buffer, and streams say what was dropped") {
    AgentFixture a;
    const long total = 100'000'000;  // 100 MB of output
    std::string id =
        started(a, "head -c " + std::to_string(total) + " /dev/zero | tr '\\0' x; echo; echo tail");
    json p = waitEnded(a, id, std::chrono::seconds(60));
    CHECK(p["status"] == "completed");
    auto logs = get(a, "/api/process/" + id + "/logs");
    REQUIRE(logs.status == 200);
    std::string kept = logs.body["stdout"];
    CHECK(kept.size() <= 1024 * 1024);
    CHECK(kept.size() > 512 * 1024);
    CHECK(kept.ends_with("x\ntail\n"));
    CHECK(logs.body["stdoutDroppedBytes"].get<long>() + static_cast<long>(kept.size()) ==
          total + 6);
    // The agent's peak memory stayed far below the output's size.
    long hwm = vmHwmKb(a.server.pid());
    CHECK_MESSAGE(hwm > 0, hwm);
#if defined(__SANITIZE_ADDRESS__)
    // AddressSanitizer's shadow memory and quarantine make the resident size meaningless here;
    // the bound is checked by the ordinary build.
    MESSAGE("agent peak RSS under ASan (kB): " << hwm);
#else
    CHECK_MESSAGE(hwm < 64 * 1024, hwm);
#endif

    auto s = getStream(a.http, "/api/process/" + id + "/stream");
    auto dropped = s.ofType("dropped");
    REQUIRE(dropped.size() == 1);
    CHECK(dropped[0]["stream"] == "stdout");
    CHECK(dropped[0]["bytes"] == logs.body["stdoutDroppedBytes"]);
    CHECK(dropped[0]["data"].get<std::string>().find("dropped") != std::string::npos);
    CHECK(s.joined("stdout") == kept);
    CHECK(s.events.back()["type"] == "exit");
}

TEST_CASE("process: error responses") {
    AgentFixture a;
    checkError(startProc(a, "   "), 400, "INVALID_COMMAND");
    checkValidation(post(a, "/api/process/start", json::object()));
    checkValidation(postRaw(a, "/api/process/start", "{not json"));
    checkValidation(startProc(a, "true", {{"timeoutMs", "soon"}}));
    checkValidation(startProc(a, "true", {{"env", {{"1BAD", "x"}}}}), "INVALID_ENV_NAME");
    checkValidation(startProc(a, "true", {{"env", {{"SANDBOX_PROCESS_TAG", "x"}}}}),
                    "INVALID_ENV_NAME");
    for (const char* bad : {"", "a/b", "list", "kill-all", "sp ace", "q?x"})
        checkValidation(startProc(a, "true", {{"processId", bad}}), "INVALID_PROCESS_ID");
    checkValidation(startProc(a, "true", {{"sessionId", "  "}}), "INVALID_SESSION_ID");
    checkError(startProc(a, "true", {{"sessionId", kNoSession}, {"cwd", "/no/such/dir"}}), 500,
               "STREAM_START_ERROR");

    // A live id is refused; a finished one can be reused.
    started(a, "sleep 60", {{"processId", "dup"}});
    auto dup = startProc(a, "true", {{"processId", "dup"}});
    checkError(dup, 409, "PROCESS_ALREADY_EXISTS");
    CHECK(dup.body["context"]["processId"] == "dup");
    REQUIRE(del(a, "/api/process/dup").status == 200);
    waitEnded(a, "dup");
    CHECK(startProc(a, "echo again", {{"processId", "dup"}}).status == 200);
    CHECK(waitFor([&] { return get(a, "/api/process/dup/logs").body["stdout"] == "again\n"; }));

    for (const char* t :
         {"/api/process/nope", "/api/process/nope/logs", "/api/process/nope/stream"}) {
        auto r = get(a, t);
        checkError(r, 404, "PROCESS_NOT_FOUND");
        CHECK(r.body["context"]["processId"] == "nope");
    }
    checkError(del(a, "/api/process/nope"), 404, "PROCESS_NOT_FOUND");
    checkError(get(a, "/api/process/kill-all"), 404, "PROCESS_NOT_FOUND");
    checkError(get(a, "/api/process/dup/other"), 404, "UNKNOWN_ERROR");
    checkError(get(a, "/api/process/dup/"), 404, "UNKNOWN_ERROR");
    checkError(call(a.http, "POST", "/api/process/dup"), 404, "UNKNOWN_ERROR");
    checkError(del(a, "/api/process/dup/logs"), 404, "UNKNOWN_ERROR");
    std::string s = started(a, "sleep 60");
    checkValidation(del(a, "/api/process/" + s + "?signal=SIGHUP"), "INVALID_SIGNAL");
    CHECK(del(a, "/api/process/" + s).status == 200);
}

TEST_CASE("port-watch: http with a status range, tcp, a process that dies first, errors") {
    AgentFixture a;
    int port = freePort();
    std::string server =
        started(a, "exec python3 -m http.server " + std::to_string(port) + " --bind 127.0.0.1",
                {{"sessionId", kNoSession}});
    auto ready =
        stream(a, "/api/port-watch",
               {{"port", port}, {"mode", "http"}, {"processId", server}, {"interval", 100}});
    REQUIRE(ready.status == 200);
    REQUIRE_MESSAGE(ready.events.size() == 2, ready.raw);
    CHECK(ready.events[0] == json{{"type", "watching"}, {"port", port}});
    CHECK(ready.events[1] == json{{"type", "ready"}, {"port", port}, {"statusCode", 200}});
    // A status range that only a missing page satisfies.
    auto missing =
        stream(a, "/api/port-watch",
               {{"port", port}, {"path", "no-such-page"}, {"statusMin", 404}, {"statusMax", 404}});
    CHECK(missing.events.back() == json{{"type", "ready"}, {"port", port}, {"statusCode", 404}});
    auto tcp = stream(a, "/api/port-watch", {{"port", port}, {"mode", "tcp"}});
    CHECK(tcp.events.back() == json{{"type", "ready"}, {"port", port}});
    REQUIRE(del(a, "/api/process/" + server).status == 200);

    // The watched process ends before anything listens.
    int closed = freePort();
    std::string dies = started(a, "sleep 0.3; exit 3");
    auto exited =
        stream(a, "/api/port-watch", {{"port", closed}, {"processId", dies}, {"interval", 100}});
    CHECK(exited.events.back() ==
          json{{"type", "process_exited"}, {"port", closed}, {"exitCode", 3}});
    auto unknown = stream(a, "/api/port-watch", {{"port", closed}, {"processId", "ghost"}});
    CHECK(unknown.events.back() ==
          json{{"type", "error"}, {"port", closed}, {"error", "Process not found"}});
    // Without a terminal condition it polls until the client hangs up; the agent carries on.
    int events = 0;
    stream(a.http, "/api/port-watch", {{"port", closed}, {"interval", 100}}, {},
           [&](const json&) { return ++events < 1; });
    CHECK(events == 1);
    CHECK(get(a, "/api/ping").status == 200);

    checkValidation(post(a, "/api/port-watch", json::object()));
    checkValidation(post(a, "/api/port-watch", {{"port", 70000}}));
    checkValidation(post(a, "/api/port-watch", {{"port", "80"}}));
    checkValidation(
        post(a, "/api/port-watch", {{"port", 80}, {"statusMin", 500}, {"statusMax", 200}}));
    checkValidation(postRaw(a, "/api/port-watch", "[1,2"));
}

TEST_CASE(
    "execute background:true is a process too: tagged, killable as a tree, timeout honoured") {
    AgentFixture a;
    auto r = post(a, "/api/execute", {{"command", "sleep 60"}, {"background", true}});
    REQUIRE(r.status == 200);
    std::string id = r.body["processId"];
    CHECK(id.rfind("proc_", 0) == 0);
    CHECK(info(a, id)["status"] == "running");
    REQUIRE(del(a, "/api/process/" + id).status == 200);
    CHECK(waitEnded(a, id)["exitCode"] == 143);
    auto t = post(a, "/api/execute",
                  {{"command", "sleep 60"}, {"background", true}, {"timeoutMs", 200}});
    CHECK(waitEnded(a, t.body["processId"])["exitCode"] == 124);
}

TEST_CASE("deleting a session kills its background processes, escaped descendants included") {
    AgentFixture a;
    std::string m = uniqueMarker("ses");
    REQUIRE(post(a, "/api/session/create", {{"id", "doomed"}}).status == 200);
    std::string id = started(a, linkMarker(m) + "setsid ./$m 1000 & ( (./$m 1000 &) & ); ./$m 1000",
                             {{"sessionId", "doomed"}});
    REQUIRE(waitFor([&] { return countMarked(m) == 3; }));
    REQUIRE(post(a, "/api/session/delete", {{"sessionId", "doomed"}}).status == 200);
    CHECK_MESSAGE(waitFor([&] { return countMarked(m) == 0; }, std::chrono::seconds(5)),
                  countMarked(m));
    CHECK(waitEnded(a, id)["status"] != "running");
}

TEST_CASE(
    "sessionless: a foreground command (spare bash) sees what a background one (bash -c) "
    "sees") {
    AgentFixture a;
    const std::string agentPid = std::to_string(a.server.pid());
    // Each probe runs as a foreground sessionless command (served by the agent's spare bash) and
    // as a sessionless background process (always a freshly spawned `bash -c`): same output,
    // same exit code. The workspace and another cwd both.
    const std::vector<std::string> probes = {
        "[ \"$$\" = \"$BASHPID\" ] && echo own-pid; echo \"$-|$0|$LINENO|${OLDPWD-unset}|$PWD\"",
        "echo \"${__sb_c-clean}\" \"${__sb_o-clean}\"; env | grep -c '^SANDBOX_PROCESS_TAG='",
        "set +o; shopt; trap -p; umask; ulimit -n; echo \"$SHLVL|$PPID\" | wc -c",
        "ls /proc/self/fd; cat; echo stdin-done",
        "sh -c 'echo $PPID'",  // one external command: exec'd in place, so its parent is the agent
        "no_such_command_here; echo \"after $?\"",
        "no_such_command_here",
        "./not-there-either",
        "echo out; echo err >&2; exit 7",
        "cd /tmp && echo \"$OLDPWD\"",
        "echo \"${X}\"; export Y=1",
        "kill -TERM $$",
        "if then",
    };
    for (const std::string& cwd : {a.workspace(), std::string("/tmp")}) {
        for (const auto& probe : probes) {
            CAPTURE(probe);
            CAPTURE(cwd);
            json extra = {{"cwd", cwd}, {"env", {{"X", "x-value"}}}};
            json fg = exec(a, probe, kNoSession, extra);
            extra["sessionId"] = kNoSession;
            std::string id = started(a, probe, extra);
            json bg = waitEnded(a, id);
            auto logs = get(a, "/api/process/" + id + "/logs").body;
            // The execute route trims one trailing newline (§9.3); compare likewise.
            auto trim = [](std::string s) {
                if (!s.empty() && s.back() == '\n') s.pop_back();
                return s;
            };
            CHECK(fg["exitCode"] == bg["exitCode"]);
            CHECK(trim(fg["stdout"]) == trim(logs["stdout"]));
            if (probe != "if then")  // the parser names its caller: "-c" or "eval"
                CHECK(trim(fg["stderr"]) == trim(logs["stderr"]));
        }
    }
    CHECK(exec(a, "sh -c 'echo $PPID'", kNoSession)["stdout"] == agentPid + "\n");
}

TEST_CASE("sessionless: the spare bash killed while waiting, or by its own command, is replaced") {
    AgentFixture a;
    // The agent's idle children that are bash: the spare (no session exists).
    auto spares = [&] {
        std::vector<pid_t> out;
        for (const auto& p : childrenOf(a.server.pid()))
            if (p.comm == "bash" && p.state != 'Z') out.push_back(p.pid);
        return out;
    };
    REQUIRE(exec(a, "true", kNoSession)["exitCode"] == 0);
    REQUIRE(waitFor([&] { return spares().size() == 1; }));
    // The next foreground command runs in it (its $$ is the spare's pid).
    pid_t spare = spares().front();
    CHECK(exec(a, "echo $$", kNoSession)["stdout"] == std::to_string(spare) + "\n");
    REQUIRE(waitFor([&] { return spares().size() == 1; }));
    // Killed while idle (and dead by the time the next command comes: one killed at that very
    // instant takes that command with it, as any SIGKILL would).
    ::kill(spares().front(), SIGKILL);
    REQUIRE(waitFor([&] { return spares().empty(); }));
    for (int i = 0; i < 3; ++i) {
        json j = exec(a, "echo alive", kNoSession);
        CHECK(j["exitCode"] == 0);
        CHECK(j["stdout"] == "alive\n");
    }
    CHECK(exec(a, "kill -9 $$", kNoSession)["exitCode"] == 137);
    CHECK(exec(a, "echo again", kNoSession)["stdout"] == "again\n");
    // One spare at most, whatever happened.
    CHECK(waitFor([&] { return spares().size() == 1; }));
}

TEST_CASE("sessionless: what the spare cannot take is spawned as bash -c, and behaves as such") {
    AgentFixture a;
    // A variable bash reads while starting: SHLVL given 7 becomes 8 in a bash started with it
    // (a spare exporting it afterwards would show 7).
    json j = exec(a, "echo $SHLVL", kNoSession, {{"env", {{"SHLVL", "7"}}}});
    CHECK(j["stdout"] == "8\n");
    // A command text over the spare's 48 KiB: still run, whole.
    std::string big = "echo start; : '" + std::string(60 * 1024, 'x') + "'; echo end";
    j = exec(a, big, kNoSession);
    CHECK(j["exitCode"] == 0);
    CHECK(j["stdout"] == "start\nend\n");
}
