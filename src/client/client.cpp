// Client (which transport), getSandbox (a Sandbox and its connection, chosen once), and the
// threads callbacks run on.
#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "client/client_impl.hpp"
#include "client/container_connection.hpp"
#include "client/narrow_bridge.hpp"
#include "core/base64.hpp"
#include "core/text.hpp"
#include "sandbox/version.hpp"

namespace sandbox {

std::string_view libraryVersion() noexcept {
    return SANDBOX_VERSION_STRING;
}

using detail::ClientImpl;
using detail::SandboxState;
using nlohmann::json;

namespace {

std::string envOr(const std::string& v, const char* name) {
    if (!v.empty()) return v;
    const char* e = std::getenv(name);
    return e ? e : "";
}

// Bridge ids are [a-z2-7]{1,128}: a name is mapped to lower-case base32 of its UTF-8 bytes,
// which is deterministic and injective (names are at most 63 characters -> at most 101).
std::string bridgeIdFor(const std::string& name) {
    return core::base32Lower(name);
}

void validateName(const std::string& id) {
    static const char* reserved[] = {"www",    "api",        "admin",  "root",
                                     "system", "cloudflare", "workers"};
    if (id.empty() || id.size() > 63)
        throw SandboxSecurityError(
            "INVALID_SANDBOX_ID_LENGTH",
            "Sandbox ID must be 1-63 characters long, got " + std::to_string(id.size()), 400);
    if (id.front() == '-' || id.back() == '-')
        throw SandboxSecurityError("INVALID_SANDBOX_ID_HYPHENS",
                                   "Sandbox ID cannot start or end with a hyphen: '" + id + "'",
                                   400);
    std::string lower = id;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (const char* r : reserved)
        if (lower == r)
            throw SandboxSecurityError("RESERVED_SANDBOX_ID", "Sandbox ID '" + id + "' is reserved",
                                       400);
}

}  // namespace

namespace detail {

// Paths are checked here as the container checks them, so that a malformed one is the same
// ValidationFailedError over every transport (the bridge would read "" as the workspace itself).
void checkPath(std::string_view path, const char* operation) {
    if (auto problems = core::pathProblems(path); !problems.empty())
        throw ValidationFailedError(
            "VALIDATION_FAILED", "Invalid path format for '" + std::string(path) + "': " + problems,
            400,
            json{{"validationErrors",
                  json::array(
                      {{{"field", "path"}, {"message", problems}, {"code", "INVALID_PATH"}}})}},
            operation);
}

BridgeFlavour ClientImpl::bridgeFlavour() {
    if (kind == TransportKind::Embedded) return BridgeFlavour::Passthrough;
    std::call_once(flavourOnce_, [&] {
        // sandboxd says where its container API is; Cloudflare's bridge answers {"ok":true}
        // (or, with another health route, 404). Anything else it could answer is an error.
        auto r = requester->send(root, "GET", "/health", {}, {}, "sandbox.connect", true);
        if (r.status >= 500)
            throw ConnectionError("CONNECTION_FAILED",
                                  "the bridge's /health answered " + std::to_string(r.status), 0,
                                  json{{"status", r.status}}, "sandbox.connect");
        json j = json::parse(r.body, nullptr, false);
        bool passthrough = r.status == 200 && j.is_object() && j.contains("containerApi");
        flavour_ = passthrough ? BridgeFlavour::Passthrough : BridgeFlavour::Narrow;
    });
    return flavour_;
}

std::unique_ptr<Connection> ClientImpl::connect(std::shared_ptr<SandboxInfo> info) {
    switch (kind) {
        case TransportKind::Agent:
            return std::make_unique<ContainerConnection>(*requester, root, ContainerRoute::Direct,
                                                         std::move(info));
        case TransportKind::Embedded:
        case TransportKind::Bridge:
            if (bridgeFlavour() == BridgeFlavour::Passthrough)
                return std::make_unique<ContainerConnection>(
                    *requester, root, ContainerRoute::Passthrough, std::move(info));
            return std::make_unique<NarrowBridgeConnection>(*requester, root, std::move(info));
    }
    throw SandboxError("INTERNAL_ERROR", "unknown transport", 0);
}

std::unique_ptr<Connection> ClientImpl::connectApplying(std::shared_ptr<SandboxInfo> info) {
    const auto network = info->options.network;
    auto conn = connect(std::move(info));
    if (network) conn->applyNetwork(*network);  // before the sandbox's first use
    return conn;
}

// ---- CallbackThreads ------------------------------------------------------------------------

void CallbackThreads::start(std::function<void(const std::atomic<bool>&)> body,
                            std::function<void()> interrupt) {
    std::lock_guard lock(m_);
    // Reap the ones that ended.
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (it->finished->load()) {
            it->thread.join();
            it = entries_.erase(it);
        } else {
            ++it;
        }
    }
    auto finished = std::make_shared<std::atomic<bool>>(false);
    Entry e;
    e.interrupt = std::move(interrupt);
    e.finished = finished;
    e.thread = std::thread([body = std::move(body), stopping = stopping_, finished] {
        body(*stopping);
        finished->store(true);
    });
    entries_.push_back(std::move(e));
}

CallbackThreads::~CallbackThreads() {
    stopping_->store(true);
    std::list<Entry> entries;
    {
        std::lock_guard lock(m_);
        entries.swap(entries_);
    }
    for (auto& e : entries)
        if (e.interrupt) e.interrupt();
    for (auto& e : entries) {
        if (e.thread.get_id() == std::this_thread::get_id())
            e.thread.detach();  // the last handle dropped inside its own callback
        else
            e.thread.join();
    }
}

}  // namespace detail

// ---- Client ---------------------------------------------------------------------------------

Client::Client(ClientOptions options) : impl_(std::make_shared<ClientImpl>()) {
    auto& c = *impl_;
    c.opts = std::move(options);
    c.opts.apiUrl = envOr(c.opts.apiUrl, "SANDBOX_API_URL");
    c.opts.agentUrl =
        c.opts.apiUrl.empty() ? envOr(c.opts.agentUrl, "SANDBOX_AGENT_URL") : c.opts.agentUrl;
    c.opts.apiKey = envOr(c.opts.apiKey, "SANDBOX_API_KEY");
    if (const char* iso = std::getenv("SANDBOX_ISOLATION"); iso && *iso) {
        if (std::string_view(iso) == "none")
            c.opts.unisolated = true;
        else if (std::string_view(iso) != "bwrap")
            throw ValidationFailedError(
                "VALIDATION_FAILED",
                "SANDBOX_ISOLATION must be bwrap or none, not '" + std::string(iso) + "'", 400);
    }
    try {
        if (!c.opts.apiUrl.empty()) {
            c.kind = TransportKind::Bridge;
            c.root = client::Endpoint::parse(c.opts.apiUrl);
        } else if (!c.opts.agentUrl.empty()) {
            c.kind = TransportKind::Agent;
            c.root = client::Endpoint::parse(c.opts.agentUrl);
        } else {
            c.kind = TransportKind::Embedded;
            c.daemon = detail::EmbeddedDaemon::shared(c.opts.sandboxdPath, c.opts.unisolated);
            c.root = client::Endpoint::parse("unix:" + c.daemon->socketPath());
        }
    } catch (const std::invalid_argument& e) {
        throw ValidationFailedError("VALIDATION_FAILED",
                                    std::string("invalid sandbox URL: ") + e.what(), 400);
    }
    detail::Requester::Settings s;
    s.http.connectTimeout = c.opts.connectTimeout;
    s.http.ioTimeout = c.opts.requestTimeout;
    s.http.caFile = c.opts.caFile;
    s.retry.budget = c.opts.retryBudget;
    if (!c.opts.apiKey.empty() && c.kind != TransportKind::Embedded)
        s.auth.emplace_back("Authorization", "Bearer " + c.opts.apiKey);
    s.requestTimeout = c.opts.requestTimeout;
    s.streamIdleTimeout = c.opts.streamIdleTimeout;
    c.requester = std::make_unique<detail::Requester>(std::move(s));
}

Client Client::fromEnv() {
    return Client(ClientOptions{});
}

TransportKind Client::transport() const {
    return impl_->kind;
}

std::string Client::describe() const {
    switch (impl_->kind) {
        case TransportKind::Bridge:
            return "bridge " + impl_->opts.apiUrl;
        case TransportKind::Agent:
            return "agent " + impl_->opts.agentUrl;
        case TransportKind::Embedded:
            return "embedded sandboxd (pid " + std::to_string(impl_->daemon->pid()) +
                   ", unix:" + impl_->daemon->socketPath() +
                   "; isolation: " + impl_->daemon->isolation() + ")";
    }
    return {};
}

Sandbox getSandbox(const Client& client, std::string id, SandboxOptions options) {
    if (options.normalizeId)
        std::transform(id.begin(), id.end(), id.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    validateName(id);
    auto info = std::make_shared<detail::SandboxInfo>();
    info->name = id;
    info->bridgeId = bridgeIdFor(id);
    info->options = options;
    auto st = std::make_shared<SandboxState>();
    st->client = client.impl_;
    st->info = info;
    return Sandbox(std::move(st));
}

}  // namespace sandbox
