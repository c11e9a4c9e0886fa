#include "mirror/access_control.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mc/cache/blob_hasher.h"
#include "mc/common/constant_time.h"

namespace mc::mirror {
namespace {

using nlohmann::json;

bool IsLowerHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

StatusOr<RepoId> ParseRepoKey(std::string_view key) {
  RepoType type = RepoType::kModel;
  for (RepoType t : {RepoType::kModel, RepoType::kDataset, RepoType::kSpace}) {
    std::string prefix = std::string(RepoTypePlural(t)) + "/";
    if (key.starts_with(prefix)) {
      type = t;
      key.remove_prefix(prefix.size());
      break;
    }
  }
  return RepoId::Parse(key, type);
}

Status ParseGated(const json& value, RepoAccessRule& rule) {
  if (value.is_boolean()) {
    rule.gated = value.get<bool>() ? "manual" : "";
  } else if (value.is_string() && (value == "auto" || value == "manual")) {
    rule.gated = value.get<std::string>();
  } else {
    return InvalidArgumentError("\"gated\" must be false, \"auto\" or \"manual\"");
  }
  return Status::Ok();
}

Status ParseTokens(const json& value, RepoAccessRule& rule) {
  if (!value.is_array()) return InvalidArgumentError("\"tokens\" must be an array of strings");
  for (size_t i = 0; i < value.size(); ++i) {
    const json& t = value[i];
    if (!t.is_string() || t.get<std::string>().empty()) {
      return InvalidArgumentError("tokens[" + std::to_string(i) + "] must be a non-empty string");
    }
    std::string text = t.get<std::string>();
    if (text.starts_with("sha256:")) {
      std::string hex = text.substr(7);
      // Never echo the entry: it may be a plaintext token that merely looks like a digest.
      if (!IsLowerHex64(hex)) {
        return InvalidArgumentError("tokens[" + std::to_string(i) +
                                    "]: \"sha256:\" must be followed by 64 lowercase hex digits");
      }
      rule.token_sha256.push_back(std::move(hex));
    } else {
      rule.token_sha256.push_back(cache::Sha256Hex(text));
    }
  }
  return Status::Ok();
}

StatusOr<RepoAccessRule> ParseRule(const json& value) {
  if (!value.is_object()) return InvalidArgumentError("must be an object");
  RepoAccessRule rule;
  for (const auto& [field, v] : value.items()) {
    if (field == "gated") {
      MC_RETURN_IF_ERROR(ParseGated(v, rule));
    } else if (field == "private" || field == "disabled") {
      if (!v.is_boolean()) return InvalidArgumentError("\"" + field + "\" must be true or false");
      (field == "private" ? rule.is_private : rule.disabled) = v.get<bool>();
    } else if (field == "tokens") {
      MC_RETURN_IF_ERROR(ParseTokens(v, rule));
    } else {
      return InvalidArgumentError("unknown field " + QuoteForMessage(field) +
                                  " (expected gated, private, disabled, tokens)");
    }
  }
  return rule;
}

}  // namespace

StatusOr<AccessConfig> AccessConfig::Parse(std::string_view text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgumentError("not valid JSON");
  if (!doc.is_object() || !doc.contains("repos") || !doc["repos"].is_object()) {
    return InvalidArgumentError("expected an object with a \"repos\" object");
  }
  for (const auto& [field, v] : doc.items()) {
    if (field != "repos") return InvalidArgumentError("unknown field " + QuoteForMessage(field));
  }
  AccessConfig config;
  for (const auto& [key, value] : doc["repos"].items()) {
    MC_ASSIGN_OR_RETURN(RepoId repo, ParseRepoKey(key), "repos key");
    MC_ASSIGN_OR_RETURN(RepoAccessRule rule, ParseRule(value), "repos." + QuoteForMessage(key));
    config.rules_[repo] = std::move(rule);
  }
  return config;
}

StatusOr<AccessConfig> AccessConfig::Load(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return NotFoundError("access config " + file.string() + ": cannot open");
  std::stringstream buffer;
  buffer << in.rdbuf();
  MC_ASSIGN_OR_RETURN(AccessConfig config, Parse(buffer.str()), "access config " + file.string());
  return config;
}

const RepoAccessRule* AccessConfig::Find(const RepoId& repo) const {
  auto it = rules_.find(repo);
  return it == rules_.end() ? nullptr : &it->second;
}

AccessDecision AccessConfig::Decide(const RepoId& repo, RouteKind kind,
                                    const std::optional<std::string>& token) const {
  const RepoAccessRule* rule = Find(repo);
  if (rule == nullptr) return AccessDecision::kAllow;
  if (rule->disabled) return AccessDecision::kDisabled;
  if (!rule->is_private && rule->gated.empty()) return AccessDecision::kAllow;
  bool accepted = TokenAccepted(*rule, token);
  if (rule->is_private && !accepted) return AccessDecision::kRepoNotFound;
  if (!rule->gated.empty() && !accepted && kind == RouteKind::kResolve) {
    return AccessDecision::kGated;
  }
  return AccessDecision::kAllow;
}

bool TokenAccepted(const RepoAccessRule& rule, const std::optional<std::string>& token) {
  if (!token || token->empty()) return false;
  const std::string digest = cache::Sha256Hex(*token);
  bool match = false;
  for (const std::string& expected : rule.token_sha256) {
    match |= ConstantTimeEquals(digest, expected);  // every entry is compared, no early exit
  }
  return match;
}

std::optional<std::string> BearerToken(const std::optional<std::string>& authorization) {
  if (!authorization) return std::nullopt;
  std::string_view v = *authorization;
  if (v.size() < 7) return std::nullopt;
  std::string scheme(v.substr(0, 7));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "bearer ") return std::nullopt;
  v.remove_prefix(7);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  return std::string(v);
}

}  // namespace mc::mirror
