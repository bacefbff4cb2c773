// bench/loop/fanout_asio.cpp — the broadcast server in the pattern of
// Asio's chat_server example (written for this benchmark, not copied): a
// room holding shared_ptr participants; a session per connection reading
// with async_read_some; each complete line is a message delivered to every
// other participant, which keeps an unbounded std::deque of messages and
// writes the front one with async_write, the next from the completion
// handler. One io_context (concurrency hint 1) on one thread. The example's
// "recent messages" replay for newcomers is left out: no one joins during
// the measurement.
#include <asio.hpp>

#include <array>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <unistd.h>

namespace {

using asio::ip::tcp;
using message = std::string;

class participant {
 public:
  virtual ~participant() = default;
  virtual void deliver(const message& m) = 0;
};

class room {
 public:
  void join(std::shared_ptr<participant> p) { members_.insert(std::move(p)); }
  void leave(const std::shared_ptr<participant>& p) { members_.erase(p); }
  void deliver(const participant* from, const message& m) {
    for (const auto& p : members_)
      if (p.get() != from) p->deliver(m);
  }

 private:
  std::set<std::shared_ptr<participant>> members_;
};

class session : public participant, public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, room& r) : socket_(std::move(socket)), room_(r) {}
  void start() {
    room_.join(shared_from_this());
    read();
  }
  void deliver(const message& m) override {
    const bool writing = !queue_.empty();
    queue_.push_back(m);
    if (!writing) write();
  }

 private:
  void read() {
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(in_.data() + have_, in_.size() - have_),
                            [this, self](std::error_code ec, std::size_t n) {
                              if (ec) return room_.leave(self);
                              have_ += n;
                              std::size_t start = 0;
                              for (std::size_t i = 0; i < have_; ++i)
                                if (in_[i] == '\n') {
                                  room_.deliver(this, message(in_.data() + start, i + 1 - start));
                                  start = i + 1;
                                }
                              if (start == 0 && have_ == in_.size()) start = have_;  // no newline: pass it on whole
                              std::memmove(in_.data(), in_.data() + start, have_ - start);
                              have_ -= start;
                              read();
                            });
  }
  void write() {
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(queue_.front()), [this, self](std::error_code ec, std::size_t) {
      if (ec) return room_.leave(self);
      queue_.pop_front();
      if (!queue_.empty()) write();
    });
  }

  tcp::socket socket_;
  room& room_;
  std::array<char, 2048> in_{};
  std::size_t have_ = 0;
  std::deque<message> queue_;
};

void accept(tcp::acceptor& acceptor, room& r) {
  acceptor.async_accept([&acceptor, &r](std::error_code ec, tcp::socket socket) {
    if (!ec) {
      socket.set_option(tcp::no_delay(true));
      std::make_shared<session>(std::move(socket), r)->start();
    }
    accept(acceptor, r);
  });
}

}  // namespace

int main(int argc, char** argv) {
  const char* where = nullptr;
  int backlog = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--listen")) where = argv[i + 1];
    else if (!std::strcmp(argv[i], "--backlog")) backlog = std::atoi(argv[i + 1]);
  }
  if (!where || !std::strrchr(where, ':')) {
    std::fprintf(stderr, "usage: fanout_asio --listen 127.0.0.1:PORT [--backlog N]\n");
    return 2;
  }
  asio::io_context io(1);
  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"),
                         static_cast<unsigned short>(std::atoi(std::strrchr(where, ':') + 1)));
  tcp::acceptor acceptor(io);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(backlog);
  std::printf("listening on 127.0.0.1:%u\n", acceptor.local_endpoint().port());
  std::fflush(stdout);
  room r;
  accept(acceptor, r);
  asio::signal_set stop(io, SIGTERM);
  stop.async_wait([&](std::error_code, int) { io.stop(); });
  io.run();
  return 0;
}
