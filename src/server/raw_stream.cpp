#include "server/raw_stream.hpp"

#include <sys/socket.h>

#include <cstring>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <type_traits>
#include <vector>

namespace sandbox::server {
using net::awaitable;
using net::use_awaitable;

namespace {

template <class Socket>
class SocketStream final : public RawStream {
  public:
    explicit SocketStream(Socket s) : socket_(std::move(s)) {}

    awaitable<std::size_t> readSome(net::mutable_buffer buf,
                                    boost::system::error_code& ec) override {
        co_return co_await socket_.async_read_some(buf, net::redirect_error(use_awaitable, ec));
    }
    awaitable<void> writeAll(net::const_buffer buf, boost::system::error_code& ec) override {
        co_await net::async_write(socket_, buf, net::redirect_error(use_awaitable, ec));
    }
    void shutdownSend() override {
        boost::system::error_code ignored;
        socket_.shutdown(Socket::shutdown_send, ignored);
    }
    void close() override {
        boost::system::error_code ignored;
        socket_.shutdown(Socket::shutdown_both, ignored);
        socket_.close(ignored);
    }
    bool sendWithDescriptor(std::string_view bytes, int fd) override {
        if constexpr (!std::is_same_v<Socket, net::local::stream_protocol::socket>) {
            return false;
        } else {
            iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
            alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control;
            msg.msg_controllen = sizeof control;
            cmsghdr* c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
            ssize_t n = ::sendmsg(socket_.native_handle(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
            // A unix stream socket takes a small message whole or not at all.
            return n == static_cast<ssize_t>(bytes.size());
        }
    }

  private:
    Socket socket_;
};

// 64 KiB per direction: a large download moves at memory speed in few system calls.
constexpr std::size_t kRelayBuffer = 64 * 1024;

awaitable<std::uint64_t> pump(RawStream& from, RawStream& to, bool& failed) {
    std::vector<char> buf(kRelayBuffer);
    std::uint64_t total = 0;
    for (;;) {
        boost::system::error_code ec;
        std::size_t n = co_await from.readSome(net::buffer(buf), ec);
        if (n > 0) {
            boost::system::error_code wec;
            co_await to.writeAll(net::buffer(buf.data(), n), wec);
            if (wec) {
                failed = true;
                break;
            }
            total += n;
        }
        if (ec) {
            if (ec == net::error::eof)
                to.shutdownSend();  // pass the end on; the other direction goes on
            else
                failed = true;
            break;
        }
    }
    if (failed) {
        from.close();
        to.close();
    }
    co_return total;
}

}  // namespace

std::unique_ptr<RawStream> makeRawStream(net::ip::tcp::socket socket) {
    boost::system::error_code ignored;
    socket.set_option(net::ip::tcp::no_delay(true), ignored);
    return std::make_unique<SocketStream<net::ip::tcp::socket>>(std::move(socket));
}

std::unique_ptr<RawStream> makeRawStream(net::local::stream_protocol::socket socket) {
    return std::make_unique<SocketStream<net::local::stream_protocol::socket>>(std::move(socket));
}

awaitable<RelayStats> relay(RawStream& a, RawStream& b) {
    using namespace net::experimental::awaitable_operators;
    bool failed = false;
    auto [ab, ba] = co_await (pump(a, b, failed) && pump(b, a, failed));
    a.close();
    b.close();
    co_return RelayStats{ab, ba};
}

}  // namespace sandbox::server
