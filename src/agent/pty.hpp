#pragma once
// Terminals for the PTY WebSocket (GET /ws/pty; docs/pty.md): one shell on a real pseudo-terminal
// per session, created by the first connection with that session's environment and directory,
// shared by every connection to the session, kept when connections close, with the last
// 256 KiB of output replayed to each new connection. When the shell exits every connection
// gets {"type":"exit","code":N} and a 1000 close (the reference sends nothing).
#include <map>
#include <memory>
#include <string>

#include "agent/agent.hpp"
#include "server/http_server.hpp"

namespace sandbox::agent {

class Terminal;

class PtyHub : public std::enable_shared_from_this<PtyHub> {
  public:
    explicit PtyHub(Agent& agent);
    ~PtyHub();
    /// Serves GET /ws/pty (an upgrade request with a sessionId; the caller checked both).
    awaitable<void> serve(server::Request& req, server::Responder& res, std::string sessionId);
    /// Kills the terminal of a session (session deleted).
    void destroy(const std::string& sessionId);

  private:
    /// The live terminal of the session, creating it. Throws std::runtime_error.
    awaitable<std::shared_ptr<Terminal>> terminalFor(const std::string& sessionId, int cols,
                                                     int rows, const std::string& shell);
    Agent& agent_;
    std::map<std::string, std::shared_ptr<Terminal>> terminals_;
};

}  // namespace sandbox::agent
