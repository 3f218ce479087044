#pragma once
// File operations of the container API on absolute, already-resolved paths. Every failure is
// a core::ApiError with the container code for its errno (FILE_NOT_FOUND, PERMISSION_DENIED,
// IS_DIRECTORY, NO_SPACE, ...). Done with system calls, not shell commands.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/wire.hpp"

namespace sandbox::agent::files {

/// MIME type: extension table first, libmagic for unknown extensions.
std::string detectMimeType(const std::string& path);

/// POST /api/read. `displayPath` is echoed in the response and messages.
core::wire::ReadResponse read(const std::string& path, const std::string& displayPath,
                              core::wire::ReadEncoding encoding);

/// POST /api/read/stream: opens and classifies; then chunks are pulled with next().
class ReadStream {
  public:
    ReadStream(const std::string& path, const std::string& displayPath);  // throws ApiError
    ~ReadStream();
    const std::string& mimeType() const { return mime_; }
    bool isBinary() const { return binary_; }
    std::uint64_t size() const { return size_; }
    /// Next chunk, already encoded (base64 or UTF-8); false at the end.
    bool next(std::string& encoded);
    std::uint64_t bytesRead() const { return bytesRead_; }

  private:
    int fd_ = -1;
    std::string mime_;
    bool binary_ = false;
    std::uint64_t size_ = 0, bytesRead_ = 0;
    std::string pendingUtf8_;
    bool eof_ = false;
};

/// POST /api/write: creates parent directories, truncates, keeps an existing file's mode.
void write(const std::string& path, const std::string& displayPath, std::string_view bytes);
/// POST /api/delete (files and symlinks only).
void remove(const std::string& path, const std::string& displayPath);
/// POST /api/rename and /api/move (a destination directory receives the source inside it).
void move(const std::string& from, const std::string& to, const std::string& displayFrom,
          const std::string& operation);
/// POST /api/mkdir
void mkdir(const std::string& path, const std::string& displayPath, bool recursive);
/// POST /api/list-files
std::vector<core::wire::FileInfo> list(const std::string& path, const std::string& displayPath,
                                       bool recursive, bool includeHidden);
/// POST /api/exists (follows symlinks, as `test -e`).
bool exists(const std::string& path);

}  // namespace sandbox::agent::files
