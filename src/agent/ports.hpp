#pragma once
// Port readiness (the service behind POST /api/port-watch; docs/processes.md): one probe of a
// port on the sandbox's loopback interface, by TCP connect or by an HTTP GET whose status must
// fall in a range.
#include <optional>

#include "agent/base.hpp"
#include "core/wire_process.hpp"

namespace sandbox::agent {

/// Probes `request.port` once, within 5 seconds: connects to 127.0.0.1, then ::1; in "http"
/// mode also sends `GET request.path` and reads the response head. Returns the HTTP status (0
/// in "tcp" mode) when the port is ready, nullopt when not (yet).
awaitable<std::optional<int>> probePort(const core::wire::PortWatchRequest& request);

}  // namespace sandbox::agent
