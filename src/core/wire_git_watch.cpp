#include "core/wire_git_watch.hpp"

#include <cmath>

#include "core/errors.hpp"
#include "core/json_util.hpp"
#include "core/utf8.hpp"
#include "core/wire_json.hpp"

namespace sandbox::core::wire {
using nlohmann::json;
using namespace json_io;

namespace {

// A positive integer field (depth, timeoutMs): anything else is a 400 with its own code.
std::optional<std::int64_t> positiveInt(const json& j, const char* key, const char* code) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    bool ok = false;
    std::int64_t v = 0;
    if (it->is_number_unsigned()) {
        ok = it->get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX);
        if (ok) v = static_cast<std::int64_t>(it->get<std::uint64_t>());
    } else if (it->is_number_integer()) {
        v = it->get<std::int64_t>();
        ok = true;
    } else if (it->is_number_float()) {
        double d = it->get<double>();
        ok = std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.0e15;
        if (ok) v = static_cast<std::int64_t>(d);
    }
    if (!ok || v <= 0)
        throw validationError(std::string(key) + " must be a positive integer", key, code,
                              "must be a positive integer");
    return v;
}

}  // namespace

// ---- git ----------------------------------------------------------------------------------

GitCheckoutRequest GitCheckoutRequest::fromJson(const json& j) {
    Fields f(j);
    GitCheckoutRequest r;
    auto url = j.find("repoUrl");
    if (url == j.end() || url->is_null() || !url->is_string())
        throw ApiError(
            "INVALID_GIT_URL", "Invalid Git URL: repoUrl must be a non-empty string",
            {{"validationErrors", json::array({{{"field", "repoUrl"},
                                                {"message", "must be a non-empty string"},
                                                {"code", "INVALID_GIT_URL"}}})}});
    r.repoUrl = url->get<std::string>();
    r.branch = f.optString("branch");
    r.targetDir = f.optString("targetDir");
    r.depth = positiveInt(j, "depth", "INVALID_DEPTH");
    r.timeoutMs = positiveInt(j, "timeoutMs", "INVALID_TIMEOUT");
    r.sessionId = f.optString("sessionId");
    return r;
}

json GitCheckoutRequest::toJson() const {
    json j = {{"repoUrl", repoUrl}};
    putOpt(j, "branch", branch);
    putOpt(j, "targetDir", targetDir);
    if (depth) j["depth"] = *depth;
    if (timeoutMs) j["timeoutMs"] = *timeoutMs;
    putOpt(j, "sessionId", sessionId);
    return j;
}

GitCheckoutResponse GitCheckoutResponse::fromJson(const json& j) {
    GitCheckoutResponse r;
    r.success = boolean(j, "success", true);
    r.repoUrl = str(j, "repoUrl");
    r.branch = str(j, "branch");
    r.targetDir = str(j, "targetDir");
    r.timestamp = str(j, "timestamp");
    return r;
}

json GitCheckoutResponse::toJson() const {
    return {{"success", success},
            {"repoUrl", repoUrl},
            {"branch", branch},
            {"targetDir", targetDir},
            {"timestamp", timestamp}};
}

std::string gitUrlProblems(std::string_view url) {
    auto b = url.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return "must not be empty";
    if (url.size() > kMaxGitUrlLength)
        return "must be at most " + std::to_string(kMaxGitUrlLength) + " characters";
    for (unsigned char c : url)
        if (c < 0x20 || c == 0x7f) return "must not contain NUL or control characters";
    auto e = url.find_last_not_of(" \t\r\n");
    std::string_view u = url.substr(b, e - b + 1);
    if (u.front() == '-') return "must not start with '-'";
    if (u.find("::") != std::string_view::npos && u.find("://") == std::string_view::npos)
        return "uses a transport that is not allowed (only http, https, git, ssh, file, ftp)";
    if (auto p = u.find("://"); p != std::string_view::npos) {
        std::string scheme(u.substr(0, p));
        for (auto& ch : scheme)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        static const char* allowed[] = {"http", "https", "git",     "ssh",    "file",
                                        "ftp",  "ftps",  "git+ssh", "ssh+git"};
        bool ok = false;
        for (const char* a : allowed) ok = ok || scheme == a;
        if (!ok)
            return "uses the scheme '" + scheme +
                   "', which is not allowed (only http, https, git, ssh, file, ftp)";
        if (u.size() == p + 3) return "has no host or path after the scheme";
    }
    return {};
}

std::string redactCredentials(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        auto p = text.find("://", i);
        if (p == std::string_view::npos) {
            out.append(text.substr(i));
            break;
        }
        out.append(text.substr(i, p + 3 - i));
        std::size_t start = p + 3;
        // The authority ends at '/', whitespace, a quote or the end; user-info before its last '@'.
        std::size_t end = start;
        while (end < text.size() && text[end] != '/' && text[end] != ' ' && text[end] != '\'' &&
               text[end] != '"' && text[end] != '\n' && text[end] != '\t' && text[end] != '\r')
            ++end;
        std::string_view authority = text.substr(start, end - start);
        auto at = authority.rfind('@');
        if (at != std::string_view::npos) {
            out.append("***@");
            out.append(authority.substr(at + 1));
        } else {
            out.append(authority);
        }
        i = end;
    }
    return out;
}

std::string repoNameFromUrl(std::string_view url) {
    std::string_view u = url;
    while (!u.empty() && (u.back() == '/' || u.back() == ' ')) u.remove_suffix(1);
    if (auto q = u.find_first_of("?#"); q != std::string_view::npos) u = u.substr(0, q);
    auto slash = u.find_last_of("/:");
    std::string_view name = slash == std::string_view::npos ? u : u.substr(slash + 1);
    if (name.size() >= 4 && name.substr(name.size() - 4) == ".git") name.remove_suffix(4);
    if (name.empty() || name == "." || name == ".." || u.find("://") == u.size() - 3)
        return "repository";
    return std::string(name);
}

// ---- watch --------------------------------------------------------------------------------

WatchRequest WatchRequest::fromJson(const json& j) {
    Fields f(j);
    WatchRequest r;
    auto p = j.find("path");
    if (p == j.end() || !p->is_string())
        throw validationError("path must be a non-empty string", "path", "INVALID_PATH",
                              "must be a non-empty string");
    r.path = p->get<std::string>();
    r.recursive = f.optBool("recursive");
    r.include = f.optStringArray("include").value_or(std::vector<std::string>{});
    r.exclude = f.optStringArray("exclude").value_or(std::vector<std::string>{});
    r.events = f.optStringArray("events").value_or(std::vector<std::string>{});
    r.sessionId = f.optString("sessionId");
    r.since = f.optString("since");
    return r;
}

json WatchRequest::toJson() const {
    json j = {{"path", path}};
    if (recursive) j["recursive"] = *recursive;
    if (!include.empty()) j["include"] = include;
    if (!exclude.empty()) j["exclude"] = exclude;
    if (!events.empty()) j["events"] = events;
    putOpt(j, "sessionId", sessionId);
    putOpt(j, "since", since);
    return j;
}

CheckChangesResponse CheckChangesResponse::fromJson(const json& j) {
    CheckChangesResponse r;
    r.success = boolean(j, "success", true);
    r.status = str(j, "status");
    r.reason = optStr(j, "reason");
    r.version = str(j, "version");
    r.timestamp = str(j, "timestamp");
    return r;
}

json CheckChangesResponse::toJson() const {
    json j = {{"success", success}, {"status", status}};
    putOpt(j, "reason", reason);
    j["version"] = version;
    j["timestamp"] = timestamp;
    return j;
}

std::string watchGlobProblems(std::string_view pattern) {
    if (pattern.find('\0') != std::string_view::npos) return "must not contain NUL bytes";
    if (pattern.find_first_not_of(" \t\r\n") == std::string_view::npos) return "must not be empty";
    if (pattern.find_first_of("[]{}") != std::string_view::npos)
        return "uses unsupported glob syntax. Supported tokens: *, **, ? and path separators";
    return {};
}

namespace {

// Does glob `p` (from index pi) match `s` from index si up to the end or a '/'?
bool globAt(std::string_view p, std::size_t pi, std::string_view s, std::size_t si) {
    while (pi < p.size()) {
        char c = p[pi];
        if (c == '*') {
            bool doubleStar = pi + 1 < p.size() && p[pi + 1] == '*';
            std::size_t rest = pi + (doubleStar ? 2 : 1);
            // Try every length the star can take, longest last.
            for (std::size_t k = si;; ++k) {
                if (globAt(p, rest, s, k)) return true;
                if (k >= s.size() || (!doubleStar && s[k] == '/')) return false;
            }
        }
        if (si >= s.size()) return false;
        if (c == '?') {
            if (s[si] == '/') return false;
        } else if (c != s[si]) {
            return false;
        }
        ++pi;
        ++si;
    }
    return si == s.size() || s[si] == '/';
}

}  // namespace

bool watchGlobMatch(const std::vector<std::string>& patterns, std::string_view path) {
    for (const auto& p : patterns)
        for (std::size_t start = 0; start <= path.size();) {
            if (globAt(p, 0, path, start)) return true;
            auto slash = path.find('/', start);
            if (slash == std::string_view::npos) break;
            start = slash + 1;
        }
    return false;
}

namespace watch_event {
std::string watching(std::string_view path, std::string_view watchId) {
    auto s = eventHead("watching");
    appendField(s, "path", path);
    appendField(s, "watchId", watchId);
    s.push_back('}');
    return s;
}
std::string event(std::string_view eventType, std::string_view path, bool isDirectory,
                  std::string_view timestamp) {
    auto s = eventHead("event");
    appendField(s, "eventType", eventType);
    appendField(s, "path", path);
    s.append(",\"isDirectory\":").append(isDirectory ? "true" : "false");
    appendField(s, "timestamp", timestamp);
    s.push_back('}');
    return s;
}
std::string stopped(std::string_view reason) {
    auto s = eventHead("stopped");
    appendField(s, "reason", reason);
    s.push_back('}');
    return s;
}
std::string error(std::string_view message) {
    return errorEvent(message);
}
}  // namespace watch_event

}  // namespace sandbox::core::wire
