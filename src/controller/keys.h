// Random ids and keys, and their SHA-256 (API keys and worker keys are stored hashed only).
#pragma once

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace mc::controller {

// `n` characters of [a-z0-9] from OpenSSL's CSPRNG (ids, and keys: they must not be guessable).
// Bytes >= 252 are skipped so that every character is equally likely. Thread-safe.
inline std::string RandomAlnum(size_t n) {
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  out.reserve(n);
  unsigned char buf[64];
  while (out.size() < n) {
    if (RAND_bytes(buf, sizeof buf) != 1) std::abort();  // no entropy: never hand out weak keys
    for (unsigned char b : buf) {
      if (b < 252 && out.size() < n) out += kChars[b % 36];
    }
  }
  return out;
}

// Lowercase hex SHA-256 of `text`.
inline std::string Sha256Hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

}  // namespace mc::controller
