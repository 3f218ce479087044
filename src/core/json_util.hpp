#pragma once
// Strict readers for request bodies: a wrong type is a 400 VALIDATION_FAILED naming the field,
// never a silent default or a 500.
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandbox::core {

/// Parses any JSON document with simdjson (GB/s, also for multi-megabyte strings such as
/// base64 file contents) into an nlohmann::json value. Returns a discarded value
/// (is_discarded()) when the text is not valid JSON, or nests deeper than 1024 levels
/// (nlohmann copies and serialises recursively: a deeper value could exhaust the stack).
nlohmann::json parseJson(std::string_view text);

/// Parses a request body that must be a JSON object. Throws ApiError 400 VALIDATION_FAILED
/// ("Invalid JSON in request body: ...") for malformed JSON or a non-object. An empty body is
/// an empty object when `emptyIsObject`, else an error.
nlohmann::json parseJsonObject(std::string_view body, bool emptyIsObject = false);

/// Field accessors over a JSON object. `null` counts as absent everywhere.
class Fields {
  public:
    explicit Fields(const nlohmann::json& obj) : obj_(obj) {}

    std::optional<std::string> optString(std::string_view key) const;
    std::string reqString(std::string_view key) const;
    std::optional<bool> optBool(std::string_view key) const;
    /// An integer (a JSON number with no fractional part) within [min, max].
    std::optional<std::int64_t> optInt(std::string_view key, std::int64_t min = INT64_MIN,
                                       std::int64_t max = INT64_MAX) const;
    /// An object of string values; null values are kept as std::nullopt ("unset").
    std::map<std::string, std::optional<std::string>> optStringMap(std::string_view key) const;
    std::optional<std::vector<std::string>> optStringArray(std::string_view key) const;
    const nlohmann::json* optObject(std::string_view key) const;
    bool has(std::string_view key) const;

  private:
    const nlohmann::json* get(std::string_view key) const;
    [[noreturn]] void typeError(std::string_view key, std::string_view expected) const;
    const nlohmann::json& obj_;
};

}  // namespace sandbox::core
