// HubClient over net::HttpClient (libcurl easy handles from a small pool).
#include "mc/hub/hub_client.h"

#include <cctype>
#include <charconv>
#include <mutex>
#include <nlohmann/json.hpp>

#include "hub/hub_tree.h"
#include "mc/net/http_client.h"
#include "mc/net/url.h"

namespace mc::hub {
namespace {

using nlohmann::json;

constexpr int kMaxRedirects = 5;
constexpr size_t kMaxTreePages = 100'000;

bool IsRedirect(int status) { return status >= 300 && status < 400; }

// "scheme://authority" of an absolute URL, or nullopt.
std::optional<std::string> OriginPrefix(std::string_view url) {
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  size_t end = url.find_first_of("/?#", sep + 3);
  return std::string(url.substr(0, end));
}

// True when `location` starts with "scheme://" (a query containing "://" does not count).
bool IsAbsolute(std::string_view location) {
  size_t sep = location.find("://");
  if (sep == 0 || sep == std::string_view::npos) return false;
  for (char c : location.substr(0, sep)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

// An absolute http(s) URL with a well-formed origin: the only redirect targets we accept (curl
// would otherwise happily read file:// URLs).
bool IsHttpUrl(std::string_view url) {
  std::optional<std::string> origin = OriginPrefix(url);
  return origin && Endpoint::Parse(*origin).ok();
}

// Where a Location points, relative to `current`. A relative one keeps scheme and host of
// `current` and loses its query, as huggingface_hub does.
StatusOr<std::string> ResolveLocation(const std::string& current, std::string location) {
  if (location.starts_with("//")) location = current.substr(0, current.find(':') + 1) + location;
  if (IsAbsolute(location)) {
    if (!IsHttpUrl(location)) {
      return InvalidArgumentError("redirect to " + QuoteForMessage(location) +
                                  " refused: not an http(s) URL");
    }
    return location;
  }
  std::string path = location.substr(0, location.find_first_of("?#"));
  if (path.empty() || path.front() != '/') path = "/" + path;
  return OriginPrefix(current).value_or("") + path;
}

// Replaces every occurrence of the token in `text` by its redacted form.
std::string Redact(std::string text, const std::optional<Secret>& token) {
  if (!token || token->empty()) return text;
  std::string_view raw = token->Reveal();
  for (size_t pos = text.find(raw); pos != std::string::npos; pos = text.find(raw, pos)) {
    std::string masked = token->ToString();
    text.replace(pos, raw.size(), masked);
    pos += masked.size();
  }
  return text;
}

std::optional<uint64_t> ParseSize(const std::optional<std::string>& text) {
  if (!text || text->empty()) return std::nullopt;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || value > kMaxFileSize) {
    return std::nullopt;
  }
  return value;
}

class HubClientImpl final : public HubClient {
 public:
  explicit HubClientImpl(HubClientOptions options) : options_(std::move(options)) {}

  StatusOr<RepoInfo> GetRepoInfo(const RepoId& repo, const Revision& revision,
                                 HubErrorDetail* detail) override;
  StatusOr<std::vector<TreeFile>> ListTree(const RepoId& repo, const CommitSha& commit,
                                           HubErrorDetail* detail) override;
  StatusOr<FileMetadata> GetFileMetadata(const RepoId& repo, const Revision& revision,
                                         const RepoFilePath& path, HubErrorDetail* detail) override;

 private:
  struct Answer {
    net::HttpClientResponse response;
    std::string url;  // the URL that gave this answer
    bool sent_token = false;
  };
  // One request with the auth rule applied; a transport failure is retried `retries` times.
  StatusOr<Answer> Send(const std::string& method, const std::string& url, int retries);
  // GET following every redirect (API routes), token only to the endpoint's origin.
  StatusOr<Answer> GetJson(const std::string& url);
  std::unique_ptr<net::HttpClient> Acquire();
  void Release(std::unique_ptr<net::HttpClient> client);
  Status Clean(Status status) const {
    return status.ok() ? status : Status(status.code(), Redact(status.message(), options_.token));
  }
  StatusOr<FileMetadata> MetadataFromAnswer(const Answer& answer, const HubRequestSubject& s);

  const HubClientOptions options_;
  std::mutex mu_;
  std::vector<std::unique_ptr<net::HttpClient>> pool_;  // guarded by mu_
};

std::unique_ptr<net::HttpClient> HubClientImpl::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!pool_.empty()) {
      auto client = std::move(pool_.back());
      pool_.pop_back();
      return client;
    }
  }
  return net::HttpClient::Create();
}

void HubClientImpl::Release(std::unique_ptr<net::HttpClient> client) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pool_.size() < 8) pool_.push_back(std::move(client));
}

StatusOr<HubClientImpl::Answer> HubClientImpl::Send(const std::string& method,
                                                    const std::string& url, int retries) {
  net::HttpClientRequest request;
  request.method = method;
  request.url = url;
  request.timeout = options_.metadata_timeout;
  request.max_body_bytes = kMaxJsonBytes;
  request.ca_file = options_.ca_file;
  request.headers.Set("User-Agent", options_.user_agent);
  if (method == "HEAD") request.headers.Set("Accept-Encoding", "identity");
  Answer answer;
  answer.url = url;
  answer.sent_token =
      options_.token && !options_.token->empty() && SameOrigin(url, options_.endpoint);
  if (answer.sent_token) {
    request.headers.Set("Authorization", "Bearer " + std::string(options_.token->Reveal()));
  }
  std::unique_ptr<net::HttpClient> client = Acquire();
  StatusOr<net::HttpClientResponse> response = client->Send(request);
  for (int i = 0;
       i < retries && !response.ok() && response.status().code() == StatusCode::kUnavailable; ++i) {
    response = client->Send(request);
  }
  Release(std::move(client));
  if (!response.ok()) return response.status();
  answer.response = std::move(*response);
  return answer;
}

StatusOr<HubClientImpl::Answer> HubClientImpl::GetJson(const std::string& url) {
  std::string current = url;
  for (int hop = 0; hop <= kMaxRedirects; ++hop) {
    MC_ASSIGN_OR_RETURN(Answer answer, Send("GET", current, /*retries=*/1));
    std::optional<std::string> location = answer.response.headers.Get("Location");
    if (!IsRedirect(answer.response.status) || !location) return answer;
    MC_ASSIGN_OR_RETURN(current, ResolveLocation(current, *location));
  }
  return UnavailableError("too many redirects from " + QuoteForMessage(url));
}

StatusOr<RepoInfo> HubClientImpl::GetRepoInfo(const RepoId& repo, const Revision& revision,
                                              HubErrorDetail* detail) {
  if (detail != nullptr) *detail = HubErrorDetail{};
  std::string url = options_.endpoint.url() + "/api/" + repo.ApiPath() + "/revision/" +
                    net::PercentEncode(revision.str());
  StatusOr<Answer> answer = GetJson(url);
  if (!answer.ok()) return Clean(answer.status().WithContext("repo info"));
  HubRequestSubject subject{repo, revision.str(), std::nullopt, answer->sent_token};
  MC_RETURN_IF_ERROR(Clean(
      HubErrorFromResponse(answer->response.status, answer->response.headers, subject, detail)));
  std::string what = "repo info of " + DescribeRepo(repo);
  json j = json::parse(answer->response.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgumentError(what + ": not a JSON object");
  auto sha = j.find("sha");
  if (sha == j.end() || !sha->is_string()) return InvalidArgumentError(what + ": no sha");
  MC_ASSIGN_OR_RETURN(CommitSha commit, CommitSha::Parse(sha->get<std::string>()), what);
  RepoInfo info{std::move(commit), false, false, {}};
  if (auto g = j.find("gated"); g != j.end()) {
    info.gated = g->is_string() || (g->is_boolean() && g->get<bool>());
  }
  if (auto p = j.find("private"); p != j.end() && p->is_boolean()) info.is_private = p->get<bool>();
  if (auto s = j.find("siblings"); s != j.end() && s->is_array()) {
    for (const json& sibling : *s) {
      auto name = sibling.is_object() ? sibling.find("rfilename") : sibling.end();
      if (sibling.is_object() && name != sibling.end() && name->is_string()) {
        info.siblings.push_back(name->get<std::string>());
      }
    }
  }
  return info;
}

StatusOr<std::vector<TreeFile>> HubClientImpl::ListTree(const RepoId& repo, const CommitSha& commit,
                                                        HubErrorDetail* detail) {
  if (detail != nullptr) *detail = HubErrorDetail{};
  std::string what = "tree of " + DescribeRepo(repo) + " at " + commit.str();
  std::string url = options_.endpoint.url() + "/api/" + repo.ApiPath() + "/tree/" + commit.str() +
                    "?recursive=true&expand=false";
  internal::TreeCollector collector;
  for (size_t page = 0; page < kMaxTreePages; ++page) {
    StatusOr<Answer> answer = GetJson(url);
    if (!answer.ok()) return Clean(answer.status().WithContext(what));
    HubRequestSubject subject{repo, commit.str(), std::nullopt, answer->sent_token};
    MC_RETURN_IF_ERROR(Clean(
        HubErrorFromResponse(answer->response.status, answer->response.headers, subject, detail)));
    MC_RETURN_IF_ERROR(Clean(collector.AddPage(answer->response.body)), what);
    std::optional<std::string> next = internal::NextLink(answer->response.headers);
    if (!next) {
      StatusOr<std::vector<TreeFile>> files = std::move(collector).Finish();
      if (!files.ok()) return Clean(files.status().WithContext(what));
      return files;
    }
    if (!SameOrigin(*next, options_.endpoint)) {
      return InvalidArgumentError(what + ": next page link " + QuoteForMessage(*next) +
                                  " is not on the endpoint's origin; not followed");
    }
    url = *next;
  }
  return InvalidArgumentError(what + ": more than " + std::to_string(kMaxTreePages) + " pages");
}

StatusOr<FileMetadata> HubClientImpl::MetadataFromAnswer(const Answer& answer,
                                                         const HubRequestSubject& s) {
  const net::HeaderMap& h = answer.response.headers;
  std::string what =
      "metadata of " + QuoteForMessage(s.file->str()) + " in " + DescribeRepo(s.repo);
  std::optional<std::string> commit_text = h.Get("X-Repo-Commit");
  if (!commit_text) return InvalidArgumentError(what + ": no X-Repo-Commit header (not a hub?)");
  MC_ASSIGN_OR_RETURN(CommitSha commit, CommitSha::Parse(*commit_text), what);
  std::optional<std::string> etag_text = h.Get("X-Linked-Etag");
  if (!etag_text) etag_text = h.Get("ETag");
  if (!etag_text) return InvalidArgumentError(what + ": no ETag header");
  MC_ASSIGN_OR_RETURN(Etag etag, Etag::Parse(*etag_text), what);
  std::optional<std::string> size_text = h.Get("X-Linked-Size");
  if (!size_text && !IsRedirect(answer.response.status)) size_text = h.Get("Content-Length");
  std::optional<uint64_t> size = ParseSize(size_text);
  if (!size) return InvalidArgumentError(what + ": missing or invalid size (above 2^50?)");
  FileMetadata meta{std::move(commit), std::move(etag), *size, answer.url, true};
  if (IsRedirect(answer.response.status)) meta.download_url = *h.Get("Location");
  meta.same_host = SameOrigin(meta.download_url, options_.endpoint);
  return meta;
}

StatusOr<FileMetadata> HubClientImpl::GetFileMetadata(const RepoId& repo, const Revision& revision,
                                                      const RepoFilePath& path,
                                                      HubErrorDetail* detail) {
  if (detail != nullptr) *detail = HubErrorDetail{};
  std::string url = options_.endpoint.url() + "/" + std::string(repo.UrlPrefix()) + repo.id() +
                    "/resolve/" + net::PercentEncode(revision.str()) + "/" +
                    net::PercentEncodePath(path.str());
  HubRequestSubject subject{repo, revision.str(), path, false};
  for (int hop = 0; hop <= kMaxRedirects; ++hop) {
    StatusOr<Answer> answer = Send("HEAD", url, /*retries=*/0);
    if (!answer.ok()) return Clean(answer.status());
    subject.sent_token = answer->sent_token;
    const net::HttpClientResponse& r = answer->response;
    MC_RETURN_IF_ERROR(Clean(HubErrorFromResponse(r.status, r.headers, subject, detail)));
    std::optional<std::string> location = r.headers.Get("Location");
    if (IsRedirect(r.status) && !location) {
      return InvalidArgumentError("HEAD " + QuoteForMessage(url) + ": redirect without Location");
    }
    if (IsRedirect(r.status)) {
      StatusOr<std::string> target = ResolveLocation(url, *location);
      if (!target.ok()) return Clean(target.status());
      bool relative = !IsAbsolute(*location) && !location->starts_with("//");
      if (relative) {
        url = *target;  // followed by hand; the query is dropped
        continue;
      }
      answer->response.headers.Set("Location", *target);  // not followed: becomes download_url
    }
    StatusOr<FileMetadata> meta = MetadataFromAnswer(*answer, subject);
    if (!meta.ok()) return Clean(meta.status());
    return meta;
  }
  return UnavailableError("HEAD " + QuoteForMessage(url) + ": too many relative redirects");
}

}  // namespace

bool SameOrigin(std::string_view url, const Endpoint& endpoint) {
  std::optional<std::string> origin = OriginPrefix(url);
  if (!origin) return false;
  StatusOr<Endpoint> parsed = Endpoint::Parse(*origin);
  return parsed.ok() && parsed->scheme() == endpoint.scheme() &&
         parsed->host() == endpoint.host() && parsed->port() == endpoint.port();
}

StatusOr<std::unique_ptr<HubClient>> HubClient::Create(HubClientOptions options) {
  for (char c : options.user_agent) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return InvalidArgumentError("user agent has control characters");
  }
  if (options.token) {
    for (char c : options.token->Reveal()) {
      unsigned char u = static_cast<unsigned char>(c);
      if (u <= 0x20 || u >= 0x7f) {
        return InvalidArgumentError("token " + options.token->ToString() +
                                    " has whitespace, control or non-ASCII characters");
      }
    }
  }
  return std::unique_ptr<HubClient>(std::make_unique<HubClientImpl>(std::move(options)));
}

}  // namespace mc::hub
