#include "sandbox/sse.hpp"
#include "core/sse_writer.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace core = sandbox::core;
using sandbox::SseEvent;
using sandbox::SseParser;
using namespace std::chrono_literals;
using namespace std::string_literals;

namespace {

std::vector<SseEvent> parseChunks(SseParser& p, const std::vector<std::string>& chunks) {
    std::vector<SseEvent> out;
    for (const auto& c : chunks) p.feed(c, out);
    return out;
}

std::vector<SseEvent> parseAll(std::string_view text) {
    SseParser p;
    std::vector<SseEvent> out;
    p.feed(text, out);
    return out;
}

std::vector<std::string> datas(const std::vector<SseEvent>& events) {
    std::vector<std::string> d;
    for (const auto& e : events) d.push_back(e.data);
    return d;
}

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("sse: LF framing") {
    auto ev = parseAll("data: hello\n\ndata: world\n\n");
    REQUIRE(ev.size() == 2);
    CHECK(ev[0].data == "hello");
    CHECK(ev[0].event == "");
    CHECK(ev[0].id == "");
    CHECK_FALSE(ev[0].retry.has_value());
    CHECK(ev[1].data == "world");
}

TEST_CASE("sse: CRLF framing") {
    CHECK(datas(parseAll("data: a\r\n\r\ndata: b\r\ndata: c\r\n\r\n")) == Strings{"a", "b\nc"});
}

TEST_CASE("sse: CR framing") {
    CHECK(datas(parseAll("data: a\r\rdata: b\rdata: c\r\r")) == Strings{"a", "b\nc"});
}

TEST_CASE("sse: mixed line endings") {
    CHECK(datas(parseAll("data: a\rdata: b\ndata: c\r\n\n")) == Strings{"a\nb\nc"});
}

TEST_CASE("sse: CR at the end of a chunk followed by LF in the next") {
    SUBCASE("LF continues the CRLF, not a blank line") {
        SseParser p;
        auto ev = parseChunks(p, {"data: a\r", "\ndata: b\n\n"});
        CHECK(datas(ev) == Strings{"a\nb"});
    }
    SUBCASE("CRLF blank line split") {
        SseParser p;
        auto ev = parseChunks(p, {"data: a\r\n\r", "\n", "data: b\r", "\n\r", "\n"});
        CHECK(datas(ev) == Strings{"a", "b"});
    }
    SUBCASE("empty chunks in between keep the pending CR") {
        SseParser p;
        auto ev = parseChunks(p, {"data: a\r", "", "", "\ndata: b\r\n\r\n"});
        CHECK(datas(ev) == Strings{"a\nb"});
    }
    SUBCASE("CR at chunk end followed by a non-LF byte") {
        SseParser p;
        auto ev = parseChunks(p, {"data: a\r", "data: b\r", "\r"});
        CHECK(datas(ev) == Strings{"a\nb"});
    }
    SUBCASE("lone LF after a CR-terminated blank line is another blank line only once") {
        SseParser p;
        // "\r" + "\n" is one line break; the following "\n" ends the event.
        auto ev = parseChunks(p, {"data: a\r", "\n", "\n"});
        CHECK(datas(ev) == Strings{"a"});
    }
}

TEST_CASE("sse: UTF-8 BOM") {
    SUBCASE("whole BOM at the start is skipped") {
        CHECK(datas(parseAll("\xEF\xBB\xBF"
                             "data: x\n\n")) == Strings{"x"});
    }
    SUBCASE("BOM split across chunks") {
        SseParser p;
        auto ev = parseChunks(p, {"\xEF", "\xBB", "\xBF", "data: x\n\n"});
        CHECK(datas(ev) == Strings{"x"});
        SseParser q;
        ev = parseChunks(q, {"\xEF\xBB",
                             "\xBF"
                             "data: y\n\n"});
        CHECK(datas(ev) == Strings{"y"});
    }
    SUBCASE("only one BOM, only at the very start") {
        // The second BOM belongs to the field name, which is then unknown.
        CHECK(parseAll("\xEF\xBB\xBF\xEF\xBB\xBF"
                       "data: x\n\n")
                  .empty());
        CHECK(datas(parseAll("data: a\n\n\xEF\xBB\xBF"
                             "data: b\n\ndata: c\n\n")) == Strings{"a", "c"});
    }
    SUBCASE("a partial BOM is not skipped") {
        SseParser p;
        auto ev = parseChunks(p, {"\xEF\xBB", "data: x\n\ndata: y\n\n"});
        CHECK(datas(ev) == Strings{"y"});
        SseParser q;
        ev = parseChunks(q, {"\xEF", "\ndata: z\n\n"});
        CHECK(datas(ev) == Strings{"z"});
    }
    SUBCASE("BOM detection restarts after finish()") {
        SseParser p;
        p.feed(
            "\xEF\xBB\xBF"
            "data: 1\n\n",
            [](const SseEvent&) {});
        CHECK_FALSE(p.finish().has_value());
        auto ev = parseChunks(p, {"\xEF\xBB",
                                  "\xBF"
                                  "data: 2\n\n"});
        CHECK(datas(ev) == Strings{"2"});
    }
}

TEST_CASE("sse: comments") {
    CHECK(datas(parseAll(": hello\ndata: a\n: middle\ndata: b\n\n")) == Strings{"a\nb"});
    CHECK(parseAll(":\n\n:data: x\n\n").empty());
    SUBCASE("comment spanning chunks") {
        SseParser p;
        auto ev = parseChunks(p, {": a long", " comment with data: inside", "\r", "\ndata: c\n\n"});
        CHECK(datas(ev) == Strings{"c"});
    }
    SUBCASE("comment right after a BOM") {
        CHECK(datas(parseAll("\xEF\xBB\xBF: c\ndata: a\n\n")) == Strings{"a"});
    }
}

TEST_CASE("sse: data fields") {
    CHECK(datas(parseAll("data: a\ndata: b\ndata: c\n\n")) == Strings{"a\nb\nc"});
    CHECK(datas(parseAll("data:a\n\n")) == Strings{"a"});
    CHECK(datas(parseAll("data:  a\n\n")) == Strings{" a"});   // only one space removed
    CHECK(datas(parseAll("data: a \n\n")) == Strings{"a "});   // trailing space kept
    CHECK(datas(parseAll("data:\ta\n\n")) == Strings{"\ta"});  // only a space is removed
    CHECK(datas(parseAll("data: a:b: c\n\n")) == Strings{"a:b: c"});
    SUBCASE("empty data lines") {
        CHECK(datas(parseAll("data:\n\n")) == Strings{""});
        CHECK(datas(parseAll("data: \n\n")) == Strings{""});
        CHECK(datas(parseAll("data:\ndata:\n\n")) == Strings{"\n"});
        CHECK(datas(parseAll("data: a\ndata:\ndata: b\n\n")) == Strings{"a\n\nb"});
        CHECK(datas(parseAll("data: a\ndata:\n\n")) == Strings{"a\n"});
    }
    SUBCASE("field without colon") {
        CHECK(datas(parseAll("data\n\n")) == Strings{""});
        CHECK(datas(parseAll("data\ndata\n\n")) == Strings{"\n"});
        CHECK(parseAll("event\n\n").empty());
        CHECK(parseAll("dat\n\n").empty());
        CHECK(parseAll("data \n\n").empty());  // field name "data " is unknown
    }
    SUBCASE("field names are case-sensitive and exact") {
        CHECK(parseAll("Data: x\n\nDATA: x\n\ndata2: x\n\n data: x\n\n").empty());
    }
    SUBCASE("unknown fields are ignored") {
        CHECK(datas(parseAll("foo: bar\ndata: x\nbaz\n\n")) == Strings{"x"});
    }
}

TEST_CASE("sse: dispatch only with data; blank lines reset the event") {
    CHECK(parseAll("\n\n\n").empty());
    CHECK(parseAll("event: ping\n\n").empty());
    CHECK(parseAll("id: 3\n\nretry: 10\n\n").empty());
    auto ev = parseAll("event: x\n\ndata: y\n\n");
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].event == "");  // the type was reset by the first blank line
    CHECK(ev[0].data == "y");
    // Extra blank lines between events change nothing.
    CHECK(datas(parseAll("data: a\n\n\n\n\ndata: b\n\n")) == Strings{"a", "b"});
}

TEST_CASE("sse: event field") {
    auto ev = parseAll("event: add\ndata: 1\n\ndata: 2\n\nevent: a\nevent: b\ndata: 3\n\n");
    REQUIRE(ev.size() == 3);
    CHECK(ev[0].event == "add");
    CHECK(ev[1].event == "");   // reset after dispatch
    CHECK(ev[2].event == "b");  // last one wins
    ev = parseAll("event:\ndata: x\n\nevent\ndata: y\n\nevent:  sp\ndata: z\n\n");
    REQUIRE(ev.size() == 3);
    CHECK(ev[0].event == "");
    CHECK(ev[1].event == "");
    CHECK(ev[2].event == " sp");
}

TEST_CASE("sse: id field") {
    SseParser p;
    std::vector<SseEvent> ev;
    p.feed("id: 1\ndata: a\n\ndata: b\n\n", ev);
    REQUIRE(ev.size() == 2);
    CHECK(ev[0].id == "1");
    CHECK(ev[1].id == "1");  // persists across events
    CHECK(p.lastEventId() == "1");

    ev.clear();
    p.feed("id: x\0y\ndata: c\n\n"s, ev);  // contains NUL: ignored
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].id == "1");

    ev.clear();
    p.feed("id\ndata: d\n\n", ev);  // empty id resets
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].id == "");
    CHECK(p.lastEventId() == "");

    ev.clear();
    p.feed("id: 5\nid: 6\ndata: e\n\n", ev);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].id == "6");

    SUBCASE("lastEventId is committed by a blank line, even without data") {
        SseParser q;
        q.feed("id: 7\n", ev);
        CHECK(q.lastEventId() == "");
        q.feed("\n", ev);
        CHECK(q.lastEventId() == "7");
        q.feed("id: 8\n\n", ev);
        CHECK(q.lastEventId() == "8");
        q.reset();
        CHECK(q.lastEventId() == "");
    }
}

TEST_CASE("sse: retry field") {
    SseParser p;
    std::vector<SseEvent> ev;
    p.feed("retry: 1500\ndata: a\n\ndata: b\n\n", ev);
    REQUIRE(ev.size() == 2);
    REQUIRE(ev[0].retry.has_value());
    CHECK(*ev[0].retry == 1500ms);
    CHECK_FALSE(ev[1].retry.has_value());  // only for the event it appeared in
    CHECK(p.reconnectionTime() == 1500ms);

    for (const char* bad : {"retry: 10a0\n", "retry: -1\n", "retry:\n", "retry: \n", "retry: 1.5\n",
                            "retry:  10\n", "retry: 10 \n", "retry: +5\n", "retry\n"}) {
        CAPTURE(bad);
        SseParser q;
        auto evs = std::vector<SseEvent>{};
        q.feed(std::string(bad) + "data: x\n\n", evs);
        REQUIRE(evs.size() == 1);
        CHECK_FALSE(evs[0].retry.has_value());
        CHECK_FALSE(q.reconnectionTime().has_value());
    }

    SUBCASE("retry without data still sets the reconnection time") {
        SseParser q;
        q.feed("retry: 0\n\n", ev);
        CHECK(q.reconnectionTime() == 0ms);
    }
    SUBCASE("huge values saturate") {
        auto evs = parseAll("retry: 99999999999999999999999999\ndata: x\n\n");
        REQUIRE(evs.size() == 1);
        REQUIRE(evs[0].retry.has_value());
        CHECK(evs[0].retry->count() == std::chrono::milliseconds::max().count());
    }
    SUBCASE("invalid retry keeps the previous valid one") {
        auto evs = parseAll("retry: 20\nretry: x\ndata: x\n\n");
        REQUIRE(evs.size() == 1);
        CHECK(evs[0].retry == 20ms);
    }
}

TEST_CASE("sse: finish()") {
    SUBCASE("flushes an unterminated final event") {
        SseParser p;
        std::vector<SseEvent> ev;
        p.feed("data: a\n\nevent: e\nid: 9\ndata: b\ndata: c", ev);
        REQUIRE(ev.size() == 1);
        auto last = p.finish();
        REQUIRE(last.has_value());
        CHECK(last->data == "b\nc");
        CHECK(last->event == "e");
        CHECK(last->id == "9");
        CHECK(p.lastEventId() == "9");
        CHECK_FALSE(p.finish().has_value());  // nothing left
    }
    SUBCASE("terminated last line without blank line") {
        SseParser p;
        p.feed("data: a\r", [](SseEvent&&) {});
        auto last = p.finish();
        REQUIRE(last.has_value());
        CHECK(last->data == "a");
    }
    SUBCASE("no data: nothing") {
        SseParser p;
        p.feed("event: x\nid: 1", [](SseEvent&&) {});
        CHECK_FALSE(p.finish().has_value());
        SseParser q;
        q.feed(": comment only", [](SseEvent&&) {});
        CHECK_FALSE(q.finish().has_value());
        SseParser r;
        CHECK_FALSE(r.finish().has_value());
    }
    SUBCASE("complete stream: nothing extra") {
        SseParser p;
        std::vector<SseEvent> ev;
        p.feed("data: a\n\n", ev);
        CHECK(ev.size() == 1);
        CHECK_FALSE(p.finish().has_value());
    }
    SUBCASE("parser is reusable afterwards") {
        SseParser p;
        p.feed("id: 4\ndata: half", [](SseEvent&&) {});
        REQUIRE(p.finish().has_value());
        std::vector<SseEvent> ev;
        p.feed("data: next\n\n", ev);
        REQUIRE(ev.size() == 1);
        CHECK(ev[0].data == "next");
        CHECK(ev[0].id == "4");  // the last event id survives a reconnection
    }
}

TEST_CASE("sse: reset()") {
    SseParser p;
    p.feed("id: 1\nretry: 5\n\ndata: partial", [](SseEvent&&) {});
    p.reset();
    CHECK(p.lastEventId() == "");
    CHECK_FALSE(p.reconnectionTime().has_value());
    std::vector<SseEvent> ev;
    p.feed(
        "\xEF\xBB\xBF"
        "data: fresh\n\n",
        ev);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].data == "fresh");
    CHECK(ev[0].id == "");
}

TEST_CASE("sse: callback forms") {
    const std::string stream = "event: a\ndata: 1\n\nevent: b\ndata: 2\n\n";
    SseParser p;
    std::vector<std::string> seen;
    p.feed(stream, [&](const SseEvent& e) { seen.push_back(e.event + e.data); });
    p.feed(stream, [&](SseEvent&& e) { seen.push_back(std::move(e.event) + std::move(e.data)); });
    p.feed(stream, [&](SseEvent e) { seen.push_back(e.event + e.data); });
    struct Functor {
        std::vector<std::string>* seen;
        void operator()(const SseEvent& e) const { seen->push_back(e.event + e.data); }
    };
    p.feed(stream, Functor{&seen});
    CHECK(seen == Strings{"a1", "b2", "a1", "b2", "a1", "b2", "a1", "b2"});
}

TEST_CASE("sse: a throwing callback leaves the parser consistent") {
    SseParser p;
    int calls = 0;
    auto thrower = [&](const SseEvent&) {
        if (++calls == 1) throw std::runtime_error("stop");
    };
    CHECK_THROWS_AS(p.feed("event: x\ndata: 1\n\n", thrower), std::runtime_error);
    std::vector<SseEvent> ev;
    p.feed("data: 2\n\n", ev);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].data == "2");
    CHECK(ev[0].event == "");
}

TEST_CASE("sse: max event size") {
    SUBCASE("one long line in one chunk") {
        SseParser p;
        p.setMaxEventSize(100);
        CHECK(p.maxEventSize() == 100);
        std::vector<SseEvent> ev;
        CHECK_THROWS_AS(p.feed("data: " + std::string(200, 'x') + "\n\n", ev), std::length_error);
        // Exactly at the limit is fine.
        SseParser q;
        q.setMaxEventSize(100);
        q.feed("data: " + std::string(99, 'x') + "\n\n", ev);
        REQUIRE(ev.size() == 1);
        CHECK(ev[0].data.size() == 99);
    }
    SUBCASE("many small data lines") {
        SseParser p;
        p.setMaxEventSize(1000);
        std::vector<SseEvent> ev;
        CHECK_THROWS_AS(
            [&] {
                for (int i = 0; i < 1000; ++i) p.feed("data: 0123456789\n", ev);
            }(),
            std::length_error);
        CHECK(ev.empty());
    }
    SUBCASE("an endless line without terminator") {
        SseParser p;
        p.setMaxEventSize(4096);
        std::vector<SseEvent> ev;
        const std::string chunk(1000, 'a');
        CHECK_THROWS_AS(
            [&] {
                for (int i = 0; i < 100; ++i) p.feed(chunk, ev);
            }(),
            std::length_error);
    }
    SUBCASE("an endless comment is not buffered") {
        SseParser p;
        p.setMaxEventSize(4096);
        std::vector<SseEvent> ev;
        p.feed(":", ev);
        const std::string chunk(1000, 'a');
        for (int i = 0; i < 100; ++i) p.feed(chunk, ev);
        p.feed("\ndata: ok\n\n", ev);
        REQUIRE(ev.size() == 1);
        CHECK(ev[0].data == "ok");
    }
    SUBCASE("the parser recovers after the error") {
        SseParser p;
        p.setMaxEventSize(64);
        std::vector<SseEvent> ev;
        CHECK_THROWS_AS(p.feed("data: " + std::string(100, 'x') + "\n", ev), std::length_error);
        p.feed("\ndata: ok\n\n", ev);
        REQUIRE(ev.size() == 1);
        CHECK(ev[0].data == "ok");
    }
    SUBCASE("default limit") {
        SseParser p;
        CHECK(p.maxEventSize() == SseParser::kDefaultMaxEventSize);
        CHECK(SseParser::kDefaultMaxEventSize == 64u * 1024 * 1024);
    }
}

TEST_CASE("sse: random re-chunking yields identical events") {
    const std::string stream =
        "\xEF\xBB\xBF"
        ": welcome\r\n"
        "retry: 3000\n"
        "event: start\r"
        "id: 1\r\n"
        "data: {\"type\":\"start\"}\n"
        "\n"
        "data: line one\r"
        "data:line two\r\n"
        "data:\n"
        "data\n"
        "\r\n"
        ": keep-alive\n\n"
        "event: stdout\n"
        "id: 2\n"
        "data: {\"type\":\"stdout\",\"data\":\"hello \\r\\n world\"}\r\n"
        "\r"
        "foo: bar\n"
        "id: bad\0id\n"
        "data: \xC3\xA9\xE2\x82\xAC\n"
        "retry: nope\n"
        "\r\n"
        "event: ignored-no-data\n\n"
        "id\n"
        "data:  two spaces\r"
        "\r"
        "event: end\n"
        "data: unterminated\r\n"
        "data: tail"s;

    SseParser ref;
    std::vector<SseEvent> expected;
    ref.feed(stream, expected);
    auto tail = ref.finish();
    REQUIRE(tail.has_value());
    expected.push_back(*tail);
    REQUIRE(expected.size() == 6);
    CHECK(expected[0].event == "start");
    CHECK(expected[0].id == "1");
    CHECK(expected[0].retry == 3000ms);
    CHECK(expected[0].data == "{\"type\":\"start\"}");
    CHECK(expected[1].data == "line one\nline two\n\n");
    CHECK(expected[1].id == "1");
    CHECK(expected[1].event == "");
    CHECK(expected[2].event == "stdout");
    CHECK(expected[2].id == "2");
    CHECK(expected[3].data == "\xC3\xA9\xE2\x82\xAC");
    CHECK(expected[3].id == "2");
    CHECK_FALSE(expected[3].retry.has_value());
    CHECK(expected[4].data == " two spaces");
    CHECK(expected[4].id == "");
    CHECK(expected[5].event == "end");
    CHECK(expected[5].data == "unterminated\ntail");

    auto same = [](const std::vector<SseEvent>& a, const std::vector<SseEvent>& b) {
        if (a.size() != b.size()) return false;
        for (std::size_t i = 0; i < a.size(); ++i) {
            if (a[i].event != b[i].event || a[i].data != b[i].data || a[i].id != b[i].id ||
                a[i].retry != b[i].retry)
                return false;
        }
        return true;
    };

    std::mt19937 rng(12345);
    for (int iter = 0; iter < 3000; ++iter) {
        // Alternate between 1-byte chunks, tiny chunks and larger chunks.
        const std::size_t maxChunk = iter % 10 == 0 ? 1 : (iter % 3 == 0 ? 4 : 64);
        std::uniform_int_distribution<std::size_t> len(0, maxChunk);
        SseParser p;
        std::vector<SseEvent> got;
        std::size_t pos = 0;
        while (pos < stream.size()) {
            std::size_t n = maxChunk == 1 ? 1 : len(rng);  // 0-length chunks included
            n = std::min(n, stream.size() - pos);
            p.feed(std::string_view(stream).substr(pos, n), got);
            pos += n;
        }
        auto last = p.finish();
        if (last) got.push_back(std::move(*last));
        CAPTURE(iter);
        REQUIRE(same(got, expected));
    }
}

TEST_CASE("sse: formatSseEvent / formatSseComment") {
    SUBCASE("exact output") {
        std::string out = "prefix|";
        core::formatSseEvent(out, "hello");
        CHECK(out == "prefix|data: hello\n\n");
        out.clear();
        core::formatSseEvent(out, "a\nb", "stdout", "42");
        CHECK(out == "event: stdout\nid: 42\ndata: a\ndata: b\n\n");
        out.clear();
        core::formatSseEvent(out, "");
        CHECK(out == "data: \n\n");
        out.clear();
        core::formatSseComment(out, "keep-alive");
        CHECK(out == ": keep-alive\n\n");
        out.clear();
        core::formatSseComment(out, "");
        CHECK(out == ": \n\n");
    }
    SUBCASE("round trip through the parser") {
        const std::vector<std::string> payloads = {
            "simple",
            "",
            "multi\nline\ndata",
            "\n",
            "\n\n",
            "trailing\n",
            "\nleading",
            " leading space",
            ":colon first",
            "data: nested",
            "{\"type\":\"stdout\",\"data\":\"x\"}",
            "\xC3\xA9t\xC3\xA9",
        };
        std::string wire;
        for (std::size_t i = 0; i < payloads.size(); ++i) {
            core::formatSseComment(wire, "ping");
            core::formatSseEvent(wire, payloads[i], i % 2 ? "ev" + std::to_string(i) : "",
                                 "id" + std::to_string(i));
        }
        SseParser p;
        std::vector<SseEvent> ev;
        p.feed(wire, ev);
        CHECK_FALSE(p.finish().has_value());
        REQUIRE(ev.size() == payloads.size());
        for (std::size_t i = 0; i < payloads.size(); ++i) {
            CAPTURE(i);
            CHECK(ev[i].data == payloads[i]);
            CHECK(ev[i].event == (i % 2 ? "ev" + std::to_string(i) : ""));
            CHECK(ev[i].id == "id" + std::to_string(i));
        }
    }
    SUBCASE("CR and CRLF in data are line breaks; they cannot inject events") {
        std::string wire;
        core::formatSseEvent(wire, "a\r\nb\rc\r\n\r\nevent: evil\r\rdata: x");
        auto ev = parseAll(wire);
        REQUIRE(ev.size() == 1);
        CHECK(ev[0].data == "a\nb\nc\n\nevent: evil\n\ndata: x");
        CHECK(ev[0].event == "");
    }
    SUBCASE("multi-line comments stay comments") {
        std::string wire;
        core::formatSseComment(wire, "one\ndata: two\rthree");
        CHECK(parseAll(wire).empty());
    }
    SUBCASE("event and id with line breaks are rejected") {
        std::string out;
        CHECK_THROWS_AS(core::formatSseEvent(out, "x", "a\nb"), std::invalid_argument);
        CHECK_THROWS_AS(core::formatSseEvent(out, "x", "", "1\r"), std::invalid_argument);
    }
}
