// The network policy's wire form (core/wire_network.hpp): rules, their canonical text, the JSON.
#include <doctest/doctest.h>

#include "core/wire_network.hpp"

namespace sandbox::core::wire {

TEST_CASE("network rules: the three forms, canonical text") {
    std::string why;
    auto r = parseNetworkRule("10.1.2.3/16:443", why);
    REQUIRE(r);
    CHECK(r->kind == NetworkRule::Kind::Cidr);
    CHECK(r->text() == "10.1.0.0/16:443");  // masked
    CHECK(parseNetworkRule("1.2.3.4", why)->text() == "1.2.3.4/32");
    CHECK(parseNetworkRule("0.0.0.0/0:80-8080", why)->text() == "0.0.0.0/0:80-8080");
    CHECK(parseNetworkRule("host-loopback:8080", why)->text() == "host-loopback:8080");
    CHECK(parseNetworkRule("host-loopback:8000-8099", why)->portLast == 8099);
    CHECK(parseNetworkRule("dns", why)->kind == NetworkRule::Kind::Dns);
    for (const char* bad :
         {"", "pypi.org:443", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4/33",
          "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:90-80", "1.2.3.4:", "host-loopback",
          "host-loopback:", "host-loopback:x", "::1", "[::1]:80", "DNS", "1.2.3.4/8/8"}) {
        CAPTURE(bad);
        why.clear();
        CHECK_FALSE(parseNetworkRule(bad, why));
        CHECK_FALSE(why.empty());
    }
}

TEST_CASE("network policy: JSON both ways") {
    std::string why;
    auto p = parseNetworkPolicy(
        nlohmann::json::parse(R"({"mode":"outbound","allow":["dns","1.2.3.4:443","dns"]})"), why);
    REQUIRE(p);
    CHECK(p->outbound);
    CHECK(p->allow.size() == 2);  // duplicates dropped
    CHECK(toJson(*p).dump() == R"({"allow":["dns","1.2.3.4/32:443"],"mode":"outbound"})");
    CHECK(parseNetworkPolicy(nlohmann::json::parse(R"({"mode":"none"})"), why));
    for (const char* bad : {R"({})", R"({"mode":"all"})", R"({"mode":"none","allow":["dns"]})",
                            R"({"mode":"outbound","allow":"dns"})",
                            R"({"mode":"outbound","allow":[5]})", R"([])", R"(null)"}) {
        CAPTURE(bad);
        CHECK_FALSE(parseNetworkPolicy(nlohmann::json::parse(bad), why));
    }
}

}  // namespace sandbox::core::wire
