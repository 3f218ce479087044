#pragma once
// A route table: method + path pattern -> handler. sandbox-agent and sandboxd each declare their
// whole API in one table of these (src/agent/routes.cpp, src/daemon/bridge_routes.cpp) and
// answer a miss in their own style. No Boost here: the table is plain data, unit-tested alone.
//
// A pattern is an absolute path of segments, each one of:
//   - a literal, matched exactly ("api", "ping");
//   - a parameter "{name}": any one non-empty segment;
//   - last only, a tail "{name*}": the rest of the path after the preceding '/', slashes
//     included, possibly empty ("/file/{path*}" matches "/file/" and "/file/a/b", not "/file").
// Matching is on the path as given: case-sensitive, strict about trailing slashes ("/a/" is not
// "/a"), no percent-decoding ("%2F" stays inside its segment, "%61" is not "a"). A server that
// routes on a decoded path decodes before matching (sandboxd does, for a sandbox's routes).
// When several patterns match a path, the most specific wins, segment by segment from the left:
// a literal over a parameter over a tail; only routes allowing the request's method compete.
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sandbox::server {

/// The parameters a matched pattern captured, in pattern order (raw, not percent-decoded).
class RouteParams {
  public:
    /// The value of parameter `name`; "" when the pattern has none of that name.
    const std::string& operator[](std::string_view name) const;
    /// Adds or replaces a value (a server may add what an outer match captured).
    void set(std::string name, std::string value);
    std::size_t size() const noexcept { return values_.size(); }
    const std::vector<std::pair<std::string, std::string>>& all() const noexcept { return values_; }

  private:
    std::vector<std::pair<std::string, std::string>> values_;
};

/// How a request met the table.
enum class RouteOutcome {
    Found,             ///< a route matched the path and allows the method
    NotFound,          ///< no route matches the path
    MethodNotAllowed,  ///< routes match the path, none allows the method (`allowed` lists theirs)
};

/// The table without handlers: routes are numbered in the order they were added.
class RouteTable {
  public:
    struct Match {
        RouteOutcome outcome = RouteOutcome::NotFound;
        std::size_t index = 0;             ///< the route's number, when Found
        RouteParams params;                ///< when Found
        std::vector<std::string> allowed;  ///< when MethodNotAllowed: sorted, no duplicates
    };

    /// Adds a route and returns its number. `methods`: "GET", several "GET,HEAD", or "*" (any
    /// method). Throws std::invalid_argument for a malformed pattern ("{" unclosed, a tail not
    /// last, an empty or repeated parameter name, no leading '/') or when an earlier route
    /// already answers one of these methods on the same pattern.
    std::size_t add(std::string_view methods, std::string_view pattern);

    /// The route for `method` and `path` (the path without its query string).
    Match match(std::string_view method, std::string_view path) const;

    std::size_t size() const noexcept { return routes_.size(); }

  private:
    struct Segment {
        enum Kind { Literal, Param, Tail } kind;
        std::string text;  ///< the literal, or the parameter's name
    };
    struct Route {
        std::vector<std::string> methods;  ///< empty: any method
        std::vector<Segment> segments;
        std::string shape;  ///< the pattern with parameter names blanked (finds repeats)
        bool allows(std::string_view method) const;
    };
    std::vector<Route> routes_;
};

/// A RouteTable with a handler per route.
template <class Handler>
class Router {
  public:
    struct Match {
        RouteOutcome outcome = RouteOutcome::NotFound;
        const Handler* handler = nullptr;  ///< when Found
        RouteParams params;
        std::vector<std::string> allowed;  ///< when MethodNotAllowed
    };

    /// See RouteTable::add.
    Router& add(std::string_view methods, std::string_view pattern, Handler handler) {
        table_.add(methods, pattern);
        handlers_.push_back(std::move(handler));
        return *this;
    }

    Match match(std::string_view method, std::string_view path) const {
        RouteTable::Match m = table_.match(method, path);
        Match out;
        out.outcome = m.outcome;
        if (m.outcome == RouteOutcome::Found) out.handler = &handlers_[m.index];
        out.params = std::move(m.params);
        out.allowed = std::move(m.allowed);
        return out;
    }

    std::size_t size() const noexcept { return handlers_.size(); }

  private:
    RouteTable table_;
    std::vector<Handler> handlers_;
};

}  // namespace sandbox::server
