// SPDX-License-Identifier: BSL-1.0
// sockserv/tls/credentials.hpp — the server's certificate chain and private
// key, and the trust anchors for client certificates, decoded from PEM into
// storage of a size fixed at compile time.
//
// Nothing is allocated: br_pem_decoder streams the base64 into BearSSL's
// DER decoders (a key never exists as DER here), certificates land in the
// chain buffer, and each decoded key is copied into the object's own bytes.
// Files are read in 512-byte pieces, so a chain file of any length needs no
// scratch buffer. Capacity-free code lives in credentials_core; sized
// types only add arrays.
#pragma once

#include "../error.hpp"

#include <bearssl.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <string_view>
#include <utility>
#include <unistd.h>

namespace sockserv::tls {

namespace detail {

// Bytes appended into a fixed region; overflow is remembered, not written.
struct byte_sink {
  unsigned char* data = nullptr;
  std::size_t capacity = 0, used = 0;
  bool overflow = false;

  unsigned char* next() const noexcept { return data + used; }
  bool append(const void* bytes, std::size_t size) noexcept {
    if (size > capacity - used) {
      overflow = true;
      return false;
    }
    if (size > 0) std::memcpy(data + used, bytes, size);
    used += size;
    return true;
  }
  static void callback(void* self, const void* bytes, std::size_t size) {
    static_cast<byte_sink*>(self)->append(bytes, size);
  }
};

// Drives br_pem_decoder over text that may arrive in pieces. For each PEM
// object the visitor's begin(name) says where its DER goes (or nowhere) and
// end() checks what arrived.
template <class Visitor>
class pem_reader {
 public:
  explicit pem_reader(Visitor& visitor) noexcept : visitor_(visitor) { br_pem_decoder_init(&decoder_); }

  result push(const char* text, std::size_t size) noexcept {
    while (size > 0) {
      std::size_t taken = br_pem_decoder_push(&decoder_, text, size);
      text += taken;
      size -= taken;
      switch (br_pem_decoder_event(&decoder_)) {
        case BR_PEM_BEGIN_OBJ: {
          inside_ = true;
          auto destination = visitor_.begin(br_pem_decoder_name(&decoder_));
          br_pem_decoder_setdest(&decoder_, destination.first, destination.second);
          break;
        }
        case BR_PEM_END_OBJ: {
          inside_ = false;
          ++objects_;
          result checked = visitor_.end();
          if (!checked) return checked;
          break;
        }
        case BR_PEM_ERROR: return result::failure("PEM: malformed base64 or header line");
        default: break;
      }
    }
    return {};
  }

  result finish() noexcept {
    result last = push("\n", 1);  // a file may lack its final newline
    if (!last) return last;
    if (inside_) return result::failure("PEM: an object has no END line");
    if (objects_ == 0) return result::failure("PEM: no BEGIN line found");
    return {};
  }

 private:
  Visitor& visitor_;
  br_pem_decoder_context decoder_;
  bool inside_ = false;
  unsigned objects_ = 0;
};

using pem_destination = std::pair<void (*)(void*, const void*, std::size_t), void*>;
inline void ignore_bytes(void*, const void*, std::size_t) {}
inline void to_key_decoder(void* decoder, const void* bytes, std::size_t size) {
  br_skey_decoder_push(static_cast<br_skey_decoder_context*>(decoder), bytes, size);
}
inline void to_certificate_decoder(void* decoder, const void* bytes, std::size_t size) {
  br_x509_decoder_push(static_cast<br_x509_decoder_context*>(decoder), bytes, size);
}

inline bool is_key_name(const char* name) noexcept {
  return std::strcmp(name, "PRIVATE KEY") == 0 || std::strcmp(name, "RSA PRIVATE KEY") == 0 ||
         std::strcmp(name, "EC PRIVATE KEY") == 0;
}

// Feeds a whole file to a pem_reader in 512-byte pieces.
template <class Visitor>
result read_pem_file(const char* path, Visitor& visitor) noexcept {
  int fd;
  do fd = ::open(path, O_RDONLY | O_CLOEXEC);
  while (fd == -1 && errno == EINTR);
  if (fd == -1) {
    char context[140];
    std::snprintf(context, sizeof context, "open %.120s", path);
    return result::from_errno(errno, context);
  }
  pem_reader<Visitor> reader(visitor);
  char piece[512];
  result outcome;
  for (;;) {
    ssize_t n = ::read(fd, piece, sizeof piece);
    if (n == -1 && errno == EINTR) continue;
    if (n == -1) {
      outcome = result::from_errno(errno, "read PEM file");
      break;
    }
    if (n == 0) {
      outcome = reader.finish();
      break;
    }
    outcome = reader.push(piece, static_cast<std::size_t>(n));
    if (!outcome) break;
  }
  ::close(fd);
  return outcome;
}

template <class Visitor>
result read_pem_text(std::string_view text, Visitor& visitor) noexcept {
  pem_reader<Visitor> reader(visitor);
  result outcome = reader.push(text.data(), text.size());
  return outcome ? reader.finish() : outcome;
}

}  // namespace detail

// The server's chain and key, and the optional client trust anchors, over
// storage the sized type provides.
class credentials_core {
 public:
  // Largest RSA key whose five CRT components fit (8192-bit): EC keys need 66.
  static constexpr std::size_t key_capacity = 5 * 512;

  // ---- server chain and key ---------------------------------------------
  // The chain PEM holds the server's certificate first, then intermediates.
  result load_chain_file(const char* path) noexcept { return load_chain_with([&](auto& v) { return detail::read_pem_file(path, v); }); }
  result load_chain(std::string_view pem) noexcept { return load_chain_with([&](auto& v) { return detail::read_pem_text(pem, v); }); }
  // PKCS#8 "PRIVATE KEY", "RSA PRIVATE KEY" or "EC PRIVATE KEY" (P-256, P-384, P-521).
  result load_key_file(const char* path) noexcept { return load_key_with([&](auto& v) { return detail::read_pem_file(path, v); }); }
  result load_key(std::string_view pem) noexcept { return load_key_with([&](auto& v) { return detail::read_pem_text(pem, v); }); }

  // ---- client certificates (mutual TLS) ---------------------------------
  // Each CERTIFICATE in the PEM becomes a trust anchor: a client must then
  // present a chain that ends at one of them, or the handshake fails.
  result load_client_ca_file(const char* path) noexcept { return load_anchors_with([&](auto& v) { return detail::read_pem_file(path, v); }); }
  result load_client_ca(std::string_view pem) noexcept { return load_anchors_with([&](auto& v) { return detail::read_pem_text(pem, v); }); }

  bool has_server_identity() const noexcept { return certificate_count_ > 0 && key_type_ != 0; }
  const br_x509_certificate* chain() const noexcept { return certificates_; }
  std::size_t chain_length() const noexcept { return certificate_count_; }
  int key_type() const noexcept { return key_type_; }  // BR_KEYTYPE_RSA, BR_KEYTYPE_EC or 0
  const br_rsa_private_key& rsa_key() const noexcept { return rsa_; }
  const br_ec_private_key& ec_key() const noexcept { return ec_; }
  // The key type of whoever signed the server's certificate (ECDH suites care).
  int issuer_key_type() const noexcept { return issuer_key_type_; }

  const br_x509_trust_anchor* anchors() const noexcept { return anchors_; }
  std::size_t anchor_count() const noexcept { return anchor_count_; }

 protected:
  credentials_core(unsigned char* chain_bytes, std::size_t chain_capacity, br_x509_certificate* certificates,
                   std::size_t max_certificates, unsigned char* anchor_bytes, std::size_t anchor_capacity,
                   br_x509_trust_anchor* anchors, std::size_t max_anchors) noexcept
      : chain_bytes_(chain_bytes),
        chain_capacity_(chain_capacity),
        certificates_(certificates),
        max_certificates_(max_certificates),
        anchor_bytes_(anchor_bytes),
        anchor_capacity_(anchor_capacity),
        anchors_(anchors),
        max_anchors_(max_anchors) {}

 private:
  // ---- the chain: each CERTIFICATE's DER appended to the chain bytes ----
  struct chain_visitor {
    credentials_core& self;
    detail::byte_sink sink;
    bool in_certificate = false;
    detail::pem_destination begin(const char* name) noexcept {
      in_certificate = std::strcmp(name, "CERTIFICATE") == 0;
      if (!in_certificate) return {&detail::ignore_bytes, nullptr};
      if (self.certificate_count_ < self.max_certificates_)
        self.certificates_[self.certificate_count_] = {sink.next(), sink.used};  // data, start offset
      return {&detail::byte_sink::callback, &sink};
    }
    result end() noexcept {
      if (!in_certificate) return {};
      if (self.certificate_count_ == self.max_certificates_)
        return result::failure("certificate chain: more certificates than max_chain_certificates");
      if (sink.overflow) return result::failure("certificate chain: larger than chain_bytes");
      br_x509_certificate& added = self.certificates_[self.certificate_count_++];
      added.data_len = sink.used - added.data_len;
      return {};
    }
  };

  template <class Read>
  result load_chain_with(Read read) noexcept {
    certificate_count_ = 0;
    chain_visitor visitor{*this, {chain_bytes_, chain_capacity_, 0, false}};
    result outcome = read(visitor);
    if (outcome && certificate_count_ == 0) outcome = result::failure("certificate chain: no CERTIFICATE in the PEM");
    if (outcome) outcome = learn_issuer_key_type();
    if (!outcome) certificate_count_ = 0;
    return outcome;
  }

  result learn_issuer_key_type() noexcept {
    br_x509_decoder_context decoder;
    br_x509_decoder_init(&decoder, nullptr, nullptr);
    br_x509_decoder_push(&decoder, certificates_[0].data, certificates_[0].data_len);
    if (br_x509_decoder_last_error(&decoder) != 0)
      return result::failure("certificate chain: the first certificate does not decode as X.509");
    issuer_key_type_ = br_x509_decoder_get_signer_key_type(&decoder);
    return {};
  }

  // ---- the key: DER straight into br_skey_decoder, then copied out ------
  struct key_visitor {
    br_skey_decoder_context decoder;
    bool in_key = false, seen = false;
    detail::pem_destination begin(const char* name) noexcept {
      in_key = detail::is_key_name(name);  // "EC PARAMETERS" and others are skipped
      if (!in_key) return {&detail::ignore_bytes, nullptr};
      br_skey_decoder_init(&decoder);
      return {&detail::to_key_decoder, &decoder};
    }
    result end() noexcept {
      if (!in_key) return {};
      if (seen) return result::failure("private key: more than one key in the PEM");
      seen = true;
      if (br_skey_decoder_last_error(&decoder) != 0)
        return result::failure("private key: not a valid RSA or EC key (encrypted keys are not supported)");
      return {};
    }
  };

  template <class Read>
  result load_key_with(Read read) noexcept {
    key_type_ = 0;
    key_visitor visitor;
    result outcome = read(visitor);
    if (outcome && !visitor.seen) outcome = result::failure("private key: no PRIVATE KEY in the PEM");
    if (!outcome) return outcome;
    detail::byte_sink sink{key_bytes_, sizeof key_bytes_, 0, false};
    if (br_skey_decoder_key_type(&visitor.decoder) == BR_KEYTYPE_RSA) {
      const br_rsa_private_key& from = *br_skey_decoder_get_rsa(&visitor.decoder);
      rsa_.n_bitlen = from.n_bitlen;
      rsa_.p = copy_part(sink, from.p, rsa_.plen = from.plen);
      rsa_.q = copy_part(sink, from.q, rsa_.qlen = from.qlen);
      rsa_.dp = copy_part(sink, from.dp, rsa_.dplen = from.dplen);
      rsa_.dq = copy_part(sink, from.dq, rsa_.dqlen = from.dqlen);
      rsa_.iq = copy_part(sink, from.iq, rsa_.iqlen = from.iqlen);
      if (sink.overflow) return result::failure("private key: RSA key larger than 8192 bits");
      key_type_ = BR_KEYTYPE_RSA;
    } else {
      const br_ec_private_key& from = *br_skey_decoder_get_ec(&visitor.decoder);
      ec_.curve = from.curve;
      ec_.x = copy_part(sink, from.x, ec_.xlen = from.xlen);
      key_type_ = BR_KEYTYPE_EC;
    }
    return {};
  }

  static unsigned char* copy_part(detail::byte_sink& sink, const unsigned char* part, std::size_t size) noexcept {
    unsigned char* at = sink.next();
    return sink.append(part, size) ? at : nullptr;
  }

  // ---- trust anchors: each CA certificate's subject DN and public key ---
  struct anchor_visitor {
    credentials_core& self;
    detail::byte_sink sink;
    br_x509_decoder_context decoder;
    std::size_t dn_start = 0;
    bool in_certificate = false;
    detail::pem_destination begin(const char* name) noexcept {
      in_certificate = std::strcmp(name, "CERTIFICATE") == 0;
      if (!in_certificate) return {&detail::ignore_bytes, nullptr};
      dn_start = sink.used;
      br_x509_decoder_init(&decoder, &detail::byte_sink::callback, &sink);  // the DN lands in sink
      return {&detail::to_certificate_decoder, &decoder};
    }
    result end() noexcept {
      if (!in_certificate) return {};
      if (self.anchor_count_ == self.max_anchors_) return result::failure("client CA: more certificates than max_trust_anchors");
      if (br_x509_decoder_last_error(&decoder) != 0) return result::failure("client CA: a CERTIFICATE does not decode as X.509");
      br_x509_trust_anchor& anchor = self.anchors_[self.anchor_count_];
      anchor.dn.data = self.anchor_bytes_ + dn_start;
      anchor.dn.len = sink.used - dn_start;
      anchor.flags = br_x509_decoder_isCA(&decoder) ? BR_X509_TA_CA : 0;
      const br_x509_pkey& key = *br_x509_decoder_get_pkey(&decoder);
      anchor.pkey.key_type = key.key_type;
      if (key.key_type == BR_KEYTYPE_RSA) {
        anchor.pkey.key.rsa.n = copy_part(sink, key.key.rsa.n, anchor.pkey.key.rsa.nlen = key.key.rsa.nlen);
        anchor.pkey.key.rsa.e = copy_part(sink, key.key.rsa.e, anchor.pkey.key.rsa.elen = key.key.rsa.elen);
      } else {
        anchor.pkey.key.ec.curve = key.key.ec.curve;
        anchor.pkey.key.ec.q = copy_part(sink, key.key.ec.q, anchor.pkey.key.ec.qlen = key.key.ec.qlen);
      }
      if (sink.overflow) return result::failure("client CA: larger than trust_anchor_bytes");
      ++self.anchor_count_;
      return {};
    }
  };

  template <class Read>
  result load_anchors_with(Read read) noexcept {
    anchor_count_ = 0;
    anchor_visitor visitor{*this, {anchor_bytes_, anchor_capacity_, 0, false}, {}, 0, false};
    result outcome = read(visitor);
    if (outcome && anchor_count_ == 0) outcome = result::failure("client CA: no CERTIFICATE in the PEM");
    if (!outcome) anchor_count_ = 0;
    return outcome;
  }

  unsigned char* chain_bytes_;
  std::size_t chain_capacity_;
  br_x509_certificate* certificates_;
  std::size_t max_certificates_;
  std::size_t certificate_count_ = 0;
  unsigned char* anchor_bytes_;
  std::size_t anchor_capacity_;
  br_x509_trust_anchor* anchors_;
  std::size_t max_anchors_;
  std::size_t anchor_count_ = 0;
  int key_type_ = 0;
  int issuer_key_type_ = 0;
  br_rsa_private_key rsa_{};
  br_ec_private_key ec_{};
  unsigned char key_bytes_[key_capacity] = {};
};

template <std::size_t ChainBytes, std::size_t MaxCertificates, std::size_t AnchorBytes, std::size_t MaxAnchors>
class credentials : public credentials_core {
  static_assert(ChainBytes > 0 && MaxCertificates > 0, "a server needs room for its certificate");

 public:
  credentials() noexcept
      : credentials_core(chain_bytes_, ChainBytes, certificates_, MaxCertificates, anchor_bytes_, AnchorBytes,
                         anchors_, MaxAnchors) {}
  credentials(const credentials&) = delete;
  credentials& operator=(const credentials&) = delete;

 private:
  unsigned char chain_bytes_[ChainBytes];
  br_x509_certificate certificates_[MaxCertificates];
  unsigned char anchor_bytes_[AnchorBytes > 0 ? AnchorBytes : 1];
  br_x509_trust_anchor anchors_[MaxAnchors > 0 ? MaxAnchors : 1];
};

}  // namespace sockserv::tls
