#include "core/base64.hpp"

#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

using namespace sandbox::core;
using namespace std::string_literals;

namespace {

std::string randomBytes(std::mt19937& rng, std::size_t n) {
    std::uniform_int_distribution<int> byte(0, 255);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(byte(rng));
    return s;
}

}  // namespace

TEST_CASE("base64: RFC 4648 test vectors") {
    const std::vector<std::pair<std::string, std::string>> vectors = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (const auto& vec : vectors) {
        const std::string& plain = vec.first;
        const std::string& encoded = vec.second;
        CAPTURE(plain);
        CHECK(base64Encode(plain) == encoded);
        CHECK(base64EncodedSize(plain.size()) == encoded.size());
        auto decoded = base64Decode(encoded);
        REQUIRE(decoded.has_value());
        CHECK(*decoded == plain);
    }
}

TEST_CASE("base64: known binary values") {
    CHECK(base64Encode("\x00"s) == "AA==");
    CHECK(base64Encode("\x00\x00\x00"s) == "AAAA");
    CHECK(base64Encode("\xff\xff\xff") == "////");
    CHECK(base64Encode("\xfb\xff") == "+/8=");
    CHECK(base64Encode("Many hands make light work.") == "TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHdvcmsu");
    CHECK(base64Decode("+/8=") == "\xfb\xff"s);
}

TEST_CASE("base64: append variant") {
    std::string out = "prefix:";
    base64EncodeAppend(out, "foobar");
    base64EncodeAppend(out, "");
    base64EncodeAppend(out, "f");
    CHECK(out == "prefix:Zm9vYmFyZg==");
}

TEST_CASE("base64: decode replaces the output") {
    std::string out = "old contents";
    REQUIRE(base64Decode("Zm9v", out));
    CHECK(out == "foo");
    REQUIRE(base64Decode("", out));
    CHECK(out.empty());
}

TEST_CASE("base64: all 256 byte values round trip") {
    std::string all;
    for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
    // Every value at every position within a 3-byte group.
    for (std::size_t shift = 0; shift < 3; ++shift) {
        const std::string input = std::string(shift, 'x') + all;
        const std::string enc = base64Encode(input);
        CHECK(enc.size() == base64EncodedSize(input.size()));
        CHECK(isBase64Charset(enc));
        auto dec = base64Decode(enc);
        REQUIRE(dec.has_value());
        CHECK(*dec == input);
    }
    // Single bytes.
    for (int i = 0; i < 256; ++i) {
        const std::string one(1, static_cast<char>(i));
        CHECK(base64Decode(base64Encode(one)) == one);
    }
}

TEST_CASE("base64: random data round trips") {
    std::mt19937 rng(42);
    for (std::size_t n = 0; n < 200; ++n) {
        const std::string input = randomBytes(rng, n);
        const std::string enc = base64Encode(input);
        REQUIRE(enc.size() == base64EncodedSize(n));
        std::string dec;
        REQUIRE(base64Decode(enc, dec));
        CHECK(dec == input);
    }
    const std::string big = randomBytes(rng, 1 << 20);
    CHECK(base64Decode(base64Encode(big)) == big);
}

TEST_CASE("base64: invalid inputs are rejected") {
    const std::vector<std::string> bad = {
        "Z",       "Zg",      "Zg=",      "Zm9vY",    "Zm9vYg=",     // bad length
        "=",       "====",    "A===",     "Zg===",    "Zm9v====",    // too much padding
        "Z=g=",    "=Zg=",    "Zg==Zg==", "Zm=v",     "Zm9v=AAA",    // misplaced padding
        "Zm9-",    "Zm9_",    "-_-_",     "PD94bWw_", "Zm9v-w==",    // URL-safe alphabet
        " Zm9",    "Zm9v ",   "Zm9v\n",   "Zm\r\n9v", "Zm9v\tZm9v",  // whitespace
        "Zm9\x80", "Zm9\xff", "Zm9."s,    "Zm9\0"s,   "Zg=\0"s,      // other bytes
        "Z\0=="s,  "Zm9*",    "Zg=A",     "Zg.=",     "Z.==",
    };
    for (const auto& s : bad) {
        CAPTURE(s);
        CHECK_FALSE(base64Decode(s).has_value());
        std::string out;
        CHECK_FALSE(base64Decode(s, out));
    }
    // Invalid characters deep inside a long input are also found.
    std::string longText = base64Encode(std::string(3000, 'a'));
    for (std::size_t pos : {0u, 1u, 2u, 3u, 100u, 2000u, 3995u}) {
        std::string t = longText;
        t[pos] = '-';
        CAPTURE(pos);
        CHECK_FALSE(base64Decode(t).has_value());
        t[pos] = '=';
        CHECK_FALSE(base64Decode(t).has_value());
    }
}

TEST_CASE("base64: non-canonical trailing bits are accepted") {
    // "QR==" carries non-zero bits after the last byte; decoded like "QQ==".
    CHECK(base64Decode("QQ==") == "A"s);
    CHECK(base64Decode("QR==") == "A"s);
    CHECK(base64Decode("QUI=") == "AB"s);
    CHECK(base64Decode("QUJ=") == "AB"s);
}

TEST_CASE("base64: isBase64Charset") {
    CHECK(isBase64Charset(""));
    CHECK(isBase64Charset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="));
    CHECK(isBase64Charset("===="));  // lenient: only the character set is checked
    CHECK(isBase64Charset("Zg"));
    CHECK_FALSE(isBase64Charset("Zm9v\n"));
    CHECK_FALSE(isBase64Charset("Zm 9v"));
    CHECK_FALSE(isBase64Charset("Zm9-"));
    CHECK_FALSE(isBase64Charset("Zm9_"));
    CHECK_FALSE(isBase64Charset("Zm9v\0"s));
    CHECK_FALSE(isBase64Charset("\xC3\xA9"));
    for (int c = 0; c < 256; ++c) {
        const bool expected = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                              (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=';
        CAPTURE(c);
        CHECK(isBase64Charset(std::string(1, static_cast<char>(c))) == expected);
    }
}

TEST_CASE("base64: stream encoder equals one-shot") {
    std::mt19937 rng(7);
    for (int iter = 0; iter < 500; ++iter) {
        const std::size_t total = std::uniform_int_distribution<std::size_t>(0, 300)(rng);
        const std::string input = randomBytes(rng, total);
        const std::size_t maxChunk = iter % 4 == 0 ? 1 : (iter % 4 == 1 ? 5 : 64);
        std::uniform_int_distribution<std::size_t> len(0, maxChunk);
        Base64StreamEncoder enc;
        std::string out;
        std::size_t pos = 0;
        while (pos < input.size()) {
            const std::size_t n = std::min(len(rng), input.size() - pos);
            const std::size_t before = out.size();
            enc.feed(std::string_view(input).substr(pos, n), out);
            CHECK((out.size() - before) % 4 == 0);  // only complete groups
            CHECK(out.find('=') == std::string::npos);
            pos += n;
        }
        enc.finish(out);
        CAPTURE(iter);
        REQUIRE(out == base64Encode(input));
    }
}

TEST_CASE("base64: stream encoder is reusable after finish") {
    Base64StreamEncoder enc;
    std::string a;
    enc.feed("f", a);
    CHECK(a.empty());
    enc.feed("o", a);
    CHECK(a.empty());
    enc.feed("o", a);
    CHECK(a == "Zm9v");
    enc.feed("b", a);
    enc.finish(a);
    CHECK(a == "Zm9vYg==");
    std::string b;
    enc.finish(b);
    CHECK(b.empty());
    enc.feed("fo", b);
    enc.finish(b);
    CHECK(b == "Zm8=");
}

TEST_CASE("base32Lower: RFC 4648 vectors, lower case, no padding") {
    using sandbox::core::base32Lower;
    CHECK(base32Lower("") == "");
    CHECK(base32Lower("f") == "my");
    CHECK(base32Lower("fo") == "mzxq");
    CHECK(base32Lower("foo") == "mzxw6");
    CHECK(base32Lower("foob") == "mzxw6yq");
    CHECK(base32Lower("fooba") == "mzxw6ytb");
    CHECK(base32Lower("foobar") == "mzxw6ytboi");
    CHECK(base32Lower("user-123") == "ovzwk4rngezdg");
    CHECK(base32Lower(std::string(63, '\xff')).size() == 101);
}
