#include "core/utf8.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

using namespace sandbox::core;
using namespace std::string_literals;

namespace {

const std::string R = "\xEF\xBF\xBD";  // U+FFFD

std::string jsonOf(std::string_view s) {
    std::string out;
    appendJsonString(out, s);
    return out;
}

// Stream-decodes `input` cut at the given boundaries.
std::string streamDecode(std::string_view input, const std::vector<std::size_t>& cuts) {
    Utf8StreamDecoder d;
    std::string out;
    std::size_t pos = 0;
    for (std::size_t cut : cuts) {
        out += d.decode(input.substr(pos, cut - pos));
        pos = cut;
    }
    out += d.decode(input.substr(pos));
    out += d.flush();
    return out;
}

}  // namespace

TEST_CASE("utf8: valid input") {
    const std::vector<std::string> valid = {
        "",
        "plain ascii",
        "\x00\x01\x7f"s,
        "\xC2\x80",          // U+0080
        "\xC3\xA9",          // é
        "\xDF\xBF",          // U+07FF
        "\xE0\xA0\x80",      // U+0800
        "\xE2\x82\xAC",      // €
        "\xED\x9F\xBF",      // U+D7FF, last before the surrogates
        "\xEE\x80\x80",      // U+E000, first after the surrogates
        "\xEF\xBF\xBF",      // U+FFFF
        "\xEF\xBB\xBF",      // BOM is just a character here
        "\xF0\x90\x80\x80",  // U+10000
        "\xF0\x9F\x98\x80",  // 😀
        "\xF4\x8F\xBF\xBF",  // U+10FFFF
        "mixed \xC3\xA9 and \xE2\x82\xAC and \xF0\x9F\x98\x80 end",
    };
    for (const auto& s : valid) {
        CAPTURE(s);
        CHECK(isValidUtf8(s));
        CHECK(sanitizeUtf8(s) == s);
    }
}

TEST_CASE("utf8: invalid input is repaired like TextDecoder") {
    // Expected outputs follow the WHATWG utf-8 decoder: one U+FFFD per maximal subpart; the
    // byte that breaks a sequence is reprocessed.
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"\x80", R},  // lone continuation
        {"\xBF", R},
        {"\x80\x80\x80", R + R + R},  // each stray continuation
        {"a\x80z", "a" + R + "z"},
        {"\xC0\x80", R + R},          // overlong NUL: C0 is never a lead
        {"\xC1\xBF", R + R},          // overlong
        {"\xE0\x80\x80", R + R + R},  // overlong: E0 needs A0..BF
        {"\xE0\x9F\xBF", R + R + R},
        {"\xF0\x80\x80\x80", R + R + R + R},  // overlong: F0 needs 90..BF
        {"\xF0\x8F\xBF\xBF", R + R + R + R},
        {"\xED\xA0\x80", R + R + R},                          // surrogate U+D800
        {"\xED\xBF\xBF", R + R + R},                          // surrogate U+DFFF
        {"\xED\xA0\x80\xED\xB0\x80", R + R + R + R + R + R},  // CESU-8 pair
        {"\xF4\x90\x80\x80", R + R + R + R},                  // U+110000
        {"\xF5\x80\x80\x80", R + R + R + R},                  // F5 is never a lead
        {"\xF8\x88\x80\x80\x80", R + R + R + R + R},          // old 5-byte form
        {"\xFE", R},
        {"\xFF", R},
        {"\xFE\xFF", R + R},
        {"\xC3", R},  // truncated at end: one U+FFFD
        {"\xE2\x82", R},
        {"\xF0\x9F\x98", R},
        {"\xE2\x82"
         "A",
         R + "A"},  // maximal subpart then the breaking byte
        {"\xF0\x9F\x98"
         "A",
         R + "A"},
        {"\xF0\x9F"
         "A",
         R + "A"},
        {"\xE1\x80"
         "A",
         R + "A"},
        {"\xC3\xC3\xA9", R + "\xC3\xA9"},
        {"\xE2\x82\xE2\x82\xAC", R + "\xE2\x82\xAC"},
        {"\xF1\x80\x80\xC0", R + R},              // subpart F1 80 80, then C0
        {"\xF1\x80\x80\xE1\x80\xC2", R + R + R},  // F1 80 80 | E1 80 | C2 (truncated)
        {"\xE0\xA0\xC3\xA9", R + "\xC3\xA9"},
        {"\xF4\x8F\xBF\xC0", R + R},
        {"\xC2\x41\x42", R + "AB"},
        {"\xEF\xBF\xBE", "\xEF\xBF\xBE"},  // noncharacters are valid
        {"a\xF0\x9F\x98\x80\xF0\x9F\x98z", "a\xF0\x9F\x98\x80" + R + "z"},
        // Markus Kuhn style mix.
        {"\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80!",
         "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5" + R + R + R + "!"},
    };
    for (const auto& c : cases) {
        const std::string& in = c.first;
        const std::string& expected = c.second;
        CAPTURE(in);
        CHECK(isValidUtf8(in) == (in == expected));
        CHECK(sanitizeUtf8(in) == expected);
        std::string appended = "x";
        sanitizeUtf8Append(appended, in);
        CHECK(appended == "x" + expected);
    }
}

TEST_CASE("utf8: non-ASCII at every offset of a long ASCII run") {
    for (std::size_t pos = 0; pos < 48; ++pos) {
        CAPTURE(pos);
        std::string s(48, 'a');
        s.insert(pos, "\xC3\xA9");
        CHECK(isValidUtf8(s));
        CHECK(sanitizeUtf8(s) == s);

        std::string bad(48, 'a');
        bad[pos] = '\x80';
        CHECK_FALSE(isValidUtf8(bad));
        std::string expected(48, 'a');
        expected.replace(pos, 1, R);
        CHECK(sanitizeUtf8(bad) == expected);

        std::string cut(48, 'b');
        cut.resize(pos);
        cut += "\xE2\x82";
        CHECK_FALSE(isValidUtf8(cut));
        CHECK(sanitizeUtf8(cut) == std::string(pos, 'b') + R);
    }
}

TEST_CASE("utf8: stream decoder, multibyte character split at every position") {
    const std::vector<std::string> chars = {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80",
                                            "\xF4\x8F\xBF\xBF", "\xED\x9F\xBF"};
    for (const auto& ch : chars) {
        const std::string text = "ab" + ch + "cd" + ch + ch;
        for (std::size_t cut = 0; cut <= text.size(); ++cut) {
            CAPTURE(ch);
            CAPTURE(cut);
            CHECK(streamDecode(text, {cut}) == text);
        }
        // Every byte its own chunk.
        std::vector<std::size_t> all;
        for (std::size_t i = 1; i < text.size(); ++i) all.push_back(i);
        CHECK(streamDecode(text, all) == text);
    }
}

TEST_CASE("utf8: stream decoder holds back and flushes") {
    Utf8StreamDecoder d;
    CHECK(d.decode("a\xE2") == "a");
    CHECK(d.hasPending());
    CHECK(d.decode("\x82") == "");
    CHECK(d.decode("") == "");
    CHECK(d.decode("\xAC"
                   "b") ==
          "\xE2\x82\xAC"
          "b");
    CHECK_FALSE(d.hasPending());

    CHECK(d.decode("\xF0\x9F\x98") == "");
    CHECK(d.flush() == R);  // dangling incomplete sequence
    CHECK_FALSE(d.hasPending());
    CHECK(d.flush() == "");

    // A held-back prefix refuted by the next chunk: U+FFFD, then the byte is reprocessed.
    CHECK(d.decode("\xE2\x82") == "");
    CHECK(d.decode("A") == R + "A");
    CHECK(d.decode("\xF0") == "");
    CHECK(d.decode("\xF0\x9F\x98\x80") == R + "\xF0\x9F\x98\x80");
    CHECK(d.decode("\xE0") == "");
    CHECK(d.decode("\x80") == R + R);  // E0 80 is not a valid prefix
    // Invalid bytes are never held back.
    CHECK(d.decode("x\xFF") == "x" + R);
    CHECK(d.decode("\xC0") == R);
    CHECK_FALSE(d.hasPending());

    std::string out = "pre";
    d.decodeAppend("\xC3", out);
    CHECK(out == "pre");
    d.decodeAppend("\xA9!", out);
    CHECK(out == "pre\xC3\xA9!");
    d.decodeAppend("\xC3", out);
    d.flushAppend(out);
    CHECK(out == "pre\xC3\xA9!" + R);
}

TEST_CASE("utf8: stream decoder equals one-shot sanitize for random input and chunking") {
    std::mt19937 rng(2024);
    // Pieces biased toward interesting bytes.
    const std::vector<std::string> pieces = {
        "a",        "Z",        " ",    "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80",
        "\x80",     "\xBF",     "\xC0", "\xC3",     "\xE2",         "\xE2\x82",
        "\xED",     "\xED\xA0", "\xF0", "\xF0\x9F", "\xF0\x9F\x98", "\xF4",
        "\xF4\x90", "\xFF",     "\xE0", "\xE0\xA0", "\xF1\x80\x80"};
    std::uniform_int_distribution<std::size_t> pick(0, pieces.size() - 1);
    for (int iter = 0; iter < 2000; ++iter) {
        std::string input;
        const int count = std::uniform_int_distribution<int>(0, 30)(rng);
        for (int i = 0; i < count; ++i) input += pieces[pick(rng)];
        const std::string expected = sanitizeUtf8(input);
        CHECK(isValidUtf8(expected));
        std::vector<std::size_t> cuts;
        if (!input.empty()) {
            std::uniform_int_distribution<std::size_t> at(0, input.size());
            const int ncuts = std::uniform_int_distribution<int>(0, 8)(rng);
            for (int i = 0; i < ncuts; ++i) cuts.push_back(at(rng));
            std::sort(cuts.begin(), cuts.end());
        }
        CAPTURE(iter);
        REQUIRE(streamDecode(input, cuts) == expected);
        // And one byte at a time.
        std::vector<std::size_t> every;
        for (std::size_t i = 1; i < input.size(); ++i) every.push_back(i);
        REQUIRE(streamDecode(input, every) == expected);
    }
}

TEST_CASE("utf8: appendJsonString escapes") {
    CHECK(jsonOf("") == "\"\"");
    CHECK(jsonOf("plain") == "\"plain\"");
    CHECK(jsonOf("a\"b\\c") == "\"a\\\"b\\\\c\"");
    CHECK(jsonOf("\n\r\t\b\f") == "\"\\n\\r\\t\\b\\f\"");
    CHECK(jsonOf("\x00\x01\x1f"s) == "\"\\u0000\\u0001\\u001f\"");
    CHECK(jsonOf("\x1b[0m") == "\"\\u001b[0m\"");
    CHECK(jsonOf("\x7f") == "\"\\u007f\"");
    CHECK(jsonOf("/ \xC3\xA9 \xF0\x9F\x98\x80") == "\"/ \xC3\xA9 \xF0\x9F\x98\x80\"");
    std::string out = "{\"k\":";
    appendJsonString(out, "v\n");
    out += "}";
    CHECK(out == "{\"k\":\"v\\n\"}");
}

TEST_CASE("utf8: appendJsonString round trips through nlohmann::json") {
    // Every ASCII byte, alone and inside long runs (exercising the vector scan at all offsets).
    for (int c = 0; c < 0x80; ++c) {
        const std::string one(1, static_cast<char>(c));
        CAPTURE(c);
        CHECK(nlohmann::json::parse(jsonOf(one)).get<std::string>() == one);
        for (std::size_t pos : {0u, 7u, 15u, 16u, 17u, 31u, 40u}) {
            std::string s(45, 'x');
            s[pos] = static_cast<char>(c);
            CHECK(nlohmann::json::parse(jsonOf(s)).get<std::string>() == s);
        }
    }
    std::mt19937 rng(99);
    const std::vector<std::string> pieces = {"a",
                                             "bcdefghijklmnop",
                                             "\"",
                                             "\\",
                                             "\n",
                                             "\r\n",
                                             "\t",
                                             "\x01",
                                             "\x1f",
                                             "\x7f",
                                             "\xC3\xA9",
                                             "\xE2\x82\xAC",
                                             "\xF0\x9F\x98\x80",
                                             "{\"k\":[1]}",
                                             std::string(1, '\0')};
    std::uniform_int_distribution<std::size_t> pick(0, pieces.size() - 1);
    for (int iter = 0; iter < 500; ++iter) {
        std::string s;
        const int count = std::uniform_int_distribution<int>(0, 60)(rng);
        for (int i = 0; i < count; ++i) s += pieces[pick(rng)];
        const std::string js = jsonOf(s);
        CAPTURE(iter);
        REQUIRE(nlohmann::json::parse(js).get<std::string>() == s);
        // Matches nlohmann's own escaping except for DEL, which we escape and it does not.
        std::string theirs = nlohmann::json(s).dump();
        std::string ours = js;
        for (std::size_t p; (p = ours.find("\\u007f")) != std::string::npos;)
            ours.replace(p, 6, "\x7f");
        CHECK(ours == theirs);
    }
}
