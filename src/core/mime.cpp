#include "core/mime.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace sandbox::core {
namespace {

// Sorted by extension for binary search.
constexpr std::array<std::pair<std::string_view, std::string_view>, 118> kByExtension{{
    {"7z", "application/x-7z-compressed"},
    {"aac", "audio/aac"},
    {"avi", "video/x-msvideo"},
    {"avif", "image/avif"},
    {"bash", "application/x-sh"},
    {"bin", "application/octet-stream"},
    {"bmp", "image/bmp"},
    {"bz2", "application/x-bzip2"},
    {"c", "text/x-c"},
    {"cc", "text/x-c"},
    {"cfg", "text/plain"},
    {"cjs", "application/node"},
    {"conf", "text/plain"},
    {"cpp", "text/x-c"},
    {"cs", "text/plain"},
    {"css", "text/css"},
    {"csv", "text/csv"},
    {"cxx", "text/x-c"},
    {"dart", "text/plain"},
    {"deb", "application/x-debian-package"},
    {"diff", "text/x-diff"},
    {"doc", "application/msword"},
    {"dockerfile", "text/plain"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"env", "text/plain"},
    {"eot", "application/vnd.ms-fontobject"},
    {"epub", "application/epub+zip"},
    {"exe", "application/x-msdownload"},
    {"flac", "audio/flac"},
    {"gif", "image/gif"},
    {"go", "text/plain"},
    {"gz", "application/gzip"},
    {"h", "text/x-c"},
    {"hpp", "text/x-c"},
    {"htm", "text/html"},
    {"html", "text/html"},
    {"ico", "image/vnd.microsoft.icon"},
    {"ics", "text/calendar"},
    {"ini", "text/plain"},
    {"ipynb", "application/x-ipynb+json"},
    {"jar", "application/java-archive"},
    {"java", "text/x-java-source"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript"},
    {"json", "application/json"},
    {"jsonl", "application/jsonl"},
    {"jsx", "text/jsx"},
    {"kt", "text/plain"},
    {"less", "text/less"},
    {"log", "text/plain"},
    {"lua", "text/x-lua"},
    {"m4a", "audio/mp4"},
    {"map", "application/json"},
    {"md", "text/markdown"},
    {"mdx", "text/mdx"},
    {"mid", "audio/midi"},
    {"mjs", "text/javascript"},
    {"mkv", "video/x-matroska"},
    {"mov", "video/quicktime"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"mpeg", "video/mpeg"},
    {"mts", "text/typescript"},
    {"odt", "application/vnd.oasis.opendocument.text"},
    {"ogg", "audio/ogg"},
    {"otf", "font/otf"},
    {"patch", "text/x-diff"},
    {"pdf", "application/pdf"},
    {"php", "application/x-httpd-php"},
    {"pl", "text/x-perl"},
    {"png", "image/png"},
    {"ppt", "application/vnd.ms-powerpoint"},
    {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"proto", "text/plain"},
    {"ps1", "text/plain"},
    {"py", "text/x-python"},
    {"r", "text/plain"},
    {"rar", "application/vnd.rar"},
    {"rb", "text/x-ruby"},
    {"rs", "text/x-rust"},
    {"rst", "text/x-rst"},
    {"rtf", "application/rtf"},
    {"sass", "text/x-sass"},
    {"scss", "text/x-scss"},
    {"sh", "application/x-sh"},
    {"sql", "application/sql"},
    {"sqlite", "application/vnd.sqlite3"},
    {"svg", "image/svg+xml"},
    {"swift", "text/plain"},
    {"tar", "application/x-tar"},
    {"tgz", "application/gzip"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"toml", "application/toml"},
    {"ts", "text/typescript"},
    {"tsv", "text/tab-separated-values"},
    {"tsx", "text/tsx"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain"},
    {"vue", "text/plain"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xhtml", "application/xhtml+xml"},
    {"xls", "application/vnd.ms-excel"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"xml", "application/xml"},
    {"xz", "application/x-xz"},
    {"yaml", "application/yaml"},
    {"yml", "application/yaml"},
    {"zip", "application/zip"},
    {"zsh", "application/x-sh"},
    {"zst", "application/zstd"},
}};

static_assert(std::is_sorted(kByExtension.begin(), kByExtension.end(),
                             [](const auto& a, const auto& b) { return a.first < b.first; }));

constexpr std::array<std::string_view, 19> kTextApplicationTypes{
    "ecmascript",    "javascript",   "json",
    "json-seq",      "rtf",          "sql",
    "toml",          "typescript",   "x-empty",
    "x-httpd-php",   "x-javascript", "x-sh",
    "x-shellscript", "x-typescript", "x-yaml",
    "xml",           "xml-dtd",      "xml-external-parsed-entity",
    "yaml"};

}  // namespace

std::string mimeTypeForPath(std::string_view path) {
    auto slash = path.rfind('/');
    std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
    auto dot = base.rfind('.');
    if (dot == std::string_view::npos || dot + 1 == base.size()) return "application/octet-stream";
    std::string ext(base.substr(dot + 1));
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    auto it =
        std::lower_bound(kByExtension.begin(), kByExtension.end(), std::string_view(ext),
                         [](const auto& row, std::string_view key) { return row.first < key; });
    if (it != kByExtension.end() && it->first == ext) return std::string(it->second);
    return "application/octet-stream";
}

bool isTextMimeType(std::string_view mime) {
    if (auto semi = mime.find(';'); semi != std::string_view::npos) mime = mime.substr(0, semi);
    if (mime.starts_with("text/")) return true;
    if (mime == "inode/x-empty") return true;
    if (mime.ends_with("+json") || mime.ends_with("+xml")) return true;
    if (mime.starts_with("application/")) {
        auto sub = mime.substr(12);
        for (auto t : kTextApplicationTypes)
            if (sub == t) return true;
    }
    return false;
}

}  // namespace sandbox::core
