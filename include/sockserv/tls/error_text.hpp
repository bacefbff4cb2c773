// SPDX-License-Identifier: BSL-1.0
// sockserv/tls/error_text.hpp — BearSSL's error codes as sentences.
//
// An engine that fails reports one number (br_ssl_engine_last_error): an
// engine error, an X.509 validation error, or an alert sent or received.
// describe() turns it into what a log reader needs to act on.
#pragma once

#include <bearssl.h>

#include <cstdio>

namespace sockserv::tls {

namespace detail {
inline const char* describe_alert(int alert) noexcept {
  switch (alert) {
    case BR_ALERT_CLOSE_NOTIFY: return "close_notify";
    case BR_ALERT_UNEXPECTED_MESSAGE: return "unexpected_message";
    case BR_ALERT_BAD_RECORD_MAC: return "bad_record_mac";
    case BR_ALERT_RECORD_OVERFLOW: return "record_overflow";
    case BR_ALERT_HANDSHAKE_FAILURE: return "handshake_failure (no cipher suite or curve in common; a TLS 1.3-only client?)";
    case BR_ALERT_BAD_CERTIFICATE: return "bad_certificate";
    case BR_ALERT_UNSUPPORTED_CERTIFICATE: return "unsupported_certificate";
    case BR_ALERT_CERTIFICATE_REVOKED: return "certificate_revoked";
    case BR_ALERT_CERTIFICATE_EXPIRED: return "certificate_expired";
    case BR_ALERT_CERTIFICATE_UNKNOWN: return "certificate_unknown (the client does not trust the server's certificate)";
    case BR_ALERT_ILLEGAL_PARAMETER: return "illegal_parameter";
    case BR_ALERT_UNKNOWN_CA: return "unknown_ca (the client does not trust the server's certificate)";
    case BR_ALERT_ACCESS_DENIED: return "access_denied";
    case BR_ALERT_DECODE_ERROR: return "decode_error";
    case BR_ALERT_DECRYPT_ERROR: return "decrypt_error";
    case BR_ALERT_PROTOCOL_VERSION: return "protocol_version (no TLS version in common)";
    case BR_ALERT_INSUFFICIENT_SECURITY: return "insufficient_security";
    case BR_ALERT_INTERNAL_ERROR: return "internal_error";
    case BR_ALERT_USER_CANCELED: return "user_canceled";
    case BR_ALERT_NO_RENEGOTIATION: return "no_renegotiation";
    case BR_ALERT_UNSUPPORTED_EXTENSION: return "unsupported_extension";
    case BR_ALERT_NO_APPLICATION_PROTOCOL: return "no_application_protocol (no ALPN protocol in common)";
    default: return "an unknown alert";
  }
}

inline const char* describe_code(int code) noexcept {
  switch (code) {
    case BR_ERR_OK: return "no error";
    case BR_ERR_BAD_PARAM: return "bad parameter given to the TLS engine";
    case BR_ERR_BAD_STATE: return "TLS engine used in the wrong state";
    case BR_ERR_UNSUPPORTED_VERSION:
      return "no TLS version from 1.0 to 1.2 offered (a TLS 1.3-only or SSL client, or plaintext on a TLS port?)";
    case BR_ERR_BAD_VERSION: return "record with the wrong protocol version";
    case BR_ERR_BAD_LENGTH: return "record with an impossible length (not TLS: plaintext on a TLS port?)";
    case BR_ERR_TOO_LARGE:
      return "record larger than the I/O buffer (a buffer below BR_SSL_BUFSIZE_MONO needs max_fragment_length)";
    case BR_ERR_BAD_MAC: return "record failed its integrity check (corrupted or forged)";
    case BR_ERR_NO_RANDOM: return "no entropy source for the TLS engine";
    case BR_ERR_UNKNOWN_TYPE: return "not a TLS record (plaintext on a TLS port?)";
    case BR_ERR_UNEXPECTED: return "unexpected handshake message";
    case BR_ERR_BAD_CCS: return "malformed ChangeCipherSpec";
    case BR_ERR_BAD_ALERT: return "malformed alert";
    case BR_ERR_BAD_HANDSHAKE: return "malformed handshake message";
    case BR_ERR_OVERSIZED_ID: return "session ID longer than 32 bytes";
    case BR_ERR_BAD_CIPHER_SUITE: return "no cipher suite in common with the client";
    case BR_ERR_BAD_COMPRESSION: return "the client insists on compression";
    case BR_ERR_BAD_FRAGLEN: return "bad max_fragment_length request";
    case BR_ERR_BAD_SECRENEG: return "secure renegotiation failed";
    case BR_ERR_EXTRA_EXTENSION: return "unexpected extension";
    case BR_ERR_BAD_SNI: return "malformed server name (SNI)";
    case BR_ERR_BAD_HELLO_DONE: return "malformed ServerHelloDone";
    case BR_ERR_LIMIT_EXCEEDED: return "a TLS engine limit was exceeded";
    case BR_ERR_BAD_FINISHED: return "Finished message does not match (wrong keys)";
    case BR_ERR_RESUME_MISMATCH: return "session resumption mismatch";
    case BR_ERR_INVALID_ALGORITHM: return "unsupported or invalid algorithm";
    case BR_ERR_BAD_SIGNATURE: return "bad signature (the client's CertificateVerify)";
    case BR_ERR_WRONG_KEY_USAGE: return "key usage of the certificate forbids this use";
    case BR_ERR_NO_CLIENT_AUTH: return "the client sent no certificate, and one is required";
    case BR_ERR_IO: return "transport I/O error";
    case BR_ERR_X509_TRUNCATED: return "client certificate truncated";
    case BR_ERR_X509_EMPTY_CHAIN: return "the client sent no certificate, and one is required";
    case BR_ERR_X509_BAD_TIME: return "client certificate has a malformed validity time";
    case BR_ERR_X509_UNSUPPORTED: return "client certificate uses an unsupported feature";
    case BR_ERR_X509_LIMIT_EXCEEDED: return "client certificate chain exceeds a decoder limit";
    case BR_ERR_X509_WRONG_KEY_TYPE: return "client certificate key type does not match";
    case BR_ERR_X509_BAD_SIGNATURE: return "client certificate signature is invalid";
    case BR_ERR_X509_TIME_UNKNOWN: return "no clock to check the client certificate's validity";
    case BR_ERR_X509_EXPIRED: return "client certificate expired or not yet valid";
    case BR_ERR_X509_DN_MISMATCH: return "client certificate chain is not in order (issuer/subject mismatch)";
    case BR_ERR_X509_CRITICAL_EXTENSION: return "client certificate has an unsupported critical extension";
    case BR_ERR_X509_NOT_CA: return "client certificate chain has an intermediate that is not a CA";
    case BR_ERR_X509_FORBIDDEN_KEY_USAGE: return "client certificate key usage forbids authentication";
    case BR_ERR_X509_WEAK_PUBLIC_KEY: return "client certificate key is too weak";
    case BR_ERR_X509_NOT_TRUSTED: return "client certificate is not signed by a trusted CA";
    default:
      if (code > BR_ERR_X509_OK && code < 64) return "client certificate is malformed";
      return "TLS engine error";
  }
}
}  // namespace detail

// One line for a BearSSL engine error code, written into text.
inline const char* describe(int code, char* text, std::size_t size) noexcept {
  if (code >= BR_ERR_SEND_FATAL_ALERT)
    std::snprintf(text, size, "sent alert %s", detail::describe_alert(code - BR_ERR_SEND_FATAL_ALERT));
  else if (code >= BR_ERR_RECV_FATAL_ALERT)
    std::snprintf(text, size, "the client sent alert %s", detail::describe_alert(code - BR_ERR_RECV_FATAL_ALERT));
  else
    std::snprintf(text, size, "%s", detail::describe_code(code));
  return text;
}

}  // namespace sockserv::tls
