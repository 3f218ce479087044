#pragma once
// The bridge API's own messages beyond exec and files: the warm
// pool's configuration and stats, mount/unmount bodies with their exact check order, the
// persist `excludes` list and the session results. One definition each, shared by sandboxd and
// its tests.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sandbox::core::wire {

/// The largest tar body /hydrate accepts (exactly this many bytes is fine).
inline constexpr std::uint64_t kMaxHydrateBytes = 32ull * 1024 * 1024;

/// JavaScript parseInt(s, 10): leading white space, an optional sign, then as many decimal
/// digits as there are ("12abc" is 12). nullopt when there is no digit (NaN).
std::optional<std::int64_t> parseJsInt(std::string_view s);

/// Warm-pool configuration, read from WARM_POOL_TARGET, WARM_POOL_REFRESH_INTERVAL,
/// WARM_POOL_MAX_INSTANCES and WARM_POOL_SCALE_BATCH_SIZE.
struct PoolConfig {
    std::int64_t warmTarget = 0;
    std::int64_t refreshInterval = 10000;  ///< ms
    std::int64_t maxInstances = 0;         ///< 0: no declared ceiling
    std::int64_t scaleBatchSize = 5;       ///< clamped to [1, 20]
    /// Parses the variables as the reference does: parseInt, NaN or 0 -> the default, negative
    /// values pass through (the batch size is clamped). `getenv` returns null when unset.
    static PoolConfig fromEnv(const std::function<const char*(const char*)>& getenv);
};

/// GET /v1/pool/stats: five keys, `config` with four.
struct PoolStats {
    std::int64_t warm = 0;
    std::int64_t assigned = 0;
    std::int64_t total = 0;
    PoolConfig config;
    std::optional<std::int64_t> maxInstances;  ///< the known ceiling, or null
    /// Compact JSON in the reference's key order.
    std::string toJson() const;
};

/// POST /v1/sandbox/:id/mount body, validated in the reference's order.
struct MountRequest {
    std::string bucket;     ///< the bucket (remote mount) or the binding name (R2 binding)
    std::string mountPath;  ///< as given (absolute)
    bool remote = false;    ///< options.endpoint given
    std::optional<std::string> endpoint;
    std::optional<bool> readOnly;
    std::optional<std::string> prefix;
    std::optional<std::pair<std::string, std::string>> credentials;  ///< accessKeyId, secret
    std::optional<bool> credentialProxy;
    std::optional<std::vector<std::string>> s3fsOptions;
    /// `body` is any parsed JSON value except null (the caller answers 500 for null, as the
    /// reference does). Returns the 400 message of the first failed check, or "" when valid.
    static std::string parse(const nlohmann::json& body, MountRequest& out);
    /// The options forwarded for this kind of mount, in the reference's key order (for logs
    /// and tests: unknown keys and, for binding mounts, credentials are dropped).
    nlohmann::ordered_json forwardedOptions() const;
};

/// POST /v1/sandbox/:id/unmount body.
struct UnmountRequest {
    std::string mountPath;  ///< normalised
    /// Returns the 400 message of the first failed check, or "" when valid.
    static std::string parse(const nlohmann::json& body, UnmountRequest& out);
};

/// The pathname of a WHATWG `file:` URL made from `path` resolved against `file:///`: `.` and
/// `..` resolved, `\` as `/`, TAB/CR/LF removed, `?`/`#` and what follows dropped, spaces and
/// other characters outside the path set percent-encoded, a trailing `/` kept.
std::string fileUrlPathname(std::string_view path);

/// application/x-www-form-urlencoded decoding of one query value: `+` is a space, then
/// percent-decoding; runs of escapes that are not valid UTF-8 stay verbatim.
std::string formDecode(std::string_view s);
/// The first value of query parameter `name` in a raw query string, form-decoded.
std::optional<std::string> firstQueryParam(std::string_view query, std::string_view name);

/// /persist `excludes`: split on ',' (after decoding), empty items dropped. Returns
/// false when an item contains "..".
bool parseExcludes(const std::optional<std::string>& value, std::vector<std::string>& out);

/// DELETE /v1/sandbox/:id/session/:sid success body: {"success":true,"sessionId":..,"timestamp":..}
/// Ports and tokens as the reference checks them (preview URLs, tunnels): a port 1024-65535 other
/// than 3000; a preview token 1-16 of [a-z0-9_]; a tunnel name one DNS label (1-63 of
/// [a-z0-9-], no leading or trailing '-'). Shared by the SDK's checks and sandboxd's.
bool isExposablePort(long long port);
bool isValidPortToken(std::string_view token);
bool isValidTunnelName(std::string_view name);

std::string sessionDeletedJson(std::string_view sessionId, std::string_view timestamp);

}  // namespace sandbox::core::wire
