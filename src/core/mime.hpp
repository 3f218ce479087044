#pragma once
// File-content classification of the container API.
#include <string>
#include <string_view>

namespace sandbox::core {

/// MIME type from the file name's extension (case-insensitive), or "application/octet-stream"
/// when the extension is unknown or absent. Callers then ask libmagic for those.
std::string mimeTypeForPath(std::string_view path);

/// True when content of this MIME type is returned as UTF-8 text rather than base64:
/// text/*, the listed application/* script/data types, inode/x-empty, and +json / +xml types.
bool isTextMimeType(std::string_view mime);

}  // namespace sandbox::core
