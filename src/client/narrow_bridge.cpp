#include "client/narrow_bridge.hpp"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <deque>
#include <nlohmann/json.hpp>

#include "client/error_mapping.hpp"
#include "core/base64.hpp"
#include "core/mime.hpp"
#include "core/shell.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "core/utf8.hpp"
#include "sandbox/errors.hpp"

namespace sandbox::detail {

using nlohmann::json;

// ---- pure helpers ---------------------------------------------------------------------------

std::string bridgeWorkspacePath(std::string_view p) {
    std::string s(p);
    return !s.empty() && s[0] == '/' ? s : "/workspace/" + s;
}

std::string bridgePathPart(std::string_view path) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : path) {
        if (std::isalnum(c) || std::strchr("-._~!$&'()*+,;=:@/", c))
            out.push_back(static_cast<char>(c));
        else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

std::vector<FileInfo> parseFindListing(std::string_view out, const std::string& dir) {
    std::vector<FileInfo> files;
    std::size_t pos = 0;
    while (pos < out.size()) {
        auto end = out.find('\0', pos);
        if (end == std::string_view::npos) end = out.size();
        std::string_view rec = out.substr(pos, end - pos);
        pos = end + 1;
        std::string_view f[4];
        std::size_t s = 0;
        int n = 0;
        for (; n < 4; ++n) {
            auto tab = rec.find('\t', s);
            if (tab == std::string_view::npos) break;
            f[n] = rec.substr(s, tab - s);
            s = tab + 1;
        }
        if (n != 4 || f[0].size() != 1 || f[3].empty() || f[3].size() > 4) continue;
        std::string_view rel = rec.substr(s);
        if (rel.empty()) continue;
        unsigned mode = 0;
        bool ok = true;
        for (char c : f[3]) {
            if (c < '0' || c > '7') ok = false;
            mode = mode * 8 + static_cast<unsigned>(c - '0');
        }
        std::uint64_t size = 0;
        if (f[1].empty()) ok = false;
        for (char c : f[1]) {
            if (c < '0' || c > '9') ok = false;
            size = size * 10 + static_cast<std::uint64_t>(c - '0');
        }
        if (!ok) continue;
        FileInfo fi;
        auto slash = rel.rfind('/');
        fi.name = std::string(slash == std::string_view::npos ? rel : rel.substr(slash + 1));
        fi.absolutePath = dir + "/" + std::string(rel);
        fi.relativePath = std::string(rel);
        fi.type = f[0] == "f"   ? "file"
                  : f[0] == "d" ? "directory"
                  : f[0] == "l" ? "symlink"
                                : "other";
        fi.size = size;
        fi.modifiedAt = std::string(f[2]);
        std::string modeStr = "---------";
        const char* rwx = "rwxrwxrwx";
        for (int i = 0; i < 9; ++i)
            if (mode & (1u << (8 - i))) modeStr[i] = rwx[i];
        fi.mode = modeStr;
        fi.permissions.readable = (mode & 0400) != 0;
        fi.permissions.writable = (mode & 0200) != 0;
        fi.permissions.executable = (mode & 0100) != 0;
        files.push_back(std::move(fi));
    }
    return files;
}

void throwFileErrorFromStderr(const std::string& path, const std::string& err, int exitCode,
                              const std::string& op) {
    json ctx = {{"path", path}, {"stderr", err}, {"exitCode", exitCode}};
    if (err.find("No such file") != std::string::npos)
        throw FileNotFoundError("FILE_NOT_FOUND", "File not found: " + path, 404, ctx, op);
    if (err.find("Permission denied") != std::string::npos)
        throw PermissionDeniedError("PERMISSION_DENIED", err, 403, ctx, op);
    if (err.find("File exists") != std::string::npos)
        throw FileExistsError("FILE_EXISTS", "File exists: " + path, 409, ctx, op);
    if (err.find("Is a directory") != std::string::npos)
        throw FileSystemError("IS_DIRECTORY", "Is a directory: " + path, 400, ctx, op);
    if (err.find("Not a directory") != std::string::npos)
        throw FileSystemError("NOT_DIRECTORY", "Path is not a directory: " + path, 400, ctx, op);
    throw FileSystemError("FILESYSTEM_ERROR", op + " failed: " + err, 500, ctx, op);
}

namespace {

bool sessionMode(const SandboxInfo& info, const BoundSession& s) {
    return s.has_value() || info.options.enableDefaultSession;
}

// The bridge's exec stream (event: stdout|stderr with base64 data, exit, error) as the
// container API's: a start event first; in session mode one event per line, a last line
// without a newline given one (as the container's streaming does).
class NarrowExecEvents final : public ExecEventReader {
  public:
    /// `requested`: when the request was sent (the command cannot have started before).
    NarrowExecEvents(std::unique_ptr<EventSource> src, std::string command, bool lines,
                     std::optional<std::chrono::milliseconds> timeout,
                     std::chrono::steady_clock::time_point requested)
        : src_(std::move(src)), lines_(lines), timeout_(timeout), started_(requested) {
        ExecEvent start;
        start.type = ExecEvent::Type::Start;
        start.command = std::move(command);
        start.timestamp = core::isoTimestampNow();
        pending_.push_back(std::move(start));
    }

    std::optional<ExecEvent> next() override {
        for (;;) {
            if (!pending_.empty()) {
                ExecEvent ev = std::move(pending_.front());
                pending_.pop_front();
                return ev;
            }
            if (ended_) return std::nullopt;
            auto ev = src_->next();
            if (!ev) {
                ended_ = true;
                continue;
            }
            if (ev->event == "stdout" || ev->event == "stderr") {
                std::string bytes;
                if (!core::base64Decode(ev->data, bytes)) continue;
                output(ev->event == "stdout" ? ExecEvent::Type::Stdout : ExecEvent::Type::Stderr,
                       std::move(bytes));
            } else if (ev->event == "exit") {
                flush();
                ExecEvent done;
                done.type = ExecEvent::Type::Complete;
                done.exitCode = json::parse(ev->data, nullptr, false).value("exit_code", -1);
                // Stopped by the timeout the SDK set: the container API's last stderr line.
                if (timeout_ && done.exitCode == 124 &&
                    std::chrono::steady_clock::now() - started_ >= *timeout_)
                    emit(ExecEvent::Type::Stderr,
                         "Command timed out after " + std::to_string(timeout_->count()) + "ms\n");
                done.timestamp = core::isoTimestampNow();
                pending_.push_back(std::move(done));
                ended_ = true;
            } else if (ev->event == "error") {
                flush();
                ExecEvent err;
                err.type = ExecEvent::Type::Error;
                json e = json::parse(ev->data, nullptr, false);
                err.data = e.is_object() ? e.value("error", ev->data) : ev->data;
                err.timestamp = core::isoTimestampNow();
                pending_.push_back(std::move(err));
                ended_ = true;
            }
        }
    }

  private:
    void emit(ExecEvent::Type type, std::string data) {
        ExecEvent ev;
        ev.type = type;
        ev.data = std::move(data);
        ev.timestamp = core::isoTimestampNow();
        pending_.push_back(std::move(ev));
    }
    void output(ExecEvent::Type type, std::string bytes) {
        if (!lines_) return emit(type, std::move(bytes));
        std::string& buf = partial_[type == ExecEvent::Type::Stdout ? 0 : 1];
        buf += bytes;
        std::size_t start = 0, nl;
        while ((nl = buf.find('\n', start)) != std::string::npos) {
            emit(type, buf.substr(start, nl + 1 - start));
            start = nl + 1;
        }
        buf.erase(0, start);
    }
    void flush() {
        if (!lines_) return;
        for (int i = 0; i < 2; ++i)
            if (!partial_[i].empty())
                emit(i == 0 ? ExecEvent::Type::Stdout : ExecEvent::Type::Stderr,
                     std::exchange(partial_[i], {}) + "\n");
    }

    std::unique_ptr<EventSource> src_;
    bool lines_;
    bool ended_ = false;
    std::optional<std::chrono::milliseconds> timeout_;
    std::chrono::steady_clock::time_point started_;
    std::string partial_[2];
    std::deque<ExecEvent> pending_;
};

// A download from the bridge's /file route: the body is the file; the metadata comes from its
// name and size.
class NarrowFileReader final : public FileReader {
  public:
    NarrowFileReader(std::unique_ptr<EventSource> src, FileMetadata meta)
        : src_(std::move(src)), meta_(std::move(meta)) {}
    const FileMetadata& metadata() override { return meta_; }
    std::optional<std::string> nextChunk() override {
        std::string piece;
        if (src_->nextRaw(piece)) return piece;
        return std::nullopt;
    }

  private:
    std::unique_ptr<EventSource> src_;
    FileMetadata meta_;
};

}  // namespace

// ---- NarrowBridgeConnection -----------------------------------------------------------------

client::HeaderList NarrowBridgeConnection::sessionHeader(const BoundSession& s) const {
    client::HeaderList h;
    if (s) h.emplace_back("Session-Id", *s);
    return h;
}

// The target of the bridge's /file route for `path`. That route cannot address a name with '?',
// '#' or '%' (its path decoding keeps their escapes): such a path is refused rather than
// reaching another file.
std::string NarrowBridgeConnection::fileTarget(std::string_view path, const char* op) const {
    if (path.find_first_of("?#%") != std::string_view::npos)
        throw UnsupportedOperationError(
            "UNSUPPORTED_OPERATION",
            "the bridge's file route cannot address a path containing '?', '#' or '%': '" +
                std::string(path) + "'",
            0, json{{"path", std::string(path)}}, op);
    return "/v1/sandbox/" + info_->bridgeId + "/file" + bridgePathPart(bridgeWorkspacePath(path));
}

std::unique_ptr<EventSource> NarrowBridgeConnection::openExec(
    const std::string& command, const ExecOptions& o, const BoundSession& s,
    std::optional<std::chrono::milliseconds> idle) {
    std::vector<std::string> argv;
    // Sandbox-level variables (setEnvVars) under the per-command ones.
    EnvVars env = info_->withSandboxEnv(o.env);
    if (!env.empty()) {
        argv.push_back("env");
        for (const auto& [k, v] : env)
            if (v) argv.push_back(k + "=" + *v);
    }
    if (o.timeout) {
        // Cloudflare's bridge passes timeout_ms on, but whether the command is stopped depends
        // on its transport to the container; coreutils' timeout makes it so either way (exit 124,
        // then SIGKILL a second later for what ignores SIGTERM).
        char secs[32];
        std::snprintf(secs, sizeof secs, "%.3f", static_cast<double>(o.timeout->count()) / 1000);
        argv.insert(argv.end(), {"timeout", "-k", "1", secs});
    }
    argv.insert(argv.end(), {"bash", "-c", command});
    json body = {{"argv", argv}};
    if (o.timeout) body["timeout_ms"] = o.timeout->count();
    if (o.cwd) body["cwd"] = *o.cwd;
    return req_.stream(root_, "POST", "/v1/sandbox/" + info_->bridgeId + "/exec",
                       jsonBody(body, "command.execute"), sessionHeader(s), "command.execute",
                       idle);
}

namespace {
// Reads a bridge exec stream to its exit event: the raw output and the exit code. `limit` (0:
// none) bounds the whole read: the bridge's keep-alive comments do not extend it.
ExecResult collectExec(EventSource& src, const std::string& command,
                       std::chrono::milliseconds limit) {
    ExecResult r;
    r.command = command;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (auto ev = src.next()) {
        if (limit.count() > 0 && std::chrono::steady_clock::now() > deadline)
            throw TimeoutError("TIMEOUT", "no exec result within the request timeout", 0,
                               json{{"command", command}}, "command.execute");
        if (ev->event == "stdout" || ev->event == "stderr") {
            std::string bytes;
            if (!core::base64Decode(ev->data, bytes)) continue;
            (ev->event == "stdout" ? r.stdoutText : r.stderrText) += bytes;
        } else if (ev->event == "exit") {
            r.exitCode = json::parse(ev->data, nullptr, false).value("exit_code", -1);
            r.success = r.exitCode == 0;
            return r;
        } else if (ev->event == "error") {
            json e = json::parse(ev->data, nullptr, false);
            std::string msg = e.is_object() ? e.value("error", ev->data) : ev->data;
            throw CommandError(e.is_object() ? e.value("code", "exec_error") : "exec_error", msg,
                               500, json{{"command", command}}, "command.execute");
        }
    }
    throw StreamLostError("STREAM_LOST", "the exec stream ended without an exit event", 0,
                          json{{"command", command}}, "command.execute");
}
}  // namespace

ExecResult NarrowBridgeConnection::exec(std::string_view command, const ExecOptions& o,
                                        const BoundSession& s) {
    const std::string cmd(command);
    // A plain request for the caller: the request timeout bounds it as a whole.
    const auto limit = req_.settings().requestTimeout;
    auto src = openExec(cmd, o, s, limit);
    ExecResult r = collectExec(*src, cmd, limit);
    r.sessionId = s;
    if (o.timeout && r.exitCode == 124 &&
        r.stderrText.find("Command timed out") == std::string::npos)
        r.stderrText += "Command timed out after " + std::to_string(o.timeout->count()) + "ms\n";
    if (sessionMode(*info_, s)) {
        // What the container API's session mode gives for the same bytes.
        r.stdoutText = core::normalizeSessionOutput(r.stdoutText);
        r.stderrText = core::normalizeSessionOutput(r.stderrText);
    }
    return r;
}

std::unique_ptr<ExecEventReader> NarrowBridgeConnection::execStream(std::string_view command,
                                                                    const ExecOptions& o,
                                                                    const BoundSession& s) {
    // The bridge's stream has no start event: its 200 answer is the command's acceptance.
    // Whether an exit 124 is the SDK's timeout is judged from the time the request was sent:
    // the answer's head may come well after the command started (a slow bridge or client).
    const auto requested = std::chrono::steady_clock::now();
    auto src = openExec(std::string(command), o, s, std::nullopt);
    return std::make_unique<NarrowExecEvents>(std::move(src), std::string(command),
                                              sessionMode(*info_, s), o.timeout, requested);
}

ExecResult NarrowBridgeConnection::run(const std::vector<std::string>& argv) {
    std::string command = core::bridgeCommand(argv);
    const auto limit = req_.settings().requestTimeout;
    auto src = openExec(command, {}, std::nullopt, limit);
    return collectExec(*src, command, limit);
}

WriteFileResult NarrowBridgeConnection::writeFile(std::string_view path, std::string_view content,
                                                  const WriteFileOptions& o,
                                                  const BoundSession& s) {
    std::string bytes;
    if (o.encoding == Encoding::Base64 && !core::base64Decode(content, bytes))
        throw ValidationFailedError("VALIDATION_FAILED", "content is not valid base64", 400);
    std::string_view body = o.encoding == Encoding::Base64 ? std::string_view(bytes) : content;
    client::HeaderList h = sessionHeader(s);
    h.emplace_back("Content-Type", "application/octet-stream");
    req_.call(root_, "PUT", fileTarget(path, "file.write"), body, h, "file.write", true);
    WriteFileResult r;
    r.path = std::string(path);
    r.timestamp = core::isoTimestampNow();
    return r;
}

// Cloudflare's bridge answers a download of a missing file (or a directory) with 200 and then
// drops the connection: when a download breaks, the file is looked at to say why.
void NarrowBridgeConnection::explainBrokenDownload(std::string_view path, const char* op) {
    std::string p = bridgeWorkspacePath(path);
    auto e = run({"bash", "-c", "[ -f \"$1\" ] && [ -r \"$1\" ]", "check", p});
    if (e.exitCode != 0)
        throw FileNotFoundError("FILE_NOT_FOUND", "File not found: " + std::string(path), 404,
                                json{{"path", std::string(path)}}, op);
}

ReadFileResult NarrowBridgeConnection::readFile(std::string_view path, const ReadFileOptions& o,
                                                const BoundSession& s) {
    client::HttpResponse resp;
    try {
        resp = req_.call(root_, "GET", fileTarget(path, "file.read"), {}, sessionHeader(s),
                         "file.read", true);
    } catch (const SandboxGoneError&) {
        explainBrokenDownload(path, "file.read");
        throw;
    }
    ReadFileResult r;
    r.path = std::string(path);
    r.mimeType = core::mimeTypeForPath(r.path);
    r.size = resp.body.size();
    // As the container API answers: text only when the bytes are UTF-8 (else exact, as base64).
    bool text = core::isValidUtf8(resp.body) &&
                (core::isTextMimeType(r.mimeType) || (r.mimeType == "application/octet-stream" &&
                                                      resp.body.find('\0') == std::string::npos));
    if (r.mimeType == "application/octet-stream" && text) r.mimeType = "text/plain";
    bool b64 = o.encoding == Encoding::Base64 || (o.encoding == Encoding::Auto && !text);
    r.encoding = b64 ? "base64" : "utf-8";
    r.isBinary = b64;
    r.content = b64 ? core::base64Encode(resp.body) : core::sanitizeUtf8(resp.body);
    r.timestamp = core::isoTimestampNow();
    return r;
}

std::unique_ptr<FileReader> NarrowBridgeConnection::readFileStream(std::string_view path,
                                                                   const BoundSession& s) {
    std::unique_ptr<EventSource> src;
    try {
        src = req_.stream(root_, "GET", fileTarget(path, "file.stream"), {}, sessionHeader(s),
                          "file.stream");
    } catch (const SandboxGoneError&) {
        explainBrokenDownload(path, "file.stream");
        throw;
    }
    std::string mime = core::mimeTypeForPath(path);
    bool binary = !core::isTextMimeType(mime);
    std::uint64_t size = 0;
    bool known = false;
    for (const auto& [k, v] : src->headers)
        if (k == "content-length") known = std::sscanf(v.c_str(), "%" SCNu64, &size) == 1;
    if (!known) {
        // Also tells a missing file (the download's 200 would break off) from a present one.
        auto e = run({"stat", "-L", "-c", "%F|%s", "--", bridgeWorkspacePath(path)});
        if (e.exitCode != 0 || e.stdoutText.rfind("directory|", 0) == 0)
            throw FileNotFoundError("FILE_NOT_FOUND", "File not found: " + std::string(path), 404,
                                    json{{"path", std::string(path)}}, "file.stream");
        size = std::strtoull(e.stdoutText.c_str() + e.stdoutText.find('|') + 1, nullptr, 10);
    }
    return std::make_unique<NarrowFileReader>(
        std::move(src), FileMetadata{mime, size, binary, binary ? "base64" : "utf-8"});
}

std::string NarrowBridgeConnection::mkdir(std::string_view path, bool recursive,
                                          const BoundSession&) {
    std::vector<std::string> argv = {"mkdir"};
    if (recursive) argv.push_back("-p");
    argv.insert(argv.end(), {"--", bridgeWorkspacePath(path)});
    auto e = run(argv);
    if (e.exitCode != 0)
        throwFileErrorFromStderr(std::string(path), e.stderrText, e.exitCode, "file.mkdir");
    return core::isoTimestampNow();
}

std::string NarrowBridgeConnection::deleteFile(std::string_view path, const BoundSession&) {
    auto e = run({"bash", "-c",
                  "if [ -d \"$1\" ] && [ ! -L \"$1\" ]; then echo 'Is a directory' >&2; exit 1; "
                  "fi; rm -- \"$1\"",
                  "rm", bridgeWorkspacePath(path)});
    if (e.exitCode != 0)
        throwFileErrorFromStderr(std::string(path), e.stderrText, e.exitCode, "file.delete");
    return core::isoTimestampNow();
}

std::string NarrowBridgeConnection::move(std::string_view from, std::string_view to, bool rename,
                                         const BoundSession&) {
    auto e = run({"mv", "--", bridgeWorkspacePath(from), bridgeWorkspacePath(to)});
    if (e.exitCode != 0)
        throwFileErrorFromStderr(std::string(from), e.stderrText, e.exitCode,
                                 rename ? "file.rename" : "file.move");
    return core::isoTimestampNow();
}

ListFilesResult NarrowBridgeConnection::listFiles(std::string_view path, const ListFilesOptions& o,
                                                  const BoundSession&) {
    ListFilesResult r;
    r.path = std::string(path);
    std::string p = bridgeWorkspacePath(path);
    if (run({"test", "-d", p}).exitCode != 0) {
        if (run({"test", "-e", p}).exitCode != 0)
            throw FileNotFoundError("FILE_NOT_FOUND", "Directory not found: " + r.path, 404,
                                    json{{"path", r.path}}, "file.list");
        throw FileSystemError("NOT_DIRECTORY", "Path is not a directory: " + r.path, 400,
                              json{{"path", r.path}}, "file.list");
    }
    std::vector<std::string> argv = {"find", p, "-mindepth", "1"};
    if (!o.recursive) argv.insert(argv.end(), {"-maxdepth", "1"});
    if (!o.includeHidden) argv.insert(argv.end(), {"-not", "-name", ".*"});
    argv.insert(argv.end(), {"-printf", "%y\\t%s\\t%TY-%Tm-%TdT%TH:%TM:%TS\\t%m\\t%P\\0"});
    auto e = run(argv);
    if (e.exitCode != 0) throwFileErrorFromStderr(r.path, e.stderrText, e.exitCode, "file.list");
    r.files = parseFindListing(e.stdoutText, p);
    r.count = r.files.size();
    r.timestamp = core::isoTimestampNow();
    return r;
}

ExistsResult NarrowBridgeConnection::exists(std::string_view path, const BoundSession&) {
    ExistsResult r;
    r.path = std::string(path);
    r.exists = run({"test", "-e", bridgeWorkspacePath(path)}).exitCode == 0;
    r.timestamp = core::isoTimestampNow();
    return r;
}

namespace {
// A bridge without session routes answers them with a plain 404: createSession/deleteSession
// cannot work there.
[[noreturn]] void rethrowSessionRouteError(const SandboxError& e, const char* method) {
    if (e.httpStatus() == 404 && e.code() == "INTERNAL_ERROR")
        throw UnsupportedOperationError(
            "UNSUPPORTED_OPERATION",
            std::string(method) +
                "() needs a bridge with session routes (/v1/sandbox/ID/session) or the container "
                "API; this bridge has neither. getSession(id) still works: the container creates "
                "a named session on first use",
            0, json::object(), e.operation());
    throw;
}
}  // namespace

void NarrowBridgeConnection::createSession(const std::string& id, const SessionOptions& o,
                                           const EnvVars& env) {
    json body = {{"id", id}};
    json e = json::object();
    for (const auto& [k, v] : env)
        if (v) e[k] = *v;
    if (!e.empty()) body["env"] = e;
    if (o.cwd) body["cwd"] = *o.cwd;
    try {
        req_.call(root_, "POST", "/v1/sandbox/" + info_->bridgeId + "/session",
                  jsonBody(body, "session.create"), {}, "session.create", false);
    } catch (const SandboxError& err) {
        rethrowSessionRouteError(err, "createSession");
    }
}

std::string NarrowBridgeConnection::deleteSession(const std::string& id) {
    try {
        req_.call(root_, "DELETE",
                  "/v1/sandbox/" + info_->bridgeId + "/session/" + bridgePathPart(id), {}, {},
                  "session.delete", false);
    } catch (const SandboxError& err) {
        rethrowSessionRouteError(err, "deleteSession");
    }
    return core::isoTimestampNow();
}

void NarrowBridgeConnection::destroy() {
    auto r = req_.send(root_, "DELETE", "/v1/sandbox/" + info_->bridgeId, {}, {}, "sandbox.destroy",
                       false);
    if (r.status != 204 && r.status != 200 && r.status != 404)
        throwErrorFromResponse(r.status, r.body, "sandbox.destroy");
}

void NarrowBridgeConnection::mountBucket(std::string_view bucket, std::string_view mountPath,
                                         const MountBucketOptions& o) {
    bridgeMount(req_, root_, info_->bridgeId, bucket, mountPath, o);
}

void NarrowBridgeConnection::unmountBucket(std::string_view mountPath) {
    bridgeUnmount(req_, root_, info_->bridgeId, mountPath);
}

BridgePorts& NarrowBridgeConnection::ports(const char* method, bool exposures) {
    if (exposures) return Connection::ports(method, exposures);  // sandboxd's alone
    return ports_;
}

TerminalTarget NarrowBridgeConnection::terminal(const std::string& session,
                                                const std::string& query) {
    return {root_,
            "/v1/sandbox/" + info_->bridgeId + "/pty?" + query +
                "&session=" + core::queryEscape(session),
            req_.headers()};
}

}  // namespace sandbox::detail
