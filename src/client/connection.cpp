#include "client/connection.hpp"
#include "client/error_mapping.hpp"

#include <nlohmann/json.hpp>

#include "client/requester.hpp"
#include "sandbox/errors.hpp"

namespace sandbox::detail {

using nlohmann::json;

void SandboxInfo::updateEnv(const EnvVars& changes) {
    std::lock_guard lock(m_);
    for (const auto& [k, v] : changes) {
        if (v)
            env_[k] = v;
        else
            env_.erase(k);
    }
}

EnvVars SandboxInfo::withSandboxEnv(const EnvVars& perCall) const {
    EnvVars merged = env();
    for (const auto& [k, v] : perCall)
        if (v) merged[k] = v;
    return merged;
}

void Connection::unsupported(const char* method, const std::string& why) const {
    throw UnsupportedOperationError("UNSUPPORTED_OPERATION",
                                    std::string(method) + " needs " + why +
                                        " (this sandbox is "
                                        "reached through " +
                                        describe() + ")",
                                    0, json{{"method", method}});
}

void Connection::setSessionEnv(const std::string&, const EnvVars&) {
    unsupported("ExecutionSession::setEnvVars()",
                "the container API: the agent transport (SANDBOX_AGENT_URL), the embedded "
                "default or sandboxd; a bridge's /exec keeps no shell state between commands");
}

void Connection::destroy() {
    unsupported("destroy()", "a bridge");
}

void Connection::mountBucket(std::string_view, std::string_view, const MountBucketOptions&) {
    unsupported("mountBucket()", "a bridge");
}

void Connection::unmountBucket(std::string_view) {
    unsupported("unmountBucket()", "a bridge");
}

ContainerApi& Connection::containerApi(const char* method) {
    unsupported(method,
                "the container API: the agent transport (SANDBOX_AGENT_URL), the embedded "
                "default, or a bridge with the container API passthrough (sandboxd's "
                "/v1/sandbox/ID/agent); Cloudflare's bridge serves only /exec, /file, /session "
                "and /pty");
}

void bridgeMount(Requester& req, const client::Endpoint& root, const std::string& bridgeId,
                 std::string_view bucket, std::string_view mountPath, const MountBucketOptions& o) {
    json options = {{"endpoint", o.endpoint}};
    if (o.credentials)
        options["credentials"] = {{"accessKeyId", o.credentials->accessKeyId},
                                  {"secretAccessKey", o.credentials->secretAccessKey}};
    if (o.readOnly) options["readOnly"] = true;
    if (o.prefix) options["prefix"] = *o.prefix;
    if (!o.s3fsOptions.empty()) options["s3fsOptions"] = o.s3fsOptions;
    json body = {{"bucket", bucket}, {"mountPath", mountPath}, {"options", options}};
    req.call(root, "POST", "/v1/sandbox/" + bridgeId + "/mount", jsonBody(body, "bucket.mount"), {},
             "bucket.mount", false);
}

void bridgeUnmount(Requester& req, const client::Endpoint& root, const std::string& bridgeId,
                   std::string_view mountPath) {
    json body = {{"mountPath", mountPath}};
    req.call(root, "POST", "/v1/sandbox/" + bridgeId + "/unmount", jsonBody(body, "bucket.unmount"),
             {}, "bucket.unmount", false);
}

}  // namespace sandbox::detail
