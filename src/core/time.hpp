#pragma once
#include <chrono>
#include <string>

namespace sandbox::core {

/// ISO-8601 UTC with milliseconds, as JavaScript's Date.toISOString(): "2026-11-22T03:35:05.187Z".
std::string isoTimestamp(std::chrono::system_clock::time_point t);
/// isoTimestamp(system_clock::now()).
std::string isoTimestampNow();
/// Milliseconds since the Unix epoch.
long long epochMillisNow();

}  // namespace sandbox::core
