#pragma once
// The bridge OpenAPI document sandboxd serves (the reference's, embedded at build time, plus
// sandboxd's additions marked `x-sandboxd`) and its HTML rendering.
#include <string>

namespace sandbox::daemon {

/// GET /v1/openapi.json: compact JSON, the reference's key order, non-ASCII unescaped.
const std::string& openApiJson();
/// GET /v1/openapi and /v1/openapi.html: a self-contained page (`<!doctype html>`, inline CSS,
/// no script, nothing fetched).
const std::string& openApiHtml();

}  // namespace sandbox::daemon
