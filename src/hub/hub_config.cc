#include "mc/hub/hub_config.h"

#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <vector>

#include "mc/common/ids.h"

namespace mc::hub {
namespace {

constexpr size_t kMaxTokenFileBytes = 64 * 1024;

// Set and non-empty.
std::optional<std::string> GetNonEmpty(const Env& env, std::string_view name) {
  std::optional<std::string> v = env.get(name);
  if (v.has_value() && v->empty()) return std::nullopt;
  return v;
}

std::optional<std::string> HomeFromPasswd() {
  long size = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(size > 0 ? static_cast<size_t>(size) : 16384);
  struct passwd pw;
  struct passwd* result = nullptr;
  if (getpwuid_r(getuid(), &pw, buf.data(), buf.size(), &result) != 0 || result == nullptr ||
      result->pw_dir == nullptr) {
    return std::nullopt;
  }
  return std::string(result->pw_dir);
}

bool IsVarNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Removes every CR and LF; validates what is left. `source` names where it came from, for errors.
StatusOr<std::optional<HubToken>> CleanToken(std::string raw, std::string source) {
  std::string value;
  value.reserve(raw.size());
  for (char c : raw) {
    if (c != '\r' && c != '\n') value += c;
  }
  Secret wipe_raw(std::move(raw));  // the moved-from buffer is wiped by Secret's destructor
  if (value.empty()) return std::optional<HubToken>();
  for (char c : value) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7F) {
      Secret wipe(std::move(value));
      return InvalidArgumentError("the token from " + source +
                                  " contains control or non-ASCII characters");
    }
  }
  return std::optional<HubToken>(HubToken{Secret(std::move(value)), std::move(source)});
}

StatusOr<std::string> ReadTokenFile(const std::filesystem::path& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "open token file " + QuoteForMessage(path.string()));
  std::string data;
  char buf[4096];
  Status status;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = ErrnoError(errno, "read token file " + QuoteForMessage(path.string()));
      break;
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > kMaxTokenFileBytes) {
      status = InvalidArgumentError("token file " + QuoteForMessage(path.string()) +
                                    " is larger than 64 KiB; it does not hold a token");
      break;
    }
  }
  close(fd);
  if (!status.ok()) {
    Secret wipe(std::move(data));
    return status;
  }
  return data;
}

}  // namespace

Env Env::Real() {
  return Env{[](std::string_view name) -> std::optional<std::string> {
    std::string key(name);
    if (const char* v = std::getenv(key.c_str())) return std::string(v);
    if (name == "HOME") return HomeFromPasswd();
    return std::nullopt;
  }};
}

Env Env::FromMap(std::map<std::string, std::string, std::less<>> vars) {
  return Env{[vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  }};
}

StatusOr<std::string> ExpandUserAndVars(std::string_view path, const Env& env) {
  std::string expanded;
  if (path == "~" || path.rfind("~/", 0) == 0) {
    std::optional<std::string> home = env.get("HOME");
    if (!home.has_value() || home->empty()) {
      return FailedPreconditionError("cannot expand '~' in " + QuoteForMessage(path) +
                                     ": no home directory (HOME is not set)");
    }
    std::string_view base = *home;
    // Python: (HOME.rstrip('/') + rest) or '/'.
    while (!base.empty() && base.back() == '/') base.remove_suffix(1);
    expanded = std::string(base) + std::string(path.substr(1));
    if (expanded.empty()) expanded = "/";
  } else {
    expanded = std::string(path);
  }
  std::string out;
  for (size_t i = 0; i < expanded.size();) {
    if (expanded[i] != '$' || i + 1 >= expanded.size()) {
      out += expanded[i++];
      continue;
    }
    size_t name_begin, name_end, next;
    if (expanded[i + 1] == '{') {
      size_t close = expanded.find('}', i + 2);
      if (close == std::string::npos) {
        out += expanded[i++];
        continue;
      }
      name_begin = i + 2;
      name_end = close;
      next = close + 1;
    } else {
      name_begin = i + 1;
      name_end = name_begin;
      while (name_end < expanded.size() && IsVarNameChar(expanded[name_end])) ++name_end;
      next = name_end;
    }
    std::optional<std::string> value;
    if (name_end > name_begin) value = env.get(expanded.substr(name_begin, name_end - name_begin));
    if (value.has_value()) {
      out += *value;
    } else {
      out.append(expanded, i, next - i);
    }
    i = next;
  }
  return out;
}

StatusOr<Endpoint> ResolveEndpoint(const Env& env) {
  std::optional<std::string> value = env.get("HF_ENDPOINT");
  std::string_view text = value.has_value() ? std::string_view(*value) : std::string_view();
  while (!text.empty() && text.back() == '/') text.remove_suffix(1);
  if (text.empty()) return Endpoint::Parse(kDefaultEndpoint);
  auto ep = Endpoint::Parse(text);
  if (!ep.ok()) return ep.status().WithContext("HF_ENDPOINT");
  return ep;
}

StatusOr<std::filesystem::path> ResolveHfHome(const Env& env) {
  std::string raw;
  if (auto home = GetNonEmpty(env, "HF_HOME")) {
    raw = *home;
  } else if (auto xdg = GetNonEmpty(env, "XDG_CACHE_HOME")) {
    raw = (std::filesystem::path(*xdg) / "huggingface").string();
  } else {
    raw = "~/.cache/huggingface";
  }
  MC_ASSIGN_OR_RETURN(std::string expanded, ExpandUserAndVars(raw, env), "HF_HOME");
  return std::filesystem::path(expanded);
}

StatusOr<std::filesystem::path> ResolveHubCacheDir(const Env& env) {
  std::optional<std::string> raw = GetNonEmpty(env, "HF_HUB_CACHE");
  if (!raw) raw = GetNonEmpty(env, "HUGGINGFACE_HUB_CACHE");
  if (!raw) {
    MC_ASSIGN_OR_RETURN(std::filesystem::path home, ResolveHfHome(env));
    return home / "hub";
  }
  MC_ASSIGN_OR_RETURN(std::string expanded, ExpandUserAndVars(*raw, env), "HF_HUB_CACHE");
  return std::filesystem::path(expanded);
}

StatusOr<std::filesystem::path> ResolveTokenPath(const Env& env) {
  std::optional<std::string> raw = GetNonEmpty(env, "HF_TOKEN_PATH");
  if (!raw) {
    MC_ASSIGN_OR_RETURN(std::filesystem::path home, ResolveHfHome(env));
    return home / "token";
  }
  MC_ASSIGN_OR_RETURN(std::string expanded, ExpandUserAndVars(*raw, env), "HF_TOKEN_PATH");
  return std::filesystem::path(expanded);
}

StatusOr<std::optional<HubToken>> ResolveToken(
    const Env& env, const std::optional<std::filesystem::path>& explicit_token_file) {
  if (explicit_token_file.has_value()) {
    MC_ASSIGN_OR_RETURN(std::string raw, ReadTokenFile(*explicit_token_file));
    return CleanToken(std::move(raw),
                      "token file " + QuoteForMessage(explicit_token_file->string()));
  }
  for (const char* name : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"}) {
    if (std::optional<std::string> raw = GetNonEmpty(env, name)) {
      MC_ASSIGN_OR_RETURN(std::optional<HubToken> token, CleanToken(std::move(*raw), name));
      if (token.has_value()) return token;
      break;  // Python: `HF_TOKEN or HUGGING_FACE_HUB_TOKEN`, then the file if that cleans to ""
    }
  }
  MC_ASSIGN_OR_RETURN(std::filesystem::path path, ResolveTokenPath(env));
  StatusOr<std::string> raw = ReadTokenFile(path);
  if (!raw.ok()) {
    if (raw.status().code() == StatusCode::kNotFound) return std::optional<HubToken>();
    return raw.status();
  }
  return CleanToken(*std::move(raw), "token file " + QuoteForMessage(path.string()));
}

bool IsEnvTrue(std::optional<std::string_view> value) {
  if (!value.has_value()) return false;
  std::string upper(*value);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return upper == "1" || upper == "ON" || upper == "YES" || upper == "TRUE";
}

bool IsOffline(const Env& env) {
  std::optional<std::string> v = GetNonEmpty(env, "HF_HUB_OFFLINE");
  if (!v) v = env.get("TRANSFORMERS_OFFLINE");
  return IsEnvTrue(v);
}

StatusOr<HubConfig> ResolveHubConfig(
    const Env& env, const std::optional<std::filesystem::path>& explicit_token_file) {
  MC_ASSIGN_OR_RETURN(Endpoint endpoint, ResolveEndpoint(env));
  MC_ASSIGN_OR_RETURN(std::filesystem::path hf_home, ResolveHfHome(env));
  MC_ASSIGN_OR_RETURN(std::filesystem::path cache, ResolveHubCacheDir(env));
  MC_ASSIGN_OR_RETURN(std::filesystem::path token_path, ResolveTokenPath(env));
  MC_ASSIGN_OR_RETURN(std::optional<HubToken> token, ResolveToken(env, explicit_token_file));
  return HubConfig{std::move(endpoint),   std::move(hf_home), std::move(cache),
                   std::move(token_path), std::move(token),   IsOffline(env)};
}

}  // namespace mc::hub
