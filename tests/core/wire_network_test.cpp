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
    for (const char* bad : {"",
                            "1.2.3",
                            "1.2.3.4.5",
                            "256.1.1.1",
                            "01.2.3.4",
                            "1.2.3.4/33",
                            "1.2.3.4:0",
                            "1.2.3.4:65536",
                            "1.2.3.4:90-80",
                            "1.2.3.4:",
                            "host-loopback",
                            "host-loopback:",
                            "host-loopback:x",
                            "::1",
                            "[::1]:80",
                            "DNS",
                            "1.2.3.4/8/8",
                            "localhost:80",
                            "pypi",
                            "-pypi.org",
                            "pypi-.org",
                            "py_pi.org",
                            "pypi..org",
                            ".pypi.org",
                            "pypi.org.",
                            "pypi.org:0",
                            "pypi.org/24",
                            "a.b.c.300",
                            "xn--\xc3\xa9.com"}) {
        CAPTURE(bad);
        why.clear();
        CHECK_FALSE(parseNetworkRule(bad, why));
        CHECK_FALSE(why.empty());
    }
}

TEST_CASE("network rules: host names") {
    std::string why;
    auto r = parseNetworkRule("PyPI.org:443", why);
    REQUIRE(r);
    CHECK(r->kind == NetworkRule::Kind::Host);
    CHECK(r->host == "pypi.org");  // lower case
    CHECK(r->text() == "pypi.org:443");
    CHECK(parseNetworkRule("files.pythonhosted.org", why)->text() == "files.pythonhosted.org");
    CHECK(parseNetworkRule("a-1.b2.example:8000-8099", why)->portLast == 8099);
    CHECK(parseNetworkRule("1.2.3.x", why)->kind == NetworkRule::Kind::Host);
    // The longest name and label a name may have; one more is refused.
    const std::string label63(63, 'a');
    const std::string longest =
        label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
    CHECK(longest.size() == 253);
    CHECK(parseNetworkRule(longest, why));
    CHECK_FALSE(parseNetworkRule(longest + "b", why));
    CHECK_FALSE(parseNetworkRule(label63 + "a.org", why));
    // Resolved addresses are not part of the rule: a re-resolved name is the same rule.
    auto resolved = *r;
    resolved.addresses = {0x01020304};
    CHECK(resolved == *r);
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
    // Names with what sandboxd resolved them to; a client's "resolved" is never read.
    auto named = parseNetworkPolicy(
        nlohmann::json::parse(
            R"({"mode":"outbound","allow":["pypi.org:443"],"resolved":{"pypi.org":["10.0.0.1"]}})"),
        why);
    REQUIRE(named);
    CHECK(named->allow.at(0).addresses.empty());
    CHECK_FALSE(toJson(*named).contains("resolved"));
    named->allow[0].addresses = {0x97650001, 0x97650002};
    CHECK(
        toJson(*named).dump() ==
        R"({"allow":["pypi.org:443"],"mode":"outbound","resolved":{"pypi.org":["151.101.0.1","151.101.0.2"]}})");
    for (const char* bad : {R"({})", R"({"mode":"all"})", R"({"mode":"none","allow":["dns"]})",
                            R"({"mode":"outbound","allow":"dns"})",
                            R"({"mode":"outbound","allow":[5]})", R"([])", R"(null)"}) {
        CAPTURE(bad);
        CHECK_FALSE(parseNetworkPolicy(nlohmann::json::parse(bad), why));
    }
}

}  // namespace sandbox::core::wire
