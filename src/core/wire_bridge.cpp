#include "core/wire_bridge.hpp"

#include "core/text.hpp"

#include <algorithm>
#include <cctype>

#include "core/utf8.hpp"

namespace sandbox::core::wire {
using nlohmann::json;

std::optional<std::int64_t> parseJsInt(std::string_view s) {
    size_t i = 0;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' ||
                            s[i] == '\f' || s[i] == '\v'))
        ++i;
    bool neg = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
    std::int64_t v = 0;
    for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i)
        v = std::min<std::int64_t>(v * 10 + (s[i] - '0'), std::int64_t(1) << 53);
    return neg ? -v : v;
}

PoolConfig PoolConfig::fromEnv(const std::function<const char*(const char*)>& getenv) {
    PoolConfig c;
    auto read = [&](const char* name, std::int64_t& field) {
        const char* v = getenv(name);
        if (!v) return;
        auto n = parseJsInt(v);
        if (n && *n != 0) field = *n;  // NaN or 0: the default
    };
    read("WARM_POOL_TARGET", c.warmTarget);
    read("WARM_POOL_REFRESH_INTERVAL", c.refreshInterval);
    read("WARM_POOL_MAX_INSTANCES", c.maxInstances);
    read("WARM_POOL_SCALE_BATCH_SIZE", c.scaleBatchSize);
    c.scaleBatchSize = std::clamp<std::int64_t>(c.scaleBatchSize, 1, 20);
    return c;
}

std::string PoolStats::toJson() const {
    nlohmann::ordered_json j;
    j["warm"] = warm;
    j["assigned"] = assigned;
    j["total"] = total;
    j["config"] = {{"warmTarget", config.warmTarget},
                   {"refreshInterval", config.refreshInterval},
                   {"maxInstances", config.maxInstances},
                   {"scaleBatchSize", config.scaleBatchSize}};
    j["maxInstances"] = maxInstances ? nlohmann::ordered_json(*maxInstances) : nullptr;
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

const json* member(const json& obj, const char* key) {
    if (!obj.is_object()) return nullptr;
    auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
}

bool truthyString(const json* v) {
    return v && v->is_string() && !v->get_ref<const std::string&>().empty();
}

}  // namespace

std::string MountRequest::parse(const json& body, MountRequest& out) {
    out = MountRequest{};
    const json* bucket = member(body, "bucket");
    if (bucket && !truthyString(bucket)) return "bucket must be a non-empty string";
    const json* mountPath = member(body, "mountPath");
    if (!truthyString(mountPath)) return "mountPath must be a non-empty string";
    out.mountPath = mountPath->get<std::string>();
    if (out.mountPath[0] != '/') return "mountPath must be an absolute path (start with /)";
    const json* options = member(body, "options");
    if (!options || !options->is_object()) return "options must be an object";
    const json* endpoint = member(*options, "endpoint");
    if (endpoint && !endpoint->is_string())
        return "options.endpoint must be a string when provided";
    const json* binding = member(body, "binding");
    if (binding && !binding->is_string()) return "binding must be a string when provided";
    if (binding && binding->get_ref<const std::string&>().empty())
        return "binding must be a non-empty string when provided";
    if (binding && endpoint) return "Provide either binding or options.endpoint, not both";
    if (const json* s = member(*options, "s3fsOptions")) {
        bool ok = s->is_array() &&
                  std::all_of(s->begin(), s->end(), [](const json& e) { return e.is_string(); });
        if (!ok) return "options.s3fsOptions must be an array of strings when provided";
        out.s3fsOptions = s->get<std::vector<std::string>>();
    }
    if (const json* r = member(*options, "readOnly")) {
        if (!r->is_boolean()) return "options.readOnly must be a boolean when provided";
        out.readOnly = r->get<bool>();
    }
    if (const json* p = member(*options, "prefix")) {
        if (!p->is_string()) return "options.prefix must be a string when provided";
        out.prefix = p->get<std::string>();
    }
    if (const json* cp = member(*options, "credentialProxy")) {
        if (!cp->is_boolean()) return "options.credentialProxy must be a boolean when provided";
        out.credentialProxy = cp->get<bool>();
    }
    if (const json* c = member(*options, "credentials")) {
        const json* k = member(*c, "accessKeyId");
        const json* s = member(*c, "secretAccessKey");
        if (!c->is_object() || !k || !k->is_string() || !s || !s->is_string())
            return "options.credentials must include string accessKeyId and secretAccessKey";
        out.credentials.emplace(k->get<std::string>(), s->get<std::string>());
    }
    if (endpoint) {
        out.remote = true;
        out.endpoint = endpoint->get<std::string>();
        if (!truthyString(bucket)) return "bucket must be a non-empty string for remote mounts";
        out.bucket = bucket->get<std::string>();
    } else {
        if (!binding) return "binding must be a non-empty string for R2 binding mounts";
        out.bucket = binding->get<std::string>();
        out.credentials.reset();  // dropped for binding mounts
        out.credentialProxy.reset();
    }
    return {};
}

nlohmann::ordered_json MountRequest::forwardedOptions() const {
    nlohmann::ordered_json o = nlohmann::ordered_json::object();
    if (remote) o["endpoint"] = *endpoint;
    if (readOnly) o["readOnly"] = *readOnly;
    if (prefix) o["prefix"] = *prefix;
    if (credentials)
        o["credentials"] = {{"accessKeyId", credentials->first},
                            {"secretAccessKey", credentials->second}};
    if (s3fsOptions) o["s3fsOptions"] = *s3fsOptions;
    if (credentialProxy) o["credentialProxy"] = *credentialProxy;
    return o;
}

std::string UnmountRequest::parse(const json& body, UnmountRequest& out) {
    const json* mountPath = member(body, "mountPath");
    if (!truthyString(mountPath)) return "mountPath must be a non-empty string";
    const auto& p = mountPath->get_ref<const std::string&>();
    if (p[0] != '/') return "mountPath must be an absolute path (start with /)";
    out.mountPath = fileUrlPathname(p);
    if (out.mountPath == "/") return "mountPath must not resolve to / (filesystem root)";
    return {};
}

std::string fileUrlPathname(std::string_view in) {
    // Leading and trailing C0 controls and spaces go, then every TAB, LF and CR.
    size_t b = 0, e = in.size();
    while (b < e && static_cast<unsigned char>(in[b]) <= 0x20) ++b;
    while (e > b && static_cast<unsigned char>(in[e - 1]) <= 0x20) --e;
    std::string s;
    for (char c : in.substr(b, e - b))
        if (c != '\t' && c != '\n' && c != '\r') s.push_back(c == '\\' ? '/' : c);
    if (auto q = s.find_first_of("?#"); q != std::string::npos) s.resize(q);
    // "//host/..." names a host in a file: URL; the path starts after it.
    if (s.rfind("//", 0) == 0) {
        auto slash = s.find('/', 2);
        s = slash == std::string::npos ? "/" : s.substr(slash);
    }
    auto lower = [](std::string v) {
        for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return v;
    };
    std::vector<std::string> segs;
    size_t i = s.empty() ? 0 : 1;
    for (;;) {
        size_t j = s.find('/', i);
        bool last = j == std::string::npos;
        std::string seg = s.substr(i, last ? std::string::npos : j - i);
        std::string l = lower(seg);
        if (l == ".." || l == ".%2e" || l == "%2e." || l == "%2e%2e") {
            if (!segs.empty()) segs.pop_back();
            if (last) segs.emplace_back();
        } else if (l == "." || l == "%2e") {
            if (last) segs.emplace_back();
        } else {
            std::string enc;
            for (unsigned char c : seg) {
                if (c < 0x20 || c == ' ' || c == '"' || c == '#' || c == '<' || c == '>' ||
                    c == '?' || c == '`' || c == '{' || c == '}' || c >= 0x7F) {
                    static const char* hex = "0123456789ABCDEF";
                    enc += '%';
                    enc += hex[c >> 4];
                    enc += hex[c & 15];
                } else {
                    enc.push_back(static_cast<char>(c));
                }
            }
            segs.push_back(std::move(enc));
        }
        if (last) break;
        i = j + 1;
    }
    std::string out;
    for (const auto& seg : segs) out += "/" + seg;
    return out.empty() ? "/" : out;
}

std::string formDecode(std::string_view raw) {
    constexpr auto hex = hexDigitValue;
    std::string out;
    size_t i = 0;
    while (i < raw.size()) {
        if (raw[i] == '+') {
            out.push_back(' ');
            ++i;
            continue;
        }
        if (raw[i] != '%') {
            out.push_back(raw[i++]);
            continue;
        }
        size_t j = i;
        std::string bytes;
        while (j + 2 < raw.size() + 0 && raw[j] == '%' && hex(raw[j + 1]) >= 0 &&
               hex(raw[j + 2]) >= 0) {
            bytes.push_back(static_cast<char>(hex(raw[j + 1]) * 16 + hex(raw[j + 2])));
            j += 3;
        }
        if (j == i) {
            out.push_back(raw[i++]);
            continue;
        }
        if (isValidUtf8(bytes))
            out += bytes;
        else
            out.append(raw.substr(i, j - i));
        i = j;
    }
    return out;
}

std::optional<std::string> firstQueryParam(std::string_view query, std::string_view name) {
    size_t i = 0;
    while (i <= query.size()) {
        size_t amp = query.find('&', i);
        if (amp == std::string_view::npos) amp = query.size();
        std::string_view pair = query.substr(i, amp - i);
        size_t eq = pair.find('=');
        std::string key = formDecode(pair.substr(0, eq));
        if (!pair.empty() && key == name)
            return eq == std::string_view::npos ? std::string() : formDecode(pair.substr(eq + 1));
        i = amp + 1;
    }
    return std::nullopt;
}

bool parseExcludes(const std::optional<std::string>& value, std::vector<std::string>& out) {
    out.clear();
    if (!value) return true;
    size_t i = 0;
    const std::string& v = *value;
    while (i <= v.size()) {
        size_t c = v.find(',', i);
        if (c == std::string::npos) c = v.size();
        std::string item = v.substr(i, c - i);
        if (!item.empty()) {
            if (item.find("..") != std::string::npos) return false;
            out.push_back(std::move(item));
        }
        i = c + 1;
    }
    return true;
}

std::string sessionDeletedJson(std::string_view sessionId, std::string_view timestamp) {
    nlohmann::ordered_json j;
    j["success"] = true;
    j["sessionId"] = std::string(sessionId);
    j["timestamp"] = std::string(timestamp);
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool isExposablePort(long long port) {
    return port >= 1024 && port <= 65535 && port != 3000;
}

bool isValidPortToken(std::string_view token) {
    if (token.empty() || token.size() > 16) return false;
    for (char c : token)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
}

bool isValidTunnelName(std::string_view name) {
    if (name.empty() || name.size() > 63 || name.front() == '-' || name.back() == '-') return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    return true;
}

}  // namespace sandbox::core::wire
