// The tls_record fuzz target's seeds (real ClientHellos from openssl and
// Python, plaintext, a cut-off record) replayed through its checks, so make
// test covers them (the main suite's fuzz replay does not link BearSSL).
#include "../../fuzz/tls_record.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

TEST_CASE("every tls_record fuzz seed passes the target's checks", "[tls][fuzz]") {
  const std::filesystem::path seeds = std::filesystem::path(__FILE__).parent_path() / "../../fuzz/corpus/tls_record";
  std::size_t count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(seeds)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const char* broken = sockserv_fuzz::tls_record(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    INFO(entry.path().string());
    CHECK(std::string(broken != nullptr ? broken : "") == "");
    ++count;
  }
  CHECK(count >= 5);
}

TEST_CASE("a real ClientHello gets a ServerHello back from the sans-I/O session", "[tls]") {
  std::ifstream in(std::filesystem::path(__FILE__).parent_path() / "../../fuzz/corpus/tls_record/clienthello-openssl-tls12-sni-alpn",
                   std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(bytes.size() > 100);
  auto& s = sockserv_fuzz::tls_fixture::session();
  REQUIRE(s.start(sockserv_fuzz::tls_fixture::context(false)));
  CHECK(s.wants() == sockserv::tls::want_read);
  std::size_t fed = 1;  // after the fuzz target's mode byte
  while (fed < bytes.size()) {
    std::size_t n = s.feed(bytes.data() + fed, bytes.size() - fed);  // a record header first, then its body
    if (n == 0) break;
    fed += n;
  }
  CHECK(fed == bytes.size());
  std::size_t size = 0;
  const unsigned char* reply = s.pending_output(size);
  REQUIRE(reply != nullptr);
  CHECK(s.wants() == (sockserv::tls::want_read | sockserv::tls::want_write));
  CHECK(reply[0] == 0x16);  // a handshake record
  CHECK(reply[5] == 0x02);  // ServerHello
  CHECK_FALSE(s.handshake_done());
  CHECK(std::string(s.server_name()) == "device.local");
}
