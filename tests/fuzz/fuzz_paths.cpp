// Every rule that validates or normalises a client-supplied path:
//  - sandboxd: the route decoding (decodeBridgePath, removeDotSegments), the file routes' and
//    exec cwd's resolveWorkspacePath, the mount path rules (normaliseSandboxPath,
//    mountPathRefused), the unmount key (fileUrlPathname), /persist excludes;
//  - sandbox-agent: core::resolvePath + core::pathIsUnder (file routes, watch confinement),
//    core::pathProblems;
//  - the HTTP server's percentDecode.
// A path a rule accepts is confined where it should be, has no "." or ".." component and no
// NUL byte; normalising twice changes nothing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/text.hpp"
#include "core/wire_bridge.hpp"
#include "daemon/paths.hpp"
#include "daemon/workspace_fs.hpp"
#include "fuzz_common.hpp"
#include "server/http_server.hpp"

namespace core = sandbox::core;
namespace sbd = sandbox::daemon;

namespace {

std::vector<std::string_view> segments(std::string_view path) {
    std::vector<std::string_view> out;
    std::size_t i = path.empty() || path[0] != '/' ? 0 : 1;
    for (;;) {
        std::size_t j = path.find('/', i);
        out.push_back(path.substr(i, j == std::string_view::npos ? j : j - i));
        if (j == std::string_view::npos) break;
        i = j + 1;
    }
    return out;
}

// Absolute, no empty, "." or ".." segment (so no "//" and no trailing "/"), except "/" itself.
bool canonical(std::string_view p) {
    if (p.empty() || p[0] != '/') return false;
    if (p == "/") return true;
    for (auto s : segments(p))
        if (s.empty() || s == "." || s == "..") return false;
    return true;
}

bool hasDotSegment(std::string_view p) {
    for (auto s : segments(p))
        if (s == "." || s == "..") return true;
    return false;
}

std::size_t count(std::string_view s, char c) {
    std::size_t n = 0;
    for (char x : s) n += x == c;
    return n;
}

void workspaceRule(std::string_view p) {
    // resolveWorkspacePath: exec's cwd as given, the file routes with "/" + the route's rest.
    for (const std::string& in : {std::string(p), "/" + std::string(p)}) {
        const std::string r = sbd::resolveWorkspacePath(in);
        if (r.empty()) continue;
        FUZZ_CHECK(r == "/workspace" || r.rfind("/workspace/", 0) == 0, r);
        FUZZ_CHECK(canonical(r), r);
        FUZZ_CHECK(r.find('\0') == std::string::npos, r);
        FUZZ_CHECK(sbd::resolveWorkspacePath(r) == r, r);
        FUZZ_CHECK(core::pathIsUnder(r, "/workspace"), r);
    }
}

void bridgeRouting(std::string_view sub) {
    // The part after /v1/sandbox/<id>, decoded then dot-segments removed, as the router does.
    const std::string decoded = sbd::decodeBridgePath(sub);
    FUZZ_CHECK(count(decoded, '/') == count(sub, '/'), decoded);  // %2F never splits a segment
    FUZZ_CHECK(decoded.size() <= sub.size(), decoded);
    const std::string routed = sbd::removeDotSegments(decoded);
    FUZZ_CHECK(!routed.empty() && routed[0] == '/', routed);
    FUZZ_CHECK(!hasDotSegment(routed), routed);
    FUZZ_CHECK(sbd::removeDotSegments(routed) == routed, routed);
    if (routed.rfind("/file/", 0) == 0) {
        const std::string rel = routed.substr(6);
        const std::string r = sbd::resolveWorkspacePath("/" + rel);
        if (!r.empty()) {
            FUZZ_CHECK(r == "/workspace" || r.rfind("/workspace/", 0) == 0, r);
            FUZZ_CHECK(r.find('\0') == std::string::npos, r);
        }
    }
}

void mountRules(std::string_view p) {
    const std::string n = sbd::normaliseSandboxPath(p);
    FUZZ_CHECK(canonical(n), n);
    FUZZ_CHECK(sbd::normaliseSandboxPath(n) == n, n);
    if (sbd::mountPathRefused(n).empty()) {
        FUZZ_CHECK(n != "/" && n != "/workspace", n);
        for (std::string_view dir : {"/proc", "/dev", "/sys", "/run"})
            FUZZ_CHECK(!core::pathIsUnder(n, dir), n);
        // The mount point is made component by component with C strings: a NUL would cut it
        // short, to a path the checks above never saw.
        FUZZ_CHECK(n.find('\0') == std::string::npos, n);
    }
    // The unmount key: the pathname of a file: URL.
    const std::string key = sandbox::core::wire::fileUrlPathname(p);
    FUZZ_CHECK(!key.empty() && key[0] == '/', key);
    for (auto s : segments(key)) {
        std::string l(s);
        for (auto& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        FUZZ_CHECK(
            l != "." && l != ".." && l != "%2e" && l != ".%2e" && l != "%2e." && l != "%2e%2e",
            key);
    }
    FUZZ_CHECK(key.find_first_of(std::string_view("\0\t\r\n ", 5)) == std::string::npos, key);
}

void agentRules(std::string_view p, std::string_view base) {
    // File routes: relative paths against the session's directory.
    const std::string r = core::resolvePath(base, p);
    FUZZ_CHECK(canonical(r), r);
    FUZZ_CHECK(core::resolvePath("/", r) == r, r);
    FUZZ_CHECK(core::resolvePath(base, r) == r, r);
    // Watch confinement: resolved against the workspace root, accepted when under it.
    const std::string root = core::resolvePath("/", base);
    const std::string w = core::resolvePath(root, core::trim(p));
    if (core::pathIsUnder(w, root)) {
        FUZZ_CHECK(w.size() >= root.size() && w.compare(0, root.size(), root) == 0, w);
        FUZZ_CHECK(!hasDotSegment(w), w);
    }
    // The validation every file route runs first.
    const std::string problems = core::pathProblems(p);
    const bool valid = !p.empty() && p.find('\0') == std::string_view::npos && p.size() <= 4096;
    FUZZ_CHECK(problems.empty() == valid, problems);
}

void percent(std::string_view s) {
    auto d = sandbox::server::percentDecode(s);
    if (!d) {
        FUZZ_CHECK(s.find('%') != std::string_view::npos, s);
        return;
    }
    FUZZ_CHECK(d->size() + 2 * count(s, '%') == s.size(), *d);
    if (s.find('%') == std::string_view::npos) FUZZ_CHECK(*d == s, *d);
}

void persistExcludes(std::string_view query) {
    auto value = sandbox::core::wire::firstQueryParam(query, "excludes");
    std::vector<std::string> items;
    if (!sandbox::core::wire::parseExcludes(value, items)) return;
    for (const auto& item : items) {
        FUZZ_CHECK(!item.empty(), query);
        FUZZ_CHECK(item.find("..") == std::string::npos, item);
        FUZZ_CHECK(item.find(',') == std::string::npos, item);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(bytes), size);
    workspaceRule(in);
    bridgeRouting(in);
    mountRules(in);
    // The agent's session directory: the workspace, or (after a cut at the first 0x1f) a base
    // taken from the input, made absolute as a session's directory always is.
    std::string base = "/workspace";
    std::string_view path = in;
    if (auto cut = in.find('\x1f'); cut != std::string_view::npos) {
        base = core::resolvePath("/", in.substr(0, cut));
        path = in.substr(cut + 1);
    }
    agentRules(path, base);
    percent(in);
    persistExcludes(in);
    return 0;
}
