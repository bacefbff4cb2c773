// bench/ref/asio_server.cpp — the standalone Asio reference server.
//
//   asio_server --family tcp|udp|unix|unix-dgram --listen ADDR
//               [--mode echo|once] [--backlog N]
//
// The same services as examples/echo_server.cpp, written as Asio's own
// examples write them: one io_context on one thread (concurrency hint 1),
// a shared_ptr session per connection chaining async_read_some and
// async_write, async_receive_from/async_send_to for datagrams. Stream
// sessions answer complete lines (a line longer than the buffer in pieces).
#include <asio.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unistd.h>

namespace {

bool once = false;

void to_upper(char* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (p[i] >= 'a' && p[i] <= 'z') p[i] = static_cast<char>(p[i] - 'a' + 'A');
}

template <class Protocol>
class session : public std::enable_shared_from_this<session<Protocol>> {
 public:
  explicit session(typename Protocol::socket socket) : socket_(std::move(socket)) {}
  void start() { read(); }

 private:
  void read() {
    auto self = this->shared_from_this();
    socket_.async_read_some(asio::buffer(buffer_.data() + have_, buffer_.size() - have_),
                            [this, self](std::error_code ec, std::size_t n) {
                              if (ec) return;
                              have_ += n;
                              answer();
                            });
  }

  void answer() {
    const char* end = static_cast<const char*>(memrchr(buffer_.data(), '\n', have_));
    std::size_t n = end ? static_cast<std::size_t>(end - buffer_.data()) + 1 : (have_ == buffer_.size() ? have_ : 0);
    if (n == 0) return read();
    if (once) {
      const char* first = static_cast<const char*>(std::memchr(buffer_.data(), '\n', n));
      if (first) n = static_cast<std::size_t>(first - buffer_.data()) + 1;
      to_upper(buffer_.data(), n);
    }
    auto self = this->shared_from_this();
    asio::async_write(socket_, asio::buffer(buffer_.data(), n), [this, self, n](std::error_code ec, std::size_t) {
      if (ec) return;
      if (once) {
        std::error_code ignored;
        socket_.shutdown(Protocol::socket::shutdown_send, ignored);
        return;  // the last reference goes: the socket closes
      }
      std::memmove(buffer_.data(), buffer_.data() + n, have_ - n);
      have_ -= n;
      read();
    });
  }

  typename Protocol::socket socket_;
  std::array<char, 2048> buffer_;
  std::size_t have_ = 0;
};

template <class Protocol>
class stream_server {
 public:
  stream_server(asio::io_context& io, const typename Protocol::endpoint& where, int backlog) : acceptor_(io) {
    acceptor_.open(where.protocol());
    if constexpr (std::is_same_v<Protocol, asio::ip::tcp>)
      acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(where);
    acceptor_.listen(backlog);
    accept();
  }
  typename Protocol::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

 private:
  void accept() {
    acceptor_.async_accept([this](std::error_code ec, typename Protocol::socket socket) {
      if (!ec) std::make_shared<session<Protocol>>(std::move(socket))->start();
      accept();
    });
  }
  typename Protocol::acceptor acceptor_;
};

template <class Protocol>
class datagram_server {
 public:
  datagram_server(asio::io_context& io, const typename Protocol::endpoint& where) : socket_(io, where) { receive(); }
  typename Protocol::endpoint local_endpoint() const { return socket_.local_endpoint(); }

 private:
  void receive() {
    socket_.async_receive_from(asio::buffer(buffer_), sender_, [this](std::error_code ec, std::size_t n) {
      if (ec) return receive();
      if (once) to_upper(buffer_.data(), n);
      socket_.async_send_to(asio::buffer(buffer_.data(), n), sender_,
                            [this](std::error_code, std::size_t) { receive(); });
    });
  }
  typename Protocol::socket socket_;
  typename Protocol::endpoint sender_;
  std::array<char, 8192> buffer_;
};

asio::ip::address_v4 loopback() { return asio::ip::address_v4::loopback(); }

}  // namespace

int main(int argc, char** argv) {
  std::string family = "tcp", listen;
  int backlog = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string key = argv[i], value = argv[i + 1];
    if (key == "--family") family = value;
    else if (key == "--listen") listen = value;
    else if (key == "--mode") once = value == "once";
    else if (key == "--backlog") backlog = std::atoi(value.c_str());
  }
  if (listen.empty()) {
    std::fprintf(stderr, "usage: asio_server --family tcp|udp|unix|unix-dgram --listen ADDR [--mode echo|once]\n");
    return 2;
  }
  asio::io_context io(1);
  auto port = [&] { return static_cast<unsigned short>(std::atoi(listen.substr(listen.rfind(':') + 1).c_str())); };
  auto announce = [](const std::string& where) {
    std::printf("listening on %s\n", where.c_str());
    std::fflush(stdout);
  };
  if (family == "tcp") {
    stream_server<asio::ip::tcp> server(io, {loopback(), port()}, backlog);
    announce("127.0.0.1:" + std::to_string(server.local_endpoint().port()));
    io.run();
  } else if (family == "udp") {
    datagram_server<asio::ip::udp> server(io, {loopback(), port()});
    announce("127.0.0.1:" + std::to_string(server.local_endpoint().port()));
    io.run();
  } else if (family == "unix") {
    ::unlink(listen.c_str());
    stream_server<asio::local::stream_protocol> server(io, listen, backlog);
    announce(listen);
    io.run();
  } else {
    ::unlink(listen.c_str());
    datagram_server<asio::local::datagram_protocol> server(io, listen);
    announce(listen);
    io.run();
  }
}
