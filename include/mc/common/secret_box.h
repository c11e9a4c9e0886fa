// SecretBox: seals short secrets (Hub tokens, registry credentials, worker secret env, host
// credentials) for storage, so that a copy of a database (a backup, a stolen disk, a dump) does
// not hold them in clear. The key lives in its own file, outside the database.
//
// Sealed form: "mcsb1:" + base64url(nonce[12] || ciphertext || tag[16]), AES-256-GCM through
// OpenSSL EVP with a fresh random 96-bit nonce per Seal. "mcsb1:" names the format version, so
// that a later format (or key rotation) can tell old values apart. `context` is authenticated
// data: a value sealed for one context (say "endpoint ep-1 hfToken") does not open in another,
// so a row's secret cannot be pasted into another row.
//
// Key file: 64 hex digits and a newline, mode 0600. FromKeyFile creates it (random key, 0600,
// written to a temporary file then linked into place, so two processes starting together end up
// with the same key and nobody sees half a file) when it is missing, and refuses a file that
// group or others may read (FailedPrecondition naming the file and the chmod to run).
//
// Thread-safe: a SecretBox is immutable after construction.
#pragma once

#include <array>
#include <filesystem>
#include <string>
#include <string_view>

#include "mc/common/status.h"

namespace mc {

class SecretBox {
 public:
  static constexpr std::string_view kPrefix = "mcsb1:";
  using Key = std::array<unsigned char, 32>;

  explicit SecretBox(const Key& key) : key_(key) {}
  SecretBox(const SecretBox&) = default;
  SecretBox& operator=(const SecretBox&) = default;
  ~SecretBox();

  // A box with a fresh random key (tests, and one-off use).
  static SecretBox Random();
  // Reads the key from `path`, or creates the file with a random key if it does not exist
  // (its directory must exist). Errors name the file, never the key.
  static StatusOr<SecretBox> FromKeyFile(const std::filesystem::path& path);

  // The sealed form of `plaintext` (aborts only if OpenSSL cannot encrypt at all).
  std::string Seal(std::string_view plaintext, std::string_view context) const;
  // The plaintext of a sealed value. InvalidArgument if `sealed` is not in the sealed form;
  // DataLoss if it was changed, sealed with another key or for another context.
  StatusOr<std::string> Open(std::string_view sealed, std::string_view context) const;
  // A 256-bit value derived from the key for `label` (HMAC-SHA256(key, label)), base64url: a
  // secret that every holder of the key file computes alike and that is stored nowhere (the
  // controller's fleet peer key). Different labels give independent values; the key cannot be
  // recovered from one.
  std::string Derive(std::string_view label) const;
  // Whether `text` looks sealed (starts with kPrefix); plaintext written before sealing existed
  // does not.
  static bool IsSealed(std::string_view text) { return text.starts_with(kPrefix); }

 private:
  Key key_;
};

}  // namespace mc
