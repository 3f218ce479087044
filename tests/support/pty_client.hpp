#pragma once
// A test client for the PTY WebSocket (agent /ws/pty, sandboxd /v1/sandbox/:id/pty): collects
// output bytes and control frames, and waits on conditions with a deadline.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/ws_client.hpp"
#include "core/wire_ws.hpp"

namespace sandbox::testing {

struct PtyClient {
    std::unique_ptr<client::WebSocketClient> ws;
    std::string output;       ///< every binary frame so far
    std::string beforeReady;  ///< binary frames received before `ready`
    bool ready = false, closed = false;
    std::optional<int> exitCode;
    std::vector<std::string> errors;  ///< messages of error frames
    std::vector<std::string> order;   ///< "binary", "ready", "exit", "error" in arrival order

    PtyClient(const client::Endpoint& ep, const std::string& target,
              const client::HeaderList& headers = {})
        : ws(std::make_unique<client::WebSocketClient>(ep, target, headers)) {}

    /// Handles frames until `pred()` holds, the connection closes, or `timeout` passes.
    bool until(const std::function<bool()>& pred,
               std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!pred()) {
            if (closed) return false;
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            client::WsMessage m;
            auto r = ws->read(m, left);
            if (r == client::WebSocketClient::ReadResult::Timeout) return pred();
            if (r == client::WebSocketClient::ReadResult::Closed) {
                closed = true;
                return pred();
            }
            if (m.binary) {
                output += m.data;
                if (!ready) beforeReady += m.data;
                if (order.empty() || order.back() != "binary") order.push_back("binary");
                continue;
            }
            auto ctl = core::wire::parsePtyMessage(m.data);
            if (!ctl) continue;
            order.push_back(ctl->type);
            if (ctl->type == "ready") ready = true;
            if (ctl->type == "exit") exitCode = ctl->code;
            if (ctl->type == "error") errors.push_back(ctl->message.value_or(""));
        }
        return true;
    }
    bool waitReady() {
        return until([&] { return ready; });
    }
    bool waitOutput(const std::string& needle,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
        return until([&] { return output.find(needle) != std::string::npos; }, timeout);
    }
    bool waitClosed() {
        return until([&] { return closed; });
    }
    void send(const std::string& bytes) { ws->sendBinary(bytes); }
    void resize(int cols, int rows) { ws->sendText(core::wire::ptyResize(cols, rows)); }
};

}  // namespace sandbox::testing
