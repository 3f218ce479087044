#pragma once
// Tar archives for the persist/hydrate tests, made and read with libarchive in the test itself
// (hostile ones included: absolute names, `..`, links out, device nodes, huge sparse members),
// and SHA-256 with OpenSSL.
#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <sys/sysmacros.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sandbox::testing::daemon {

/// One member of a test archive.
struct TarMember {
    std::string name;
    std::string data;          ///< regular files
    unsigned type = AE_IFREG;  ///< AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR, AE_IFIFO, ...
    std::string link;          ///< symlink target
    std::string hardlink;      ///< hard-link target (type ignored)
    std::int64_t size = -1;    ///< declared size (default: data.size())
    unsigned perm = 0644;
    std::vector<std::pair<std::int64_t, std::int64_t>> sparse;  ///< offset, length
};

inline la_ssize_t tarAppend(archive*, void* out, const void* buf, size_t n) {
    static_cast<std::string*>(out)->append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
}

/// A pax tar of `members` (gzip-compressed when `gzip`).
inline std::string makeTar(const std::vector<TarMember>& members, bool gzip = false) {
    std::string out;
    archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (gzip) archive_write_add_filter_gzip(a);
    archive_write_open(a, &out, nullptr, &tarAppend, nullptr);
    for (const auto& m : members) {
        archive_entry* e = archive_entry_new();
        archive_entry_set_pathname(e, m.name.c_str());
        archive_entry_set_perm(e, m.perm);
        archive_entry_set_mtime(e, 1700000000, 0);
        if (!m.hardlink.empty()) {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, m.hardlink.c_str());
            archive_entry_set_size(e, 0);
        } else {
            archive_entry_set_filetype(e, m.type);
            if (m.type == AE_IFLNK) archive_entry_set_symlink(e, m.link.c_str());
            if (m.type == AE_IFCHR || m.type == AE_IFBLK) archive_entry_set_rdev(e, makedev(1, 3));
            archive_entry_set_size(
                e, m.type == AE_IFREG ? (m.size >= 0 ? m.size : std::int64_t(m.data.size())) : 0);
            for (auto [off, len] : m.sparse) archive_entry_sparse_add_entry(e, off, len);
        }
        archive_write_header(a, e);
        if (m.type == AE_IFREG && !m.data.empty() && m.hardlink.empty())
            archive_write_data(a, m.data.data(), m.data.size());
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    return out;
}

/// A member read back from an archive.
struct ReadMember {
    unsigned type = 0;
    std::string data;
    std::string link;
};

/// The members of a tar by name; nullopt when it is not a complete, valid archive.
inline std::optional<std::map<std::string, ReadMember>> readTar(const std::string& tar) {
    archive* a = archive_read_new();
    archive_read_support_format_tar(a);
    archive_read_support_filter_all(a);
    std::map<std::string, ReadMember> out;
    bool ok = archive_read_open_memory(a, tar.data(), tar.size()) == ARCHIVE_OK;
    archive_entry* e;
    while (ok) {
        int rc = archive_read_next_header(a, &e);
        if (rc == ARCHIVE_EOF) break;
        if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {  // WARN: a name this locale cannot show
            ok = false;
            break;
        }
        ReadMember m;
        m.type = archive_entry_filetype(e);
        if (const char* l = archive_entry_symlink(e)) m.link = l;
        char buf[65536];
        la_ssize_t n;
        while ((n = archive_read_data(a, buf, sizeof buf)) > 0)
            m.data.append(buf, static_cast<size_t>(n));
        if (n < 0) ok = false;
        const char* name = archive_entry_pathname_utf8(e);
        if (!name) name = archive_entry_pathname(e);
        out[name ? name : ""] = std::move(m);
    }
    archive_read_free(a);
    if (!ok) return std::nullopt;
    return out;
}

inline std::string sha256Hex(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
    static const char* hex = "0123456789abcdef";
    std::string s;
    for (unsigned i = 0; i < len; ++i) {
        s += hex[md[i] >> 4];
        s += hex[md[i] & 15];
    }
    return s;
}

}  // namespace sandbox::testing::daemon
