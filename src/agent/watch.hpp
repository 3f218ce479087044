#pragma once
// POST /api/watch (SSE) and POST /api/watch/check (container-api §3.9), on inotify directly.
//
// One Watch per distinct request (path, recursive, include, exclude, events) is shared by every
// stream that asks for it. A recursive watch adds an inotify watch to each directory, including
// the ones created later; a new directory is scanned right after its watch is added, so files
// created in it before that moment are reported as `create` too. The watch keeps a snapshot of
// the tree (path -> type, size, mtime); when the kernel's event queue overflows (IN_Q_OVERFLOW)
// the tree is rescanned and the differences are reported as create/delete/modify events, so a
// subscriber's view of the final state stays right (the stream also carries an SSE comment
// saying a rescan happened). Events go to each subscriber in at most one batch per 75 ms (the first
// event after a quiet time at once); consecutive
// duplicates of one path collapse, nothing is dropped.
#include "agent/agent.hpp"
#include "server/http_server.hpp"

namespace sandbox::agent {

/// POST /api/watch: `watching`, then `event`s, then `stopped` or `error`.
awaitable<void> watchRoute(Agent& agent, server::Request& req, server::Responder& res);
/// POST /api/watch/check: the version-token result (unchanged / changed / resync).
awaitable<void> watchCheckRoute(Agent& agent, server::Request& req, server::Responder& res);

}  // namespace sandbox::agent
