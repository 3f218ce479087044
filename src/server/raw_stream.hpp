#pragma once
// A connection as a plain byte stream, and a relay that copies bytes both ways between two of
// them. Used where the servers stop speaking HTTP on a connection and forward it whole: the
// agent's CONNECT relay into its sandbox's network namespace, sandboxd's preview proxy and
// its tunnels (docs/ports.md). Single-threaded like the rest of the servers: a stream is used
// on its server's io_context only.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <memory>
#include <string_view>

namespace sandbox::server {

namespace net = boost::asio;

/// One connection's bytes, whatever the socket under it.
class RawStream {
  public:
    virtual ~RawStream() = default;
    /// Reads what is available (at least one byte); 0 with `ec` set at the end or on error.
    virtual net::awaitable<std::size_t> readSome(net::mutable_buffer buf,
                                                 boost::system::error_code& ec) = 0;
    /// Writes all of `buf`.
    virtual net::awaitable<void> writeAll(net::const_buffer buf, boost::system::error_code& ec) = 0;
    /// Ends the sending direction: the peer reads the end of the stream, and may still send.
    virtual void shutdownSend() = 0;
    /// Closes both directions; pending reads and writes complete with an error.
    virtual void close() = 0;
    /// Unix sockets only: writes all of `bytes` (small: it is sent at once or not at all) with
    /// a duplicate of descriptor `fd` attached (SCM_RIGHTS). False, with nothing sent, where
    /// the stream cannot carry descriptors or the write would block.
    virtual bool sendWithDescriptor(std::string_view bytes, int fd) {
        (void)bytes;
        (void)fd;
        return false;
    }
};

std::unique_ptr<RawStream> makeRawStream(net::ip::tcp::socket socket);
std::unique_ptr<RawStream> makeRawStream(net::local::stream_protocol::socket socket);

/// What a relay copied.
struct RelayStats {
    std::uint64_t aToB = 0;
    std::uint64_t bToA = 0;
};

/// Copies bytes from `a` to `b` and from `b` to `a` until both directions have ended. The end
/// of one direction is passed on (shutdownSend) and the other goes on (a half-closed HTTP
/// client still reads its answer); an error on either side closes both. Either stream may be
/// closed from elsewhere (a revoked preview URL) to end the relay at once.
net::awaitable<RelayStats> relay(RawStream& a, RawStream& b);

}  // namespace sandbox::server
