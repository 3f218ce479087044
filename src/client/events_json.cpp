// The public stream events rendered as the container API renders them, through the one
// definition of each event in src/core, so that a relayed stream reads like the original.
#include <nlohmann/json.hpp>

#include "core/utf8.hpp"
#include "core/wire.hpp"
#include "core/wire_git_watch.hpp"
#include "core/wire_process.hpp"
#include "sandbox/git_watch.hpp"
#include "sandbox/process.hpp"
#include "sandbox/types.hpp"

namespace sandbox {
namespace wire = core::wire;

std::string to_string(const ExecEvent& e) {
    switch (e.type) {
        case ExecEvent::Type::Start:
            return wire::exec_event::start(core::sanitizeUtf8(e.command), e.timestamp);
        case ExecEvent::Type::Stdout:
        case ExecEvent::Type::Stderr:
            return wire::exec_event::output(e.type == ExecEvent::Type::Stdout ? "stdout" : "stderr",
                                            core::sanitizeUtf8(e.data), e.timestamp);
        case ExecEvent::Type::Complete:
            return wire::exec_event::complete(e.exitCode, e.timestamp);
        case ExecEvent::Type::Error:
            return wire::exec_event::error(core::sanitizeUtf8(e.data), e.timestamp);
    }
    return {};
}

void to_json(nlohmann::json& j, const ExecEvent& e) {
    j = nlohmann::json::parse(to_string(e));
}

std::string to_string(const LogEvent& e) {
    switch (e.type) {
        case LogEvent::Type::ProcessInfo:
            return wire::process_event::info(e.processId, core::sanitizeUtf8(e.command),
                                             to_string(e.status), e.timestamp);
        case LogEvent::Type::Stdout:
        case LogEvent::Type::Stderr:
            return wire::process_event::output(
                e.type == LogEvent::Type::Stdout ? "stdout" : "stderr", core::sanitizeUtf8(e.data),
                e.processId, e.timestamp);
        case LogEvent::Type::Dropped:
            return wire::process_event::dropped(e.stream, e.bytes, e.processId, e.timestamp);
        case LogEvent::Type::Exit:
            return wire::process_event::exit(e.processId, e.exitCode, to_string(e.status),
                                             e.timestamp);
    }
    return {};
}

void to_json(nlohmann::json& j, const LogEvent& e) {
    j = nlohmann::json::parse(to_string(e));
}

std::string to_string(const FileWatchEvent& e) {
    switch (e.type) {
        case FileWatchEvent::Type::Watching:
            return wire::watch_event::watching(core::sanitizeUtf8(e.path), e.watchId);
        case FileWatchEvent::Type::Event:
            return wire::watch_event::event(e.eventType, core::sanitizeUtf8(e.path), e.isDirectory,
                                            e.timestamp);
        case FileWatchEvent::Type::Stopped:
            return wire::watch_event::stopped(e.reason);
        case FileWatchEvent::Type::Error:
            return wire::watch_event::error(core::sanitizeUtf8(e.error));
    }
    return {};
}

void to_json(nlohmann::json& j, const FileWatchEvent& e) {
    j = nlohmann::json::parse(to_string(e));
}

}  // namespace sandbox
