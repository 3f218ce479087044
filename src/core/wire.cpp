#include "core/wire.hpp"

#include "core/errors.hpp"
#include "core/json_util.hpp"
#include "core/time.hpp"
#include "core/utf8.hpp"
#include "core/wire_json.hpp"

namespace sandbox::core::wire {
using nlohmann::json;
using namespace json_io;

json success(json extra) {
    json j = {{"success", true}};
    for (auto& [k, v] : extra.items()) j[k] = std::move(v);
    j["timestamp"] = isoTimestampNow();
    return j;
}

// ---- sessions -----------------------------------------------------------------------------

SessionCreateRequest SessionCreateRequest::fromJson(const json& j) {
    Fields f(j);
    SessionCreateRequest r;
    r.id = f.optString("id");
    if (r.id && r.id->empty()) r.id.reset();
    for (auto& [k, v] : f.optStringMap("env"))
        if (v) r.env.emplace(k, *v);
    r.cwd = f.optString("cwd");
    r.commandTimeoutMs = f.optInt("commandTimeoutMs", 0);
    return r;
}

json SessionCreateRequest::toJson() const {
    json j = json::object();
    putOpt(j, "id", id);
    if (!env.empty()) j["env"] = env;
    putOpt(j, "cwd", cwd);
    if (commandTimeoutMs) j["commandTimeoutMs"] = *commandTimeoutMs;
    return j;
}

SessionDeleteRequest SessionDeleteRequest::fromJson(const json& j) {
    Fields f(j);
    auto id = f.optString("sessionId");
    if (!id || id->empty())
        throw validationError("sessionId is required", "sessionId", "REQUIRED", "is required");
    return {*id};
}

json SessionDeleteRequest::toJson() const {
    return {{"sessionId", sessionId}};
}

// ---- exec ---------------------------------------------------------------------------------

ExecuteRequest ExecuteRequest::fromJson(const json& j) {
    Fields f(j);
    ExecuteRequest r;
    r.command = f.reqString("command");
    r.sessionId = f.optString("sessionId");
    r.timeoutMs = f.optInt("timeoutMs", 0);
    r.env = f.optStringMap("env");
    r.cwd = f.optString("cwd");
    r.origin = f.optString("origin");
    r.background = f.optBool("background").value_or(false);
    return r;
}

json ExecuteRequest::toJson() const {
    json j = {{"command", command}};
    putOpt(j, "sessionId", sessionId);
    if (timeoutMs) j["timeoutMs"] = *timeoutMs;
    if (!env.empty()) {
        json e = json::object();
        for (auto& [k, v] : env) e[k] = v ? json(*v) : json(nullptr);
        j["env"] = std::move(e);
    }
    putOpt(j, "cwd", cwd);
    putOpt(j, "origin", origin);
    if (background) j["background"] = true;
    return j;
}

ExecuteResponse ExecuteResponse::fromJson(const json& j) {
    ExecuteResponse r;
    r.success = boolean(j, "success");
    r.exitCode = num<int>(j, "exitCode", 0);
    r.stdoutText = str(j, "stdout");
    r.stderrText = str(j, "stderr");
    r.command = str(j, "command");
    r.duration = num<std::int64_t>(j, "duration", 0);
    r.timestamp = str(j, "timestamp");
    r.sessionId = optStr(j, "sessionId");
    return r;
}

json ExecuteResponse::toJson() const {
    json j = {{"success", success},    {"exitCode", exitCode}, {"stdout", stdoutText},
              {"stderr", stderrText},  {"command", command},   {"duration", duration},
              {"timestamp", timestamp}};
    putOpt(j, "sessionId", sessionId);
    return j;
}

ProcessStartedResponse ProcessStartedResponse::fromJson(const json& j) {
    ProcessStartedResponse r;
    r.processId = str(j, "processId");
    r.pid = optNum(j, "pid");
    r.command = str(j, "command");
    r.timestamp = str(j, "timestamp");
    return r;
}

json ProcessStartedResponse::toJson() const {
    json j = {{"success", true}, {"processId", processId}};
    if (pid) j["pid"] = *pid;
    j["command"] = command;
    j["timestamp"] = timestamp;
    return j;
}

namespace exec_event {
std::string start(std::string_view command, std::string_view timestamp) {
    auto s = eventHead("start");
    appendField(s, "command", command);
    appendField(s, "timestamp", timestamp);
    s.push_back('}');
    return s;
}
std::string output(std::string_view stream, std::string_view data, std::string_view timestamp) {
    std::string s;
    s.reserve(data.size() + 80);
    s.append("{\"type\":\"").append(stream).append("\"");
    appendField(s, "data", data);
    appendField(s, "timestamp", timestamp);
    s.push_back('}');
    return s;
}
std::string complete(std::optional<int> exitCode, std::string_view timestamp) {
    auto s = eventHead("complete");
    if (exitCode) s.append(",\"exitCode\":").append(std::to_string(*exitCode));
    appendField(s, "timestamp", timestamp);
    s.push_back('}');
    return s;
}
std::string error(std::string_view message, std::string_view timestamp) {
    auto s = eventHead("error");
    appendField(s, "error", message);
    appendField(s, "timestamp", timestamp);
    s.push_back('}');
    return s;
}
}  // namespace exec_event

// ---- files --------------------------------------------------------------------------------

ReadRequest ReadRequest::fromJson(const json& j) {
    Fields f(j);
    ReadRequest r;
    r.path = f.reqString("path");
    auto enc = f.optString("encoding");
    if (enc && *enc == "base64")
        r.encoding = ReadEncoding::Base64;
    else if (enc && (*enc == "utf-8" || *enc == "utf8"))
        r.encoding = ReadEncoding::Utf8;
    r.sessionId = f.optString("sessionId");
    return r;
}

json ReadRequest::toJson() const {
    json j = {{"path", path}};
    if (encoding == ReadEncoding::Base64) j["encoding"] = "base64";
    if (encoding == ReadEncoding::Utf8) j["encoding"] = "utf-8";
    putOpt(j, "sessionId", sessionId);
    return j;
}

ReadResponse ReadResponse::fromJson(const json& j) {
    ReadResponse r;
    r.path = str(j, "path");
    r.content = str(j, "content");
    r.encoding = str(j, "encoding");
    r.isBinary = boolean(j, "isBinary");
    r.mimeType = str(j, "mimeType");
    r.size = num<std::uint64_t>(j, "size", 0);
    r.timestamp = str(j, "timestamp");
    return r;
}

json ReadResponse::toJson() const {
    return {{"success", true},        {"path", path},         {"content", content},
            {"timestamp", timestamp}, {"encoding", encoding}, {"isBinary", isBinary},
            {"mimeType", mimeType},   {"size", size}};
}

std::string ReadResponse::toJsonString() const {
    std::string s;
    s.reserve(content.size() + path.size() + 256);
    s.append("{\"content\":");
    appendJsonString(s, content);
    s.append(",\"encoding\":");
    appendJsonString(s, encoding);
    s.append(",\"isBinary\":").append(isBinary ? "true" : "false");
    s.append(",\"mimeType\":");
    appendJsonString(s, mimeType);
    s.append(",\"path\":");
    appendJsonString(s, path);
    s.append(",\"size\":").append(std::to_string(size));
    s.append(",\"success\":true,\"timestamp\":");
    appendJsonString(s, timestamp);
    s.push_back('}');
    return s;
}

WriteRequest WriteRequest::fromJson(const json& j) {
    Fields f(j);
    WriteRequest r;
    r.path = f.reqString("path");
    r.content = f.reqString("content");
    r.encoding = f.optString("encoding");
    r.sessionId = f.optString("sessionId");
    return r;
}

json WriteRequest::toJson() const {
    json j = {{"path", path}, {"content", content}};
    putOpt(j, "encoding", encoding);
    putOpt(j, "sessionId", sessionId);
    return j;
}

PathRequest PathRequest::fromJson(const json& j) {
    Fields f(j);
    return {f.reqString("path"), f.optString("sessionId")};
}

json PathRequest::toJson() const {
    json j = {{"path", path}};
    putOpt(j, "sessionId", sessionId);
    return j;
}

MoveRequest MoveRequest::fromRenameJson(const json& j) {
    Fields f(j);
    return {f.reqString("oldPath"), f.reqString("newPath"), f.optString("sessionId")};
}

MoveRequest MoveRequest::fromMoveJson(const json& j) {
    Fields f(j);
    return {f.reqString("sourcePath"), f.reqString("destinationPath"), f.optString("sessionId")};
}

json MoveRequest::toRenameJson() const {
    json j = {{"oldPath", from}, {"newPath", to}};
    putOpt(j, "sessionId", sessionId);
    return j;
}

json MoveRequest::toMoveJson() const {
    json j = {{"sourcePath", from}, {"destinationPath", to}};
    putOpt(j, "sessionId", sessionId);
    return j;
}

MkdirRequest MkdirRequest::fromJson(const json& j) {
    Fields f(j);
    return {f.reqString("path"), f.optBool("recursive").value_or(false), f.optString("sessionId")};
}

json MkdirRequest::toJson() const {
    json j = {{"path", path}, {"recursive", recursive}};
    putOpt(j, "sessionId", sessionId);
    return j;
}

ListFilesRequest ListFilesRequest::fromJson(const json& j) {
    Fields f(j);
    ListFilesRequest r;
    r.path = f.reqString("path");
    if (const json* o = f.optObject("options")) {
        Fields of(*o);
        r.recursive = of.optBool("recursive").value_or(false);
        r.includeHidden = of.optBool("includeHidden").value_or(false);
    }
    r.sessionId = f.optString("sessionId");
    return r;
}

json ListFilesRequest::toJson() const {
    json j = {{"path", path},
              {"options", {{"recursive", recursive}, {"includeHidden", includeHidden}}}};
    putOpt(j, "sessionId", sessionId);
    return j;
}

FileInfo FileInfo::fromJson(const json& j) {
    FileInfo fi;
    fi.name = str(j, "name");
    fi.absolutePath = str(j, "absolutePath");
    fi.relativePath = str(j, "relativePath");
    fi.type = str(j, "type");
    fi.size = num<std::uint64_t>(j, "size", 0);
    fi.modifiedAt = str(j, "modifiedAt");
    fi.mode = str(j, "mode");
    if (auto it = j.find("permissions"); it != j.end() && it->is_object()) {
        fi.readable = boolean(*it, "readable");
        fi.writable = boolean(*it, "writable");
        fi.executable = boolean(*it, "executable");
    }
    return fi;
}

json FileInfo::toJson() const {
    return {{"name", name},
            {"absolutePath", absolutePath},
            {"relativePath", relativePath},
            {"type", type},
            {"size", size},
            {"modifiedAt", modifiedAt},
            {"mode", mode},
            {"permissions",
             {{"readable", readable}, {"writable", writable}, {"executable", executable}}}};
}

namespace read_event {
std::string metadata(std::string_view mimeType, std::uint64_t size, bool isBinary) {
    auto s = eventHead("metadata");
    appendField(s, "mimeType", mimeType);
    s.append(",\"size\":").append(std::to_string(size));
    s.append(",\"isBinary\":").append(isBinary ? "true" : "false");
    appendField(s, "encoding", isBinary ? "base64" : "utf-8");
    s.push_back('}');
    return s;
}
std::string chunk(std::string_view encodedData) {
    std::string s;
    s.reserve(encodedData.size() + 32);
    s.append("{\"type\":\"chunk\"");
    appendField(s, "data", encodedData);
    s.push_back('}');
    return s;
}
std::string complete(std::uint64_t bytesRead) {
    auto s = eventHead("complete");
    s.append(",\"bytesRead\":").append(std::to_string(bytesRead)).push_back('}');
    return s;
}
std::string error(std::string_view message) {
    return errorEvent(message);
}
}  // namespace read_event

}  // namespace sandbox::core::wire
