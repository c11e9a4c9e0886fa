#include "agent/registry_access.h"

#include <cctype>
#include <map>
#include <nlohmann/json.hpp>

#include "mc/net/http_client.h"
#include "mc/net/url.h"

namespace mc::agent {
namespace {

using json = nlohmann::json;

// Every manifest type an engine pulls: a registry answers 404 for a type it is not offered.
constexpr const char* kManifestTypes =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

struct Challenge {
  std::string scheme;  // lowercase: "basic", "bearer"
  std::map<std::string, std::string> params;
};

// `Bearer realm="https://a/token",service="r",scope="repository:x:pull"` (RFC 7235; one
// challenge, which is what registries send).
Challenge ParseChallenge(std::string_view text) {
  Challenge c;
  size_t i = 0;
  while (i < text.size() && text[i] == ' ') ++i;
  while (i < text.size() && text[i] != ' ') c.scheme += static_cast<char>(std::tolower(text[i++]));
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',')) ++i;
    std::string key;
    while (i < text.size() && text[i] != '=' && text[i] != ',') {
      key += static_cast<char>(std::tolower(text[i++]));
    }
    if (i >= text.size() || text[i] != '=') continue;
    ++i;
    std::string value;
    if (i < text.size() && text[i] == '"') {
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\' && i + 1 < text.size()) ++i;
        value += text[i];
      }
      ++i;
    } else {
      while (i < text.size() && text[i] != ',') value += text[i++];
    }
    c.params[key] = value;
  }
  return c;
}

std::string Registry(const ImageRef& ref) {
  return ref.domain() == "docker.io" ? "registry-1.docker.io" : ref.domain();
}

Status Refused(const ImageRef& ref, const RegistryAuth* auth, int status) {
  return PermissionDeniedError(
      "the registry " + ref.domain() + " refused " +
      (auth != nullptr ? "this endpoint's registryAuth" : std::string("to serve it without credentials")) +
      " for image " + ref.str() + " (HTTP " + std::to_string(status) +
      "): the image is on this host, but only an endpoint the registry lets read it may run it; "
      "give the endpoint a registryAuth (user and password or token) that the registry accepts");
}

Status NotThere(const ImageRef& ref, const RegistryAuth* auth) {
  return NotFoundError("image " + ref.str() + " was not found in its registry " +
                       (auth != nullptr ? std::string("with this endpoint's registryAuth")
                                        : std::string("without credentials")) +
                       " (a registry may hide a private repository so): check the name and tag, "
                       "or give the endpoint a registryAuth that may read it");
}

Status Unreachable(const ImageRef& ref, const std::string& why) {
  return UnavailableError("cannot ask the registry " + ref.domain() + " whether this endpoint may "
                          "read image " + ref.str() + ": " + why + "; try later");
}

StatusOr<net::HttpClientResponse> Send(net::HttpClient& client, std::string method,
                                       std::string url, net::HeaderMap headers,
                                       const RegistryAccessOptions& options) {
  net::HttpClientRequest r;
  r.method = std::move(method);
  r.url = std::move(url);
  r.headers = std::move(headers);
  r.timeout = options.timeout;
  r.sink = net::BodySink::kMemory;
  r.max_body_bytes = 1 << 20;  // a token reply; a HEAD has no body
  return client.Send(r);
}

// The Bearer token of `challenge` for pulling `ref`, or the error to report.
StatusOr<std::string> FetchToken(net::HttpClient& client, const ImageRef& ref,
                                 const RegistryAuth* auth, const Challenge& challenge,
                                 const RegistryAccessOptions& options) {
  auto realm = challenge.params.find("realm");
  if (realm == challenge.params.end() || realm->second.empty()) {
    return Unreachable(ref, "its 401 names no token realm");
  }
  std::vector<std::pair<std::string, std::string>> query;
  if (auto s = challenge.params.find("service"); s != challenge.params.end()) {
    query.emplace_back("service", s->second);
  }
  query.emplace_back("scope", "repository:" + ref.path() + ":pull");
  const std::string url = realm->second +
                          (realm->second.find('?') == std::string::npos ? "?" : "&") +
                          net::BuildQueryString(query);
  net::HeaderMap headers;
  if (auth != nullptr) {
    headers.Set("Authorization",
                "Basic " + Base64Encode(auth->username + ":" + std::string(auth->password.Reveal())));
  }
  auto reply = Send(client, "GET", url, std::move(headers), options);
  if (!reply.ok()) return Unreachable(ref, "its token service: " + reply.status().message());
  if (reply->status == 401 || reply->status == 403) return Refused(ref, auth, reply->status);
  if (reply->status != 200) {
    return Unreachable(ref, "its token service answered HTTP " + std::to_string(reply->status));
  }
  const json doc = json::parse(reply->body, nullptr, false);
  std::string token;
  if (doc.is_object()) {
    for (const char* key : {"token", "access_token"}) {
      if (doc.contains(key) && doc[key].is_string()) token = doc[key].get<std::string>();
      if (!token.empty()) break;
    }
  }
  if (token.empty()) return Unreachable(ref, "its token service gave no token");
  return token;
}

}  // namespace

Status CheckRegistryAccess(const ImageRef& ref, const RegistryAuth* auth,
                           const RegistryAccessOptions& options) {
  auto client = net::HttpClient::Create();
  const std::string reference = ref.digest().empty() ? ref.tag() : ref.digest();
  const std::string url = std::string(options.insecure ? "http://" : "https://") + Registry(ref) +
                          "/v2/" + ref.path() + "/manifests/" + reference;
  net::HeaderMap headers;
  headers.Set("Accept", kManifestTypes);
  auto reply = Send(*client, "HEAD", url, headers, options);
  if (!reply.ok()) return Unreachable(ref, reply.status().message());
  if (reply->status == 401) {
    const Challenge challenge = ParseChallenge(reply->headers.Get("WWW-Authenticate").value_or(""));
    if (challenge.scheme == "basic") {
      if (auth == nullptr) return Refused(ref, auth, 401);
      headers.Set("Authorization", "Basic " + Base64Encode(auth->username + ":" +
                                                           std::string(auth->password.Reveal())));
    } else if (challenge.scheme == "bearer") {
      MC_ASSIGN_OR_RETURN(std::string token, FetchToken(*client, ref, auth, challenge, options));
      headers.Set("Authorization", "Bearer " + token);
    } else {
      return Refused(ref, auth, 401);
    }
    reply = Send(*client, "HEAD", url, headers, options);
    if (!reply.ok()) return Unreachable(ref, reply.status().message());
  }
  switch (reply->status) {
    case 200:
      return Status::Ok();
    case 401:
    case 403:
      return Refused(ref, auth, reply->status);
    case 404:
      return NotThere(ref, auth);
    default:
      return Unreachable(ref, "it answered HTTP " + std::to_string(reply->status));
  }
}

}  // namespace mc::agent
