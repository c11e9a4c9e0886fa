// Where the Hub is, where its cache lives and which token to send: the environment-variable rules
// of huggingface_hub (hf-hub-protocol.md §1.1), so that `modelcache` and the official clients agree
// on the same machine.
//
// The environment is injected (Env) so tests never touch the process environment. Everything here
// is a pure function of the Env and, for tokens, of the token file; thread-safe if Env::get is.
// Paths are returned as resolved by Python (expanded, not made absolute or canonical).
//
// One deliberate difference from Python: a variable set to the empty string counts as unset for
// HF_HOME, XDG_CACHE_HOME, HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE and HF_TOKEN_PATH (Python would use
// "" and put the cache in the current directory).
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "mc/common/status.h"
#include "mc/hub/endpoint.h"
#include "mc/hub/secret.h"

namespace mc::hub {

struct Env {
  // Value of an environment variable, nullopt when unset.
  std::function<std::optional<std::string>(std::string_view name)> get;

  // The process environment (getenv). For "HOME" it falls back to the password database when the
  // variable is unset, as Python's expanduser does.
  static Env Real();
  // A fixed environment, for tests and for resolving on behalf of another process.
  static Env FromMap(std::map<std::string, std::string, std::less<>> vars);
};

// Python's os.path.expanduser then os.path.expandvars (POSIX): a leading "~" or "~/" becomes
// $HOME; "~user" is left as is; "$NAME" and "${NAME}" (NAME = [A-Za-z0-9_]+, or anything but '}'
// in braces) are replaced when set and left unchanged when not. Not recursive.
// kFailedPrecondition if "~" must be expanded and no home directory is known.
StatusOr<std::string> ExpandUserAndVars(std::string_view path, const Env& env);

// HF_ENDPOINT with trailing '/' removed, else https://huggingface.co. kInvalidArgument (naming
// HF_ENDPOINT) if it is set but not http(s)://host[:port][/path].
StatusOr<Endpoint> ResolveEndpoint(const Env& env);

// HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface; expanded.
StatusOr<std::filesystem::path> ResolveHfHome(const Env& env);

// HF_HUB_CACHE, else legacy HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub; expanded.
StatusOr<std::filesystem::path> ResolveHubCacheDir(const Env& env);

// HF_TOKEN_PATH, else $HF_HOME/token; expanded.
StatusOr<std::filesystem::path> ResolveTokenPath(const Env& env);

struct HubToken {
  Secret secret;
  // Where it came from, safe to show: "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "token file <path>".
  std::string source;
};

// The token to send, in huggingface_hub's order:
//   1. `explicit_token_file` when given (kNotFound if it does not exist: the user asked for it);
//   2. HF_TOKEN, or HUGGING_FACE_HUB_TOKEN when HF_TOKEN is unset or empty;
//   3. the token file (ResolveTokenPath); a missing file means no token.
// Every CR and LF is removed; an empty result means "no token" and resolution goes on to the next
// source. Returns nullopt when no source has a token. Errors: kInvalidArgument if a token contains
// other control or non-ASCII characters (it could not go into an HTTP header), or a token file is
// larger than 64 KiB; errno-mapped codes for an unreadable file. No error message contains the
// token.
StatusOr<std::optional<HubToken>> ResolveToken(
    const Env& env, const std::optional<std::filesystem::path>& explicit_token_file = std::nullopt);

// huggingface_hub's _is_true: the upper-cased value is 1, ON, YES or TRUE. nullopt is false.
bool IsEnvTrue(std::optional<std::string_view> value);

// HF_HUB_OFFLINE, or TRANSFORMERS_OFFLINE when HF_HUB_OFFLINE is unset or empty, is true.
bool IsOffline(const Env& env);

// All of the above at once, e.g. for a CLI command start-up.
struct HubConfig {
  Endpoint endpoint;
  std::filesystem::path hf_home;
  std::filesystem::path hub_cache_dir;
  std::filesystem::path token_path;
  std::optional<HubToken> token;
  bool offline = false;
};

StatusOr<HubConfig> ResolveHubConfig(
    const Env& env, const std::optional<std::filesystem::path>& explicit_token_file = std::nullopt);

}  // namespace mc::hub
