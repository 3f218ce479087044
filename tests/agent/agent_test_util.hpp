#pragma once
#include <fcntl.h>
#include <unistd.h>
// Helpers shared by the sandbox-agent integration tests: JSON requests, SSE requests parsed with
// sandbox::SseParser, bounded condition waits, and /proc checks for processes the agent started.
#include <doctest/doctest.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "client/http_client.hpp"
#include "sandbox/sse.hpp"
#include "support/server_process.hpp"

namespace sandbox::testing::agent {

using sandbox::testing::readFile;

using nlohmann::json;

/// A complete (non-streamed) response.
struct Reply {
    int status = 0;
    std::string contentType;
    std::string raw;
    json body;  ///< parsed body; null when it is not JSON
};

inline Reply call(client::HttpConnection& c, std::string_view method, std::string_view target,
                  std::string_view body = {}, const client::HeaderList& headers = {}) {
    auto r = c.request(method, target, body, headers);
    Reply out;
    out.status = r.status;
    out.contentType = r.header("content-type").value_or("");
    out.raw = std::move(r.body);
    out.body = json::parse(out.raw, nullptr, false);
    if (out.body.is_discarded()) out.body = nullptr;
    return out;
}

inline Reply post(client::HttpConnection& c, std::string_view target, const json& body,
                  const client::HeaderList& headers = {}) {
    return call(c, "POST", target, body.dump(), headers);
}

inline Reply post(AgentFixture& a, std::string_view target, const json& body,
                  const client::HeaderList& headers = {}) {
    return post(a.http, target, body, headers);
}

inline Reply postRaw(AgentFixture& a, std::string_view target, std::string_view body) {
    return call(a.http, "POST", target, body);
}

inline Reply get(AgentFixture& a, std::string_view target) {
    return call(a.http, "GET", target);
}

/// A streamed (SSE) response: the raw body and every event's data parsed as JSON.
struct SseReply {
    int status = 0;
    std::string contentType;
    std::string cacheControl;
    std::string raw;
    std::vector<json> events;

    std::vector<json> ofType(std::string_view type) const {
        std::vector<json> out;
        for (const auto& e : events)
            if (e.is_object() && e.value("type", "") == type) out.push_back(e);
        return out;
    }
    /// The `data` fields of the events of one type, concatenated.
    std::string joined(std::string_view type, const char* field = "data") const {
        std::string s;
        for (const auto& e : ofType(type)) s += e.value(field, "");
        return s;
    }
    std::vector<std::string> types() const {
        std::vector<std::string> out;
        for (const auto& e : events) out.push_back(e.is_object() ? e.value("type", "?") : "?");
        return out;
    }
};

/// POSTs and reads the response as SSE. `onEvent` may return false to close the connection.
inline SseReply stream(client::HttpConnection& c, std::string_view target, const json& body,
                       const client::HeaderList& headers = {},
                       const std::function<bool(const json&)>& onEvent = {}) {
    SseReply out;
    SseParser parser;
    auto add = [&](const SseEvent& e) -> bool {
        json j = json::parse(e.data, nullptr, false);
        if (j.is_discarded()) j = nullptr;
        out.events.push_back(j);
        return !onEvent || onEvent(out.events.back());
    };
    auto resp = c.stream("POST", target, body.dump(), headers, [&](std::string_view chunk) {
        out.raw.append(chunk);
        bool keep = true;
        parser.feed(chunk, [&](SseEvent&& e) {
            if (keep) keep = add(e);
        });
        return keep;
    });
    if (auto last = parser.finish()) add(*last);
    out.status = resp.status;
    out.contentType = resp.header("content-type").value_or("");
    out.cacheControl = resp.header("cache-control").value_or("");
    return out;
}

inline SseReply stream(AgentFixture& a, std::string_view target, const json& body,
                       const client::HeaderList& headers = {}) {
    return stream(a.http, target, body, headers);
}

/// POST /api/execute; requires HTTP 200 and returns the body.
inline json exec(client::HttpConnection& c, const std::string& command,
                 const std::optional<std::string>& sessionId = std::nullopt,
                 json extra = json::object()) {
    extra["command"] = command;
    if (sessionId) extra["sessionId"] = *sessionId;
    auto r = post(c, "/api/execute", extra);
    REQUIRE_MESSAGE(r.status == 200, r.raw);
    return r.body;
}

inline json exec(AgentFixture& a, const std::string& command,
                 const std::optional<std::string>& sessionId = std::nullopt,
                 json extra = json::object()) {
    return exec(a.http, command, sessionId, std::move(extra));
}

/// stdout of a successful session-mode command.
inline std::string out(AgentFixture& a, const std::string& command,
                       const std::optional<std::string>& sessionId = std::nullopt) {
    json j = exec(a, command, sessionId);
    CHECK_MESSAGE(j["exitCode"] == 0, j.dump());
    return j["stdout"].get<std::string>();
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, as JavaScript's Date.toISOString().
inline bool isIsoTimestamp(const json& v) {
    static const std::regex re(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$)");
    return v.is_string() && std::regex_match(v.get<std::string>(), re);
}

/// Checks the standard error envelope (§5.1) and its status/code.
inline void checkError(const Reply& r, int status, std::string_view code) {
    INFO(r.raw);
    CHECK(r.status == status);
    CHECK(r.contentType == "application/json");
    REQUIRE(r.body.is_object());
    CHECK(r.body.value("code", "") == code);
    CHECK(r.body["message"].is_string());
    CHECK(r.body["context"].is_object());
    CHECK(r.body["httpStatus"] == status);
    CHECK(isIsoTimestamp(r.body["timestamp"]));
}

/// A 400 VALIDATION_FAILED whose first validation error has this code (if given).
inline void checkValidation(const Reply& r, std::string_view fieldCode = {}) {
    checkError(r, 400, "VALIDATION_FAILED");
    if (fieldCode.empty() || !r.body.is_object()) return;
    const json& errs = r.body["context"]["validationErrors"];
    REQUIRE_MESSAGE(errs.is_array(), r.raw);
    REQUIRE(!errs.empty());
    CHECK(errs[0]["code"] == fieldCode);
    CHECK(errs[0]["field"].is_string());
    CHECK(errs[0]["message"].is_string());
}

/// Polls `cond` (every few ms) until it holds or `timeout` passes. A bounded condition wait,
/// never a synchronisation by sleeping.
inline bool waitFor(const std::function<bool()>& cond,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (cond()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

/// True when `pid` no longer runs (absent, or a zombie nobody reaped yet).
inline bool processGone(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    if (!f) return true;
    std::string line;
    std::getline(f, line);
    auto rp = line.rfind(')');
    if (rp == std::string::npos || rp + 2 >= line.size()) return true;
    char state = line[rp + 2];
    return state == 'Z' || state == 'X';
}

/// Waits (bounded) until `pid` is gone.
inline bool waitGone(pid_t pid, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return waitFor([pid] { return processGone(pid); }, timeout);
}

inline pid_t toPid(const std::string& s) {
    return static_cast<pid_t>(std::stol(s));
}

inline void writeFile(const std::string& path, std::string_view data) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

inline bool pathExists(const std::string& path) {
    std::error_code ec;
    return std::filesystem::exists(std::filesystem::symlink_status(path, ec));
}

}  // namespace sandbox::testing::agent
