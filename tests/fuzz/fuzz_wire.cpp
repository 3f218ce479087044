// The JSON bodies of every route (src/core/wire*.cpp). The first input byte picks a parser, the
// rest is the body, read the way the server reads it:
//  - container API requests (sandbox-agent): parse succeeds, or throws core::ApiError with a
//    4xx status; nothing else may escape. What a parsed request writes back (toJson, what the
//    SDK sends) must parse again to the same request.
//  - bridge API bodies (sandboxd mount/unmount) and WebSocket frames (PTY control, the /ws
//    multiplexer): never throw; what they accept satisfies their documented checks.
//  - responses read by the SDK: never throw, whatever the JSON (they are lenient by contract).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <typeinfo>

#include "core/errors.hpp"
#include "core/json_util.hpp"
#include "core/wire.hpp"
#include "core/wire_bridge.hpp"
#include "core/wire_git_watch.hpp"
#include "core/wire_process.hpp"
#include "core/wire_ws.hpp"
#include "fuzz_common.hpp"

using nlohmann::json;
namespace core = sandbox::core;
namespace wire = sandbox::core::wire;

namespace {

std::string show(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A container-API request: `read` turns the parsed body into the message, `write` back to JSON.
template <class Read, class Write>
void request(std::string_view body, Read read, Write write, bool lenientBody = false) {
    json j;
    if (lenientBody) {
        // POST /api/session/create: a body that is not a JSON object means defaults.
        j = json::parse(body, nullptr, false);
        if (j.is_discarded() || !j.is_object()) j = json::object();
    } else {
        try {
            j = core::parseJsonObject(body);
        } catch (const core::ApiError& e) {
            FUZZ_CHECK(e.httpStatus() == 400, e.message());
            return;
        }
    }
    json first;
    try {
        first = write(read(j));
    } catch (const core::ApiError& e) {
        FUZZ_CHECK(e.httpStatus() >= 400 && e.httpStatus() < 500, e.code() + ": " + e.message());
        return;
    }
    // What the SDK sends for this request is read back the same.
    json second;
    try {
        second = write(read(first));
    } catch (const core::ApiError& e) {
        sandbox::fuzz::fail("a request's own toJson() is refused",
                            show(first) + " -> " + e.message());
    }
    FUZZ_CHECK(first == second, show(first) + " vs " + show(second));
}

#define REQUEST(T)                                                \
    request(                                                      \
        body, [](const json& j) { return wire::T::fromJson(j); }, \
        [](const wire::T& r) { return r.toJson(); })

// A response the SDK reads from any JSON value (or a discarded one: the body was not JSON).
template <class T>
void response(std::string_view body) {
    const json j = core::parseJson(body);
    T r = T::fromJson(j);
    T again = T::fromJson(r.toJson());
    FUZZ_CHECK(again.toJson() == r.toJson(), show(r.toJson()));
}

void mount(std::string_view body) {
    json j = json::parse(body, nullptr, false);
    if (j.is_discarded() || j.is_null()) return;  // 400 and 500 before the parser runs
    wire::MountRequest m;
    if (!wire::MountRequest::parse(j, m).empty()) return;
    FUZZ_CHECK(!m.mountPath.empty() && m.mountPath[0] == '/', m.mountPath);
    FUZZ_CHECK(!m.bucket.empty(), show(j));
    FUZZ_CHECK(m.remote == m.endpoint.has_value(), show(j));
    (void)m.forwardedOptions().dump();
}

void unmount(std::string_view body) {
    json j = json::parse(body, nullptr, false);
    if (j.is_discarded() || j.is_null()) return;
    wire::UnmountRequest u;
    if (!wire::UnmountRequest::parse(j, u).empty()) return;
    FUZZ_CHECK(!u.mountPath.empty() && u.mountPath[0] == '/' && u.mountPath != "/", u.mountPath);
}

// Nesting depth of a JSON value. Values are copied and serialised recursively (nlohmann), so
// what a parser accepts from a peer must be shallow enough for any stack: core::parseJson's
// limit, 1024 levels.
std::size_t depthOf(const json& j) {
    std::size_t deepest = 0;
    if (j.is_structured())
        for (const auto& child : j) deepest = std::max(deepest, depthOf(child));
    return deepest + 1;
}
constexpr std::size_t kMaxDepth = 1024;

void pty(std::string_view text) {
    auto m = wire::parsePtyMessage(text);
    if (m) FUZZ_CHECK(m->type.size() <= text.size(), m->type);
}

void wsFrame(std::string_view text) {
    wire::WsParseError err;
    auto r = wire::parseWsRequest(text, err);
    FUZZ_CHECK(r.has_value() == (err == wire::WsParseError::None), text);
    if (!r) return;
    FUZZ_CHECK(r->type == "request" || r->type == "cancel", r->type);
    if (r->body) FUZZ_CHECK(depthOf(*r->body) < kMaxDepth, text);
    if (r->type != "request") return;
    // A client's frame (wsRequestJson) is read back the same.
    auto again = wire::parseWsRequest(wire::wsRequestJson(*r), err);
    FUZZ_CHECK(again.has_value(), wire::wsRequestJson(*r));
    FUZZ_CHECK(again->id == r->id && again->method == r->method && again->path == r->path &&
                   again->headers == r->headers && again->body == r->body,
               wire::wsRequestJson(*r));
}

void readResponse(std::string_view body) {
    response<wire::ReadResponse>(body);
    auto r = wire::ReadResponse::fromJson(core::parseJson(body));
    // The hand-written serialisation (for large contents) is the same JSON value as toJson()
    // (the text differs in DEL only, which it escapes).
    const std::string text = r.toJsonString();
    const json parsed = json::parse(text, nullptr, false);
    FUZZ_CHECK(!parsed.is_discarded() && parsed == r.toJson(), text + " vs " + r.toJson().dump());
    FUZZ_CHECK(text.size() >= r.toJson().dump().size(), text);
}

void dispatch(std::uint8_t selector, std::string_view body) {
    switch (selector % 26) {
        // Container API requests (sandbox-agent routes).
        case 0:
            request(
                body, [](const json& j) { return wire::SessionCreateRequest::fromJson(j); },
                [](const wire::SessionCreateRequest& r) { return r.toJson(); }, true);
            break;
        case 1:
            REQUEST(SessionDeleteRequest);
            break;
        case 2:
            REQUEST(ExecuteRequest);
            break;
        case 3:
            REQUEST(ReadRequest);
            break;
        case 4:
            REQUEST(WriteRequest);
            break;
        case 5:
            REQUEST(PathRequest);
            break;
        case 6:
            request(
                body, [](const json& j) { return wire::MoveRequest::fromRenameJson(j); },
                [](const wire::MoveRequest& r) { return r.toRenameJson(); });
            break;
        case 7:
            request(
                body, [](const json& j) { return wire::MoveRequest::fromMoveJson(j); },
                [](const wire::MoveRequest& r) { return r.toMoveJson(); });
            break;
        case 8:
            REQUEST(MkdirRequest);
            break;
        case 9:
            REQUEST(ListFilesRequest);
            break;
        case 10:
            REQUEST(StartProcessRequest);
            break;
        case 11:
            REQUEST(PortWatchRequest);
            break;
        case 12:
            REQUEST(GitCheckoutRequest);
            break;
        case 13:
            REQUEST(WatchRequest);
            break;
        // Bridge API bodies (sandboxd) and WebSocket frames.
        case 14:
            mount(body);
            break;
        case 15:
            unmount(body);
            break;
        case 16:
            pty(body);
            break;
        case 17:
            wsFrame(body);
            break;
        // Responses the SDK reads.
        case 18:
            response<wire::ExecuteResponse>(body);
            break;
        case 19:
            response<wire::ProcessStartedResponse>(body);
            break;
        case 20:
            readResponse(body);
            break;
        case 21:
            response<wire::FileInfo>(body);
            break;
        case 22:
            response<wire::ProcessInfo>(body);
            break;
        case 23:
            response<wire::ProcessLogsResponse>(body);
            break;
        case 24:
            response<wire::GitCheckoutResponse>(body);
            break;
        case 25:
            response<wire::CheckChangesResponse>(body);
            break;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    if (size == 0) return 0;
    std::string_view body(reinterpret_cast<const char*>(bytes) + 1, size - 1);
    try {
        dispatch(bytes[0], body);
    } catch (const std::exception& e) {
        sandbox::fuzz::fail("an exception other than core::ApiError escaped a parser",
                            std::string(typeid(e).name()) + ": " + e.what());
    }
    return 0;
}
