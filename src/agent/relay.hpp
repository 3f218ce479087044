#pragma once
// The port relay (docs/ports.md): `CONNECT 127.0.0.1:PORT HTTP/1.1` on the agent's socket opens
// a TCP connection to PORT on the sandbox's own loopback interface and, after a `200`, copies
// bytes both ways for as long as both ends keep the connection. This is how sandboxd reaches a
// server inside a sandbox (preview URLs, tunnels) without entering its network namespace: the
// agent is already in it. Only loopback targets are taken: the relay is no general proxy.
// With `Sandbox-Relay: socket` on a unix socket, the 200 carries the connected TCP socket itself
// (SCM_RIGHTS, answered `Sandbox-Relay: socket`) and the agent steps out: the caller copies the
// bytes. Otherwise (a TCP client, or the descriptor could not be sent) the agent copies them.
#include "server/http_server.hpp"

namespace sandbox::agent {

/// The server hook (ServerOptions::hijack) that takes CONNECT requests; every other request
/// goes on to the routes.
std::function<server::RawHandler(const server::Request&)> connectRelay();

}  // namespace sandbox::agent
