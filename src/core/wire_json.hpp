#pragma once
// Lenient readers and small writers shared by the wire message definitions (wire*.cpp): a
// response field of the wrong type reads as absent, never an exception. (Requests are read
// strictly with core::Fields.) Internal to src/core.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/utf8.hpp"

namespace sandbox::core::wire::json_io {

/// Sets `key` when `v` holds a value.
inline void putOpt(nlohmann::json& j, const char* key, const std::optional<std::string>& v) {
    if (v) j[key] = *v;
}

/// The string at `key`, "" when absent or not a string.
inline std::string str(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

/// The string at `key`, nullopt when absent or not a string.
inline std::optional<std::string> optStr(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    if (it != j.end() && it->is_string()) return it->get<std::string>();
    return std::nullopt;
}

/// The number `v` as the integer type T (a fraction cut off), nullopt when it is not a number
/// or T cannot hold it: converting an out-of-range (or NaN) double, or a negative number to an
/// unsigned type, is undefined behaviour, and a response is whatever the peer sent.
template <class T>
std::optional<T> integerOf(const nlohmann::json& v) {
    static_assert(std::is_integral_v<T>);
    using Limits = std::numeric_limits<T>;
    if (v.is_number_unsigned()) {
        const auto u = v.get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(Limits::max())) return std::nullopt;
        return static_cast<T>(u);
    }
    if (v.is_number_integer()) {
        const auto i = v.get<std::int64_t>();
        if constexpr (std::is_signed_v<T>) {
            if (i < static_cast<std::int64_t>(Limits::min()) ||
                i > static_cast<std::int64_t>(Limits::max()))
                return std::nullopt;
        } else {
            if (i < 0 || static_cast<std::uint64_t>(i) > Limits::max()) return std::nullopt;
        }
        return static_cast<T>(i);
    }
    if (v.is_number_float()) {
        const double d = v.get<double>();
        const double end = std::ldexp(1.0, Limits::digits);  // 2^digits: the first too large
        const bool fits = std::is_signed_v<T> ? d >= -end && d < end : d > -1.0 && d < end;
        if (!fits) return std::nullopt;  // also NaN
        return static_cast<T>(d);
    }
    return std::nullopt;
}

/// The number at `key` as T, `fallback` when absent, not a number or out of T's range.
template <class T>
T num(const nlohmann::json& j, const char* key, T fallback) {
    auto it = j.find(key);
    if (it == j.end()) return fallback;
    return integerOf<T>(*it).value_or(fallback);
}

/// The number at `key`, nullopt when absent, not a number or not an int64.
inline std::optional<std::int64_t> optNum(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end()) return std::nullopt;
    return integerOf<std::int64_t>(*it);
}

/// The non-negative integer at `key` (a negative one is 0), 0 when absent.
inline std::uint64_t unum(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer()) return 0;
    return it->is_number_unsigned()
               ? it->get<std::uint64_t>()
               : static_cast<std::uint64_t>(std::max<std::int64_t>(0, it->get<std::int64_t>()));
}

/// The boolean at `key`, `fallback` when absent or not a boolean.
inline bool boolean(const nlohmann::json& j, const char* key, bool fallback = false) {
    auto it = j.find(key);
    return it != j.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

/// `{"type":"<type>"` as the head of a single-line event (the caller appends fields and `}`).
inline std::string eventHead(std::string_view type) {
    std::string s;
    s.reserve(96);
    s.append("{\"type\":\"").append(type).append("\"");
    return s;
}

/// Appends `,"key":"value"` (value escaped as a JSON string).
inline void appendField(std::string& s, std::string_view key, std::string_view value) {
    s.append(",\"").append(key).append("\":");
    appendJsonString(s, value);
}

/// `{"type":"error","error":"<message>"}`: the error event of the line-oriented streams.
inline std::string errorEvent(std::string_view message) {
    auto s = eventHead("error");
    appendField(s, "error", message);
    s.push_back('}');
    return s;
}

}  // namespace sandbox::core::wire::json_io
