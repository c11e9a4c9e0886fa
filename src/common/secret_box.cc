#include "mc/common/secret_box.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

namespace mc {
namespace {

namespace fs = std::filesystem;

constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Base64Url(const std::vector<unsigned char>& in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (in[i] << 16) | (in[i + 1] << 8) | in[i + 2];
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i + 1 == in.size()) {
    const unsigned v = in[i] << 16;
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    const unsigned v = (in[i] << 16) | (in[i + 1] << 8);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
  }
  return out;
}

bool FromBase64Url(std::string_view in, std::vector<unsigned char>& out) {
  if (in.size() % 4 == 1) return false;
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    const char* p = std::char_traits<char>::find(kB64, 64, c);
    if (p == nullptr) return false;
    acc = (acc << 6) | static_cast<unsigned>(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<unsigned char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

std::string Hex(const SecretBox::Key& key) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : key) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

bool ParseHexKey(std::string_view text, SecretBox::Key& key) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  if (text.size() != 64) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < 32; ++i) {
    const int hi = nibble(text[2 * i]), lo = nibble(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    key[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return true;
}

SecretBox::Key RandomKey() {
  SecretBox::Key key;
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) std::abort();
  return key;
}

// Writes a new key to a temporary file beside `path` and links it into place: link(2) fails if
// `path` exists, so of two processes creating the key at once, one wins and the other reads it.
Status CreateKeyFile(const fs::path& path) {
  const fs::path tmp = path.string() + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError(errno, "create secret key file " + tmp.string());
  SecretBox::Key key = RandomKey();
  std::string text = Hex(key) + "\n";
  OPENSSL_cleanse(key.data(), key.size());
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                       ::fsync(fd) == 0;
  const int write_errno = errno;
  OPENSSL_cleanse(text.data(), text.size());
  ::close(fd);
  if (!written) {
    ::unlink(tmp.c_str());
    return ErrnoError(write_errno, "write secret key file " + tmp.string());
  }
  const int linked = ::link(tmp.c_str(), path.c_str());
  const int link_errno = errno;
  ::unlink(tmp.c_str());
  if (linked != 0 && link_errno != EEXIST) {
    return ErrnoError(link_errno, "create secret key file " + path.string());
  }
  return Status::Ok();
}

}  // namespace

SecretBox::~SecretBox() { OPENSSL_cleanse(key_.data(), key_.size()); }

SecretBox SecretBox::Random() { return SecretBox(RandomKey()); }

StatusOr<SecretBox> SecretBox::FromKeyFile(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return ErrnoError(errno, "secret key file " + path.string());
    MC_RETURN_IF_ERROR(CreateKeyFile(path));
    if (::stat(path.c_str(), &st) != 0) {
      return ErrnoError(errno, "secret key file " + path.string());
    }
  }
  if (!S_ISREG(st.st_mode)) {
    return FailedPreconditionError("secret key file " + path.string() + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    return FailedPreconditionError("secret key file " + path.string() +
                                   " may be read by other users: run 'chmod 600 " +
                                   path.string() + "' (and consider the key exposed)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoError(errno, "read secret key file " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  std::string content = text.str();
  Key key;
  const bool ok = ParseHexKey(content, key);
  OPENSSL_cleanse(content.data(), content.size());
  if (!ok) {
    return FailedPreconditionError("secret key file " + path.string() +
                                   " does not hold a key (64 hex digits); restore it from a "
                                   "backup: without it no stored secret can be read");
  }
  SecretBox box(key);
  OPENSSL_cleanse(key.data(), key.size());
  return box;
}

std::string SecretBox::Seal(std::string_view plaintext, std::string_view context) const {
  std::vector<unsigned char> out(kNonceBytes + plaintext.size() + kTagBytes);
  if (RAND_bytes(out.data(), kNonceBytes) != 1) std::abort();
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  const bool ok =
      ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), out.data()) &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(context.data()),
                        static_cast<int>(context.size())) &&
      EVP_EncryptUpdate(ctx.get(), out.data() + kNonceBytes, &len,
                        reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) &&
      EVP_EncryptFinal_ex(ctx.get(), out.data() + kNonceBytes + len, &len) &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                          out.data() + kNonceBytes + plaintext.size());
  if (!ok) std::abort();  // AES-GCM with a valid key cannot fail short of a broken OpenSSL
  return std::string(kPrefix) + Base64Url(out);
}

StatusOr<std::string> SecretBox::Open(std::string_view sealed, std::string_view context) const {
  if (!IsSealed(sealed)) return InvalidArgumentError("not a sealed secret");
  std::vector<unsigned char> raw;
  if (!FromBase64Url(sealed.substr(kPrefix.size()), raw) || raw.size() < kNonceBytes + kTagBytes) {
    return DataLossError("a sealed secret is damaged");
  }
  const size_t n = raw.size() - kNonceBytes - kTagBytes;
  std::string plain(n, '\0');
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  const bool ok =
      ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), raw.data()) &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(context.data()),
                        static_cast<int>(context.size())) &&
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len,
                        raw.data() + kNonceBytes, static_cast<int>(n)) &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes,
                          raw.data() + kNonceBytes + n) &&
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + len, &len);
  if (!ok) {
    OPENSSL_cleanse(plain.data(), plain.size());
    return DataLossError(
        "a sealed secret does not open with this key: it was changed, or sealed with another "
        "secret key file");
  }
  return plain;
}

std::string SecretBox::Derive(std::string_view label) const {
  std::vector<unsigned char> mac(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
           reinterpret_cast<const unsigned char*>(label.data()), label.size(), mac.data(),
           &len) == nullptr) {
    std::abort();  // HMAC-SHA256 cannot fail short of a broken OpenSSL
  }
  mac.resize(len);
  std::string out = Base64Url(mac);
  OPENSSL_cleanse(mac.data(), mac.size());
  return out;
}

}  // namespace mc
