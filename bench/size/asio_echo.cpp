// bench/size/asio_echo.cpp — the same line-echo TCP server with standalone
// Asio, written as its examples are (async accept, a shared_ptr session
// chaining async_read_some and async_write), for the binary-size table.
#include <asio.hpp>

#include <array>
#include <cstdlib>
#include <cstring>
#include <memory>

class session : public std::enable_shared_from_this<session> {
 public:
  explicit session(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}
  void read() {
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(buffer_.data() + have_, buffer_.size() - have_),
                            [this, self](std::error_code ec, std::size_t n) {
                              if (ec) return;
                              have_ += n;
                              const void* end = memrchr(buffer_.data(), '\n', have_);
                              std::size_t lines = end ? static_cast<std::size_t>(static_cast<const char*>(end) -
                                                                                 buffer_.data()) + 1
                                                      : (have_ == buffer_.size() ? have_ : 0);
                              if (lines == 0) return read();
                              asio::async_write(socket_, asio::buffer(buffer_.data(), lines),
                                                [this, self, lines](std::error_code error, std::size_t) {
                                                  if (error) return;
                                                  std::memmove(buffer_.data(), buffer_.data() + lines, have_ - lines);
                                                  have_ -= lines;
                                                  read();
                                                });
                            });
  }

 private:
  asio::ip::tcp::socket socket_;
  std::array<char, 2048> buffer_;
  std::size_t have_ = 0;
};

void accept(asio::ip::tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](std::error_code ec, asio::ip::tcp::socket socket) {
    if (!ec) std::make_shared<session>(std::move(socket))->read();
    accept(acceptor);
  });
}

int main(int argc, char** argv) {
  const auto port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 9999);
  asio::io_context io(1);
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), port});
  accept(acceptor);
  io.run();
}
