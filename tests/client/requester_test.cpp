// The retry policy against a fake clock and fake attempts: no sockets, no sleeping.
#include <doctest/doctest.h>

#include <chrono>
#include <vector>

#include "client/requester.hpp"

namespace sandbox::detail {
namespace {

using namespace std::chrono_literals;
using client::HttpResponse;
using client::TransportError;

class FakeClock final : public RetryClock {
  public:
    std::chrono::steady_clock::time_point now() override { return t; }
    void sleep(std::chrono::milliseconds d) override {
        sleeps.push_back(d);
        t += d;
    }
    std::chrono::steady_clock::time_point t{};
    std::vector<std::chrono::milliseconds> sleeps;
};

HttpResponse status(int s) {
    HttpResponse r;
    r.status = s;
    return r;
}

TEST_CASE("retry: a 503 is retried with doubling backoff, within the budget") {
    FakeClock clock;
    int calls = 0;
    RetryPolicy p{.budget = 1000ms, .firstBackoff = 100ms, .maxBackoff = 3000ms};
    auto r = withRetry(p, true, clock, [&] { return status(++calls < 4 ? 503 : 200); });
    CHECK(r.status == 200);
    CHECK(calls == 4);
    CHECK(clock.sleeps == std::vector<std::chrono::milliseconds>{100ms, 200ms, 400ms});
}

TEST_CASE("retry: the budget is never overrun; the last answer is returned") {
    FakeClock clock;
    int calls = 0;
    RetryPolicy p{.budget = 1000ms, .firstBackoff = 100ms, .maxBackoff = 3000ms};
    auto r = withRetry(p, true, clock, [&] {
        ++calls;
        return status(503);
    });
    CHECK(r.status == 503);
    // 100 + 200 + 400 = 700 ms slept; the next wait (800 ms) would end past the budget.
    CHECK(calls == 4);
    CHECK(clock.t - std::chrono::steady_clock::time_point{} == 700ms);
}

TEST_CASE("retry: backoff is capped") {
    FakeClock clock;
    RetryPolicy p{.budget = 10'000ms, .firstBackoff = 1000ms, .maxBackoff = 1500ms};
    withRetry(p, true, clock, [&] { return status(503); });
    REQUIRE(clock.sleeps.size() >= 3);
    CHECK(clock.sleeps[0] == 1000ms);
    CHECK(clock.sleeps[1] == 1500ms);
    CHECK(clock.sleeps[2] == 1500ms);
}

TEST_CASE("retry: a 503 to a request that is not idempotent is not repeated") {
    FakeClock clock;
    int calls = 0;
    auto r = withRetry(RetryPolicy{}, false, clock, [&] {
        ++calls;
        return status(503);
    });
    CHECK(r.status == 503);
    CHECK(calls == 1);
    CHECK(clock.sleeps.empty());
}

TEST_CASE("retry: a refused connection is retried even when not idempotent (nothing was sent)") {
    FakeClock clock;
    int calls = 0;
    auto r = withRetry(RetryPolicy{}, false, clock, [&]() -> HttpResponse {
        if (++calls < 3) throw TransportError(TransportError::Kind::Connect, "refused", true);
        return status(201);
    });
    CHECK(r.status == 201);
    CHECK(calls == 3);
}

TEST_CASE("retry: other transport failures are not retried") {
    FakeClock clock;
    int calls = 0;
    auto attempt = [&](TransportError e) {
        return [&calls, e]() -> HttpResponse {
            ++calls;
            throw e;
        };
    };
    CHECK_THROWS_AS(withRetry(RetryPolicy{}, true, clock,
                              attempt(TransportError(TransportError::Kind::Connect, "dns"))),
                    TransportError);
    CHECK_THROWS_AS(withRetry(RetryPolicy{}, true, clock,
                              attempt(TransportError(TransportError::Kind::Timeout, "slow"))),
                    TransportError);
    CHECK_THROWS_AS(withRetry(RetryPolicy{}, true, clock,
                              attempt(TransportError(TransportError::Kind::Lost, "reset"))),
                    TransportError);
    CHECK(calls == 3);
    CHECK(clock.sleeps.empty());
}

TEST_CASE("retry: a zero budget disables retries") {
    FakeClock clock;
    int calls = 0;
    RetryPolicy p{.budget = 0ms};
    CHECK_THROWS_AS(withRetry(p, true, clock,
                              [&]() -> HttpResponse {
                                  ++calls;
                                  throw TransportError(TransportError::Kind::Connect, "refused",
                                                       true);
                              }),
                    TransportError);
    CHECK(calls == 1);
}

}  // namespace
}  // namespace sandbox::detail
