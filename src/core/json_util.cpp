#include "core/json_util.hpp"

#include <simdjson.h>

#include <cmath>

#include "core/errors.hpp"

namespace sandbox::core {

namespace {

nlohmann::json fromSimd(simdjson::dom::element e) {
    using T = simdjson::dom::element_type;
    switch (e.type()) {
        case T::OBJECT: {
            nlohmann::json o = nlohmann::json::object();
            for (auto field : simdjson::dom::object(e))
                o[std::string(field.key)] = fromSimd(field.value);
            return o;
        }
        case T::ARRAY: {
            nlohmann::json a = nlohmann::json::array();
            for (auto v : simdjson::dom::array(e)) a.push_back(fromSimd(v));
            return a;
        }
        case T::STRING:
            return std::string(std::string_view(e));
        case T::INT64:
            return std::int64_t(e);
        case T::UINT64:
            return std::uint64_t(e);
        case T::DOUBLE:
            return double(e);
        case T::BOOL:
            return bool(e);
        case T::NULL_VALUE:
            return nullptr;
    }
    return nullptr;
}

}  // namespace

nlohmann::json parseJson(std::string_view text) {
    thread_local simdjson::dom::parser parser;
    simdjson::dom::element root;
    // simdjson needs SIMDJSON_PADDING readable bytes past the end: copy into a padded buffer.
    simdjson::padded_string padded(text);
    if (parser.parse(padded).get(root) != simdjson::SUCCESS)
        return nlohmann::json(nlohmann::json::value_t::discarded);
    return fromSimd(root);
}

nlohmann::json parseJsonObject(std::string_view body, bool emptyIsObject) {
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
        if (emptyIsObject) return nlohmann::json::object();
        throw validationError("Invalid JSON in request body: the body is empty", "body",
                              "INVALID_JSON", "Request body must be a JSON object");
    }
    nlohmann::json j = parseJson(body);
    if (j.is_discarded())
        throw validationError("Invalid JSON in request body: the body is not valid JSON", "body",
                              "INVALID_JSON", "Request body must be a JSON object");
    if (!j.is_object())
        throw validationError("Invalid JSON in request body: expected a JSON object", "body",
                              "INVALID_JSON", "Request body must be a JSON object");
    return j;
}

const nlohmann::json* Fields::get(std::string_view key) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
}

bool Fields::has(std::string_view key) const {
    return get(key) != nullptr;
}

void Fields::typeError(std::string_view key, std::string_view expected) const {
    std::string msg =
        "Invalid request: '" + std::string(key) + "' must be " + std::string(expected);
    throw validationError(msg, key, "INVALID_TYPE", "must be " + std::string(expected));
}

std::optional<std::string> Fields::optString(std::string_view key) const {
    const auto* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) typeError(key, "a string");
    return v->get<std::string>();
}

std::string Fields::reqString(std::string_view key) const {
    auto v = optString(key);
    if (!v) {
        std::string msg = "Invalid request: '" + std::string(key) + "' is required";
        throw validationError(msg, key, "REQUIRED", "is required");
    }
    return *v;
}

std::optional<bool> Fields::optBool(std::string_view key) const {
    const auto* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) typeError(key, "a boolean");
    return v->get<bool>();
}

std::optional<std::int64_t> Fields::optInt(std::string_view key, std::int64_t min,
                                           std::int64_t max) const {
    const auto* v = get(key);
    if (!v) return std::nullopt;
    std::int64_t value = 0;
    if (v->is_number_integer()) {
        if (v->is_number_unsigned() &&
            v->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
            typeError(key, "an integer in range");
        value = v->get<std::int64_t>();
    } else if (v->is_number_float()) {
        double d = v->get<double>();
        if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) > 9.0e15)
            typeError(key, "an integer");
        value = static_cast<std::int64_t>(d);
    } else {
        typeError(key, "an integer");
    }
    if (value < min || value > max)
        typeError(key, "an integer between " + std::to_string(min) + " and " + std::to_string(max));
    return value;
}

std::map<std::string, std::optional<std::string>> Fields::optStringMap(std::string_view key) const {
    std::map<std::string, std::optional<std::string>> out;
    const auto* v = get(key);
    if (!v) return out;
    if (!v->is_object()) typeError(key, "an object of strings");
    for (auto it = v->begin(); it != v->end(); ++it) {
        if (it->is_null())
            out.emplace(it.key(), std::nullopt);
        else if (it->is_string())
            out.emplace(it.key(), it->get<std::string>());
        else
            typeError(std::string(key) + "." + it.key(), "a string or null");
    }
    return out;
}

std::optional<std::vector<std::string>> Fields::optStringArray(std::string_view key) const {
    const auto* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_array()) typeError(key, "an array of strings");
    std::vector<std::string> out;
    for (const auto& e : *v) {
        if (!e.is_string()) typeError(key, "an array of strings");
        out.push_back(e.get<std::string>());
    }
    return out;
}

const nlohmann::json* Fields::optObject(std::string_view key) const {
    const auto* v = get(key);
    if (v && !v->is_object()) typeError(key, "an object");
    return v;
}

}  // namespace sandbox::core
