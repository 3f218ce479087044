#pragma once
// Lenient readers and small writers shared by the wire message definitions (wire*.cpp): a
// response field of the wrong type reads as absent, never an exception. (Requests are read
// strictly with core::Fields.) Internal to src/core.
#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

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

/// The number at `key` as T, `fallback` when absent or not a number.
template <class T>
T num(const nlohmann::json& j, const char* key, T fallback) {
    auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<T>() : fallback;
}

/// The number at `key`, nullopt when absent or not a number.
inline std::optional<std::int64_t> optNum(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    if (it != j.end() && it->is_number()) return it->get<std::int64_t>();
    return std::nullopt;
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
