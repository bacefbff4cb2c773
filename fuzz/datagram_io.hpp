// Fuzz target datagram_io: the datagram path. datagram<N>::get_request
// receiving the payload as one datagram from a unix socketpair, copy_request,
// packet_reader over the packet, and packet_writer<W> collecting a reply
// from a sequence of writes.
//
// Input: [sizes] [write count] [write sizes...] [payload]
//   sizes bits 0-2  packet_writer capacity W: 1, 2, 3, 8, 64, 512, 8192, 65507
//         bits 3-5  max_packet_size N: 1, 2, 7, 64, 512, 1500, 8192, 65507
//   write size byte v: v below 200 is v bytes, else (v - 199)^2 * 8 (to 25 KiB)
//
// Invariants: a datagram up to N bytes arrives whole; a longer one fails
// with EMSGSIZE and its first N bytes, never more; with nothing queued,
// get_request fails with a transient error; a copied request equals the
// original. packet_writer takes a write whole or refuses it whole (EMSGSIZE,
// contents unchanged), its contents are the accepted writes in order, an
// empty write still asks for a reply, and clear() empties it. Echoing the
// packet line by line through packet_reader into packet_writer gives the
// packet back when it fits, and a prefix made of whole lines when not.
#pragma once

#include "common.hpp"

#include <sockserv/address.hpp>
#include <sockserv/io.hpp>
#include <sockserv/socket.hpp>

#include <cerrno>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

namespace sockserv_fuzz {

namespace datagram_io_detail {

struct datagram_pair {
  int ends[2] = {-1, -1};
  bool open() noexcept { return ::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, ends) == 0; }
  ~datagram_pair() {
    if (ends[0] >= 0) ::close(ends[0]);
    if (ends[1] >= 0) ::close(ends[1]);
  }
};

template <std::size_t N>
const char* receive(std::string_view payload) {
  datagram_pair pair;
  if (!pair.open()) return nullptr;  // out of descriptors: nothing to test
  // A unix datagram socket takes up to its send buffer (over 200 KiB) in one
  // datagram: every fuzz payload fits.
  if (::send(pair.ends[0], payload.data(), payload.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(payload.size()))
    return nullptr;
  using policy = sockserv::datagram<N>;
  static typename policy::receive_buffer buffer, copy;  // static: up to 64 KiB each
  sockserv::datagram_request request;
  sockserv::socket_address client;
  sockserv::result got = policy::get_request(pair.ends[1], buffer, request, client);
  if (request.socket != pair.ends[1]) return "get_request did not name the socket to answer from";
  if (request.data.data() != buffer.bytes) return "the packet is not in the receive buffer";
  if (payload.size() <= N) {
    if (!got.ok()) return "a datagram that fits was refused";
    if (request.data != payload) return "a datagram that fits did not arrive whole";
  } else {
    if (got.ok()) return "an oversized datagram was handed on as if it were whole";
    if (got.code() != EMSGSIZE) return "an oversized datagram did not fail with EMSGSIZE";
    if (request.data.size() != N) return "an oversized datagram's head is not max_packet_size bytes";
    if (request.data != payload.substr(0, N)) return "an oversized datagram's head is not its first bytes";
  }
  if (!client.is_unnamed()) return "an unbound unix client has an address";
  if (client.size() > sizeof(sockaddr_storage)) return "the client address is longer than its storage";
  sockserv::datagram_request copied;
  policy::copy_request(request, copied, copy);
  if (copied.data != request.data || copied.data.data() != copy.bytes || copied.socket != request.socket)
    return "copy_request did not copy the packet into the new buffer";

  sockserv::datagram_request none;
  sockserv::result empty = policy::get_request(pair.ends[1], buffer, none, client);
  if (empty.ok() || !sockserv::detail::is_transient_fetch_error(empty.code()))
    return "with nothing queued, get_request did not fail with a transient error";
  return nullptr;
}

template <std::size_t W>
const char* reply(std::string_view payload, std::string_view write_sizes) {
  static sockserv::packet_writer<W> writer;  // static: up to 64 KiB
  writer.clear();
  if (writer.has_reply() || !writer.contents().empty() || writer.error() != 0) return "clear() left something";
  std::string expected;
  static const std::string filler(25 * 1024, 'f');
  std::size_t from = 0;
  for (char c : write_sizes) {
    const unsigned v = static_cast<unsigned char>(c);
    const std::size_t size = v < 200 ? v : static_cast<std::size_t>((v - 199) * (v - 199)) * 8;
    // The bytes written: the payload's, cycling, or filler if there is none.
    std::string bytes;
    for (std::size_t i = 0; i < size; ++i)
      bytes.push_back(payload.empty() ? filler[i] : payload[(from + i) % payload.size()]);
    from += size;
    const std::size_t room = W - expected.size();
    const std::ptrdiff_t n = writer.write(bytes);
    if (!writer.has_reply()) return "a write did not ask for a reply";
    if (size <= room) {
      if (n != static_cast<std::ptrdiff_t>(size)) return "a write that fits was not taken whole";
      expected += bytes;
    } else {
      if (n != -1) return "a write that does not fit was not refused";
      if (writer.error() != EMSGSIZE) return "a refused write did not set EMSGSIZE";
    }
    if (writer.contents() != expected) return "the reply is not the accepted writes in order";
  }
  if (!write_sizes.empty() && !writer.has_reply()) return "writes did not ask for a reply";
  writer.clear();
  if (writer.has_reply() || !writer.contents().empty() || writer.error() != 0) return "clear() left something";

  // The datagram echo handler: each line of the packet into the reply.
  sockserv::packet_reader reader;
  reader.attach(payload);
  std::string accepted;
  bool refused = false;
  for (std::size_t step = 0; step <= payload.size(); ++step) {
    std::string_view line = reader.readline();
    if (line.empty()) break;
    if (writer.write(line) == -1)
      refused = true;
    else if (!refused)
      accepted += line;
  }
  if (!reader.eof()) return "the packet reader did not reach the end of the packet";
  if (payload.size() <= W && (refused || writer.contents() != payload)) return "the echo of a packet that fits is not the packet";
  if (payload.size() > W && writer.contents().substr(0, accepted.size()) != accepted)
    return "the echo of a packet that does not fit does not begin with its first lines";
  if (writer.contents().size() > W) return "the reply holds more than its capacity";
  return nullptr;
}

}  // namespace datagram_io_detail

inline const char* datagram_io(const std::uint8_t* data, std::size_t size) {
  using namespace datagram_io_detail;
  input in(data, size);
  const unsigned sizes = in.byte();
  const unsigned write_count = in.byte() % 17u;
  std::string write_sizes;
  for (unsigned i = 0; i < write_count; ++i) write_sizes.push_back(static_cast<char>(in.byte()));
  const std::string_view payload = in.rest();

  const char* broken = nullptr;
  switch ((sizes >> 3) & 7u) {
    case 0: broken = receive<1>(payload); break;
    case 1: broken = receive<2>(payload); break;
    case 2: broken = receive<7>(payload); break;
    case 3: broken = receive<64>(payload); break;
    case 4: broken = receive<512>(payload); break;
    case 5: broken = receive<1500>(payload); break;
    case 6: broken = receive<8192>(payload); break;
    default: broken = receive<65507>(payload); break;
  }
  if (broken != nullptr) return broken;
  switch (sizes & 7u) {
    case 0: return reply<1>(payload, write_sizes);
    case 1: return reply<2>(payload, write_sizes);
    case 2: return reply<3>(payload, write_sizes);
    case 3: return reply<8>(payload, write_sizes);
    case 4: return reply<64>(payload, write_sizes);
    case 5: return reply<512>(payload, write_sizes);
    case 6: return reply<8192>(payload, write_sizes);
    default: return reply<65507>(payload, write_sizes);
  }
}

}  // namespace sockserv_fuzz
