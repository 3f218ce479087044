#include "server/router.hpp"

#include <algorithm>
#include <optional>
#include <stdexcept>

namespace sandbox::server {

namespace {

// One segment of a request path and where it starts in the path.
struct PathSegment {
    std::string_view text;
    std::size_t offset;
};

// "/a/b/" -> {"a", "b", ""}; nothing when the path does not start with '/'.
std::vector<PathSegment> splitPath(std::string_view path) {
    std::vector<PathSegment> out;
    if (path.empty() || path[0] != '/') return out;
    std::size_t start = 1;
    for (;;) {
        std::size_t slash = path.find('/', start);
        if (slash == std::string_view::npos) {
            out.push_back({path.substr(start), start});
            return out;
        }
        out.push_back({path.substr(start, slash - start), start});
        start = slash + 1;
    }
}

bool validName(std::string_view name) {
    if (name.empty()) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_';
    });
}

[[noreturn]] void badPattern(std::string_view pattern, std::string_view why) {
    throw std::invalid_argument("route pattern '" + std::string(pattern) +
                                "': " + std::string(why));
}

}  // namespace

const std::string& RouteParams::operator[](std::string_view name) const {
    static const std::string kNone;
    for (const auto& [k, v] : values_)
        if (k == name) return v;
    return kNone;
}

void RouteParams::set(std::string name, std::string value) {
    for (auto& [k, v] : values_)
        if (k == name) {
            v = std::move(value);
            return;
        }
    values_.emplace_back(std::move(name), std::move(value));
}

bool RouteTable::Route::allows(std::string_view method) const {
    return methods.empty() || std::find(methods.begin(), methods.end(), method) != methods.end();
}

std::size_t RouteTable::add(std::string_view methods, std::string_view pattern) {
    Route route;
    if (methods != "*") {
        std::size_t start = 0;
        for (;;) {
            std::size_t comma = methods.find(',', start);
            std::string_view m = methods.substr(start, comma - start);
            if (m.empty())
                throw std::invalid_argument("route methods '" + std::string(methods) +
                                            "': an empty method");
            route.methods.emplace_back(m);
            if (comma == std::string_view::npos) break;
            start = comma + 1;
        }
    }
    if (pattern.empty() || pattern[0] != '/') badPattern(pattern, "must start with '/'");
    for (const PathSegment& s : splitPath(pattern)) {
        if (!route.segments.empty() && route.segments.back().kind == Segment::Tail)
            badPattern(pattern, "a tail parameter must be the last segment");
        std::string_view t = s.text;
        if (t.find_first_of("{}") == std::string_view::npos) {
            route.segments.push_back({Segment::Literal, std::string(t)});
            route.shape.append("/").append(t);
            continue;
        }
        if (t.size() < 2 || t.front() != '{' || t.back() != '}')
            badPattern(pattern, "a parameter must be a whole segment");
        std::string_view name = t.substr(1, t.size() - 2);
        Segment::Kind kind = Segment::Param;
        if (!name.empty() && name.back() == '*') {
            kind = Segment::Tail;
            name.remove_suffix(1);
        }
        if (!validName(name)) badPattern(pattern, "a parameter needs a name of [A-Za-z0-9_]");
        for (const Segment& earlier : route.segments)
            if (earlier.kind != Segment::Literal && earlier.text == name)
                badPattern(pattern, "parameter '" + std::string(name) + "' appears twice");
        route.segments.push_back({kind, std::string(name)});
        route.shape += kind == Segment::Tail ? "/{*}" : "/{}";
    }
    for (const Route& earlier : routes_) {
        if (earlier.shape != route.shape) continue;
        bool overlap = earlier.methods.empty() || route.methods.empty();
        for (const std::string& m : route.methods) overlap = overlap || earlier.allows(m);
        if (overlap)
            badPattern(pattern, "an earlier route already answers one of '" + std::string(methods) +
                                    "' on it");
    }
    routes_.push_back(std::move(route));
    return routes_.size() - 1;
}

RouteTable::Match RouteTable::match(std::string_view method, std::string_view path) const {
    Match out;
    const std::vector<PathSegment> segs = splitPath(path);
    if (segs.empty()) return out;
    // A route's rank: per segment 0 literal, 1 parameter, 2 tail; the lowest wins.
    std::vector<int> bestRank, rank;
    std::vector<std::size_t> matched;  // the routes whose pattern matches the path
    std::optional<std::size_t> best;
    for (std::size_t r = 0; r < routes_.size(); ++r) {
        const Route& route = routes_[r];
        rank.clear();
        bool ok = true;
        for (std::size_t i = 0; ok && i < route.segments.size(); ++i) {
            const Segment& seg = route.segments[i];
            if (i >= segs.size())
                ok = false;
            else if (seg.kind == Segment::Literal)
                ok = segs[i].text == seg.text;
            else if (seg.kind == Segment::Param)
                ok = !segs[i].text.empty();
            rank.push_back(seg.kind == Segment::Literal ? 0 : seg.kind == Segment::Param ? 1 : 2);
        }
        const bool tail = !route.segments.empty() && route.segments.back().kind == Segment::Tail;
        if (!ok || (!tail && segs.size() != route.segments.size())) continue;
        matched.push_back(r);
        if (route.allows(method) && (!best || rank < bestRank)) {
            best = r;
            bestRank = rank;
        }
    }
    if (best) {
        out.outcome = RouteOutcome::Found;
        out.index = *best;
        const Route& route = routes_[*best];
        for (std::size_t i = 0; i < route.segments.size(); ++i) {
            const Segment& seg = route.segments[i];
            if (seg.kind == Segment::Param)
                out.params.set(seg.text, std::string(segs[i].text));
            else if (seg.kind == Segment::Tail)
                out.params.set(seg.text, std::string(path.substr(segs[i].offset)));
        }
        return out;
    }
    if (matched.empty()) return out;
    out.outcome = RouteOutcome::MethodNotAllowed;
    for (std::size_t r : matched)
        out.allowed.insert(out.allowed.end(), routes_[r].methods.begin(), routes_[r].methods.end());
    std::sort(out.allowed.begin(), out.allowed.end());
    out.allowed.erase(std::unique(out.allowed.begin(), out.allowed.end()), out.allowed.end());
    return out;
}

}  // namespace sandbox::server
