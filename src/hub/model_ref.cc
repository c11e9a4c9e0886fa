#include "mc/hub/model_ref.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <vector>

#include "mc/net/url.h"

namespace mc::hub {
namespace {

constexpr size_t kMaxInputBytes = 8192;
constexpr std::array<std::string_view, 4> kHubHosts = {"huggingface.co", "www.huggingface.co",
                                                       "hf.co", "www.hf.co"};
// Top-level website paths that are not repositories.
constexpr std::array<std::string_view, 13> kSitePages = {
    "api",   "docs",  "blog",   "settings",      "login", "join",       "pricing",
    "posts", "learn", "papers", "organizations", "new",   "collections"};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

template <size_t N>
bool Contains(const std::array<std::string_view, N>& set, std::string_view s) {
  for (std::string_view e : set) {
    if (e == s) return true;
  }
  return false;
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool IsPathKeyword(std::string_view s) { return s == "tree" || s == "blob" || s == "resolve"; }

// Carries the original input so that every error can show it.
class Parser {
 public:
  Parser(std::string_view input, RepoType default_type) : input_(input), type_(default_type) {}

  StatusOr<ModelRef> Run();

 private:
  Status Fail(std::string_view why) const {
    return InvalidArgumentError(
        "invalid model reference " + QuoteForMessage(input_) + ": " + std::string(why) +
        " (expected 'org/name', 'org/name@revision' or a https://huggingface.co/org/name URL)");
  }
  Status Context(const Status& s) const {
    return s.WithContext("invalid model reference " + QuoteForMessage(input_));
  }

  // Returns the URL path (after the host, without query or fragment) or, for a bare reference,
  // the text itself. Sets is_url_.
  StatusOr<std::string_view> StripUrl(std::string_view text);
  // Everything after StripUrl.
  StatusOr<ModelRef> ParseRef(std::string_view path);
  Status CheckAuthority(std::string_view authority) const;
  // Splits into segments_ and consumes a type prefix; returns the index of the repo id.
  StatusOr<size_t> SplitPath(std::string_view path);
  // Parses the repo id at segments_[i...]; advances i past it. Sets rev_tail_ for '@'/':' forms.
  StatusOr<RepoId> ParseRepo(size_t& i);
  // Parses what follows the repo id: nothing, /tree/<rev>[/dir], /blob|resolve/<rev>/<path>.
  Status ParseSuffix(size_t i, ModelRef& ref) const;
  // Parses "<rev>" or "refs/<kind>/<name>" from segments_[i...]; advances i past it.
  StatusOr<Revision> ParseRevisionSegments(size_t& i) const;
  StatusOr<std::string> JoinDecoded(size_t from) const;

  std::string_view input_;
  RepoType type_;
  bool is_url_ = false;
  std::string_view path_;  // what the segments point into
  std::vector<std::string_view> segments_;
  std::optional<std::string_view> rev_tail_;  // raw text after '@' or ':'
};

StatusOr<std::string_view> Parser::StripUrl(std::string_view text) {
  size_t scheme_end = text.find("://");
  bool has_scheme = scheme_end != std::string_view::npos && scheme_end > 0 &&
                    std::isalpha(static_cast<unsigned char>(text[0]));
  for (size_t i = 0; has_scheme && i < scheme_end; ++i) {
    char c = text[i];
    has_scheme = std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
  }
  std::string_view rest = text;
  if (has_scheme) {
    std::string scheme = Lower(text.substr(0, scheme_end));
    if (scheme != "https" && scheme != "http") {
      return Fail("unsupported URL scheme " + QuoteForMessage(scheme) + ", only http(s)");
    }
    rest = text.substr(scheme_end + 3);
  } else if (!Contains(kHubHosts, Lower(text.substr(0, text.find_first_of("/?#:@"))))) {
    return text;  // a bare reference; "huggingface.co/org/name" (no scheme) goes on as a URL
  }
  is_url_ = true;
  size_t authority_end = rest.find_first_of("/?#");
  MC_RETURN_IF_ERROR(CheckAuthority(rest.substr(0, authority_end)));
  if (authority_end == std::string_view::npos) return std::string_view();
  std::string_view path = rest.substr(authority_end);
  return path.substr(0, path.find_first_of("?#"));
}

Status Parser::CheckAuthority(std::string_view authority) const {
  if (authority.find('@') != std::string_view::npos) {
    return Fail("user info in the URL is not supported");
  }
  std::string_view host = authority.substr(0, authority.find(':'));
  if (!Contains(kHubHosts, Lower(host))) {
    return Fail("host " + QuoteForMessage(authority) + " is not huggingface.co or hf.co");
  }
  if (host.size() != authority.size()) return Fail("a port in the URL is not supported");
  return Status::Ok();
}

StatusOr<std::string> Parser::JoinDecoded(size_t from) const {
  std::string out;
  for (size_t i = from; i < segments_.size(); ++i) {
    auto seg = net::PercentDecode(segments_[i]);
    if (!seg.ok()) return Context(seg.status());
    if (i > from) out += '/';
    out += *seg;
  }
  return out;
}

StatusOr<Revision> Parser::ParseRevisionSegments(size_t& i) const {
  if (i >= segments_.size()) return Fail("a revision is missing after /tree/, /blob/ or /resolve/");
  size_t n = 1;
  if (segments_[i] == "refs") {
    if (i + 2 >= segments_.size()) {
      return Fail("incomplete 'refs/...' revision (expected refs/pr/<n> or refs/convert/<name>)");
    }
    n = 3;
  }
  std::string text;
  for (size_t k = i; k < i + n; ++k) {
    auto seg = net::PercentDecode(segments_[k]);
    if (!seg.ok()) return Context(seg.status());
    text += (k > i ? "/" : "") + *seg;
  }
  i += n;
  auto rev = Revision::Parse(text);
  if (!rev.ok()) return Context(rev.status());
  return rev;
}

StatusOr<size_t> Parser::SplitPath(std::string_view path) {
  if (is_url_ && !path.empty() && path.front() == '/') path.remove_prefix(1);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (path.empty()) return Fail(is_url_ ? "the URL names no repository" : "empty");
  path_ = path;
  for (size_t start = 0;;) {
    size_t end = path.find('/', start);
    segments_.push_back(path.substr(start, end == std::string_view::npos ? end : end - start));
    if (segments_.back().empty()) return Fail("empty path segment ('//')");
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  size_t i = 0;
  if (segments_[0] == "models" || segments_[0] == "datasets" || segments_[0] == "spaces") {
    type_ = ParseRepoType(segments_[0]).value();
    if (segments_.size() == 1) {
      return Fail(QuoteForMessage(segments_[0]) + " must be followed by a repo id");
    }
    i = 1;
  }
  if (segments_[i] == "api") return Fail("Hub API paths (/api/...) are not repositories");
  if (is_url_ && i == 0 && Contains(kSitePages, segments_[0])) {
    return Fail("this Hugging Face page is not a repository");
  }
  return i;
}

StatusOr<RepoId> Parser::ParseRepo(size_t& i) {
  // One segment for legacy ids ("gpt2", "gpt2@main", "gpt2/tree/main"), else two.
  size_t n_parts = 2;
  if (segments_[i].find_first_of("@:") != std::string_view::npos || i + 1 >= segments_.size()) {
    n_parts = 1;
  } else if (IsPathKeyword(segments_[i + 1]) && i + 2 < segments_.size() &&
             !(i + 3 < segments_.size() && IsPathKeyword(segments_[i + 2]))) {
    n_parts = 1;
  }
  std::string repo_text;
  for (size_t k = 0; k < n_parts; ++k) {
    std::string_view seg = segments_[i + k];
    size_t mark = seg.find_first_of("@:");
    if (k > 0) repo_text += '/';
    repo_text += seg.substr(0, mark);
    if (mark != std::string_view::npos) {
      rev_tail_ = path_.substr(static_cast<size_t>(seg.data() - path_.data()) + mark + 1);
      break;
    }
  }
  i += n_parts;
  if (Contains(kHubHosts, Lower(repo_text.substr(0, repo_text.find('/'))))) {
    return Fail("a host name is not a repo id");
  }
  auto repo = RepoId::Parse(repo_text, type_);
  if (!repo.ok()) return Context(repo.status());
  return repo;
}

Status Parser::ParseSuffix(size_t i, ModelRef& ref) const {
  if (i == segments_.size()) return Status::Ok();
  std::string_view keyword = segments_[i];
  if (!IsPathKeyword(keyword)) {
    return Fail("unexpected " + QuoteForMessage(keyword) +
                " after the repo id (only /tree/<rev>, /blob/<rev>/<path> or "
                "/resolve/<rev>/<path> may follow)");
  }
  ++i;
  MC_ASSIGN_OR_RETURN(ref.revision, ParseRevisionSegments(i));
  if (keyword != "tree" && i == segments_.size()) {
    return Fail("a file path is missing after /" + std::string(keyword) + "/<rev>/");
  }
  if (i == segments_.size()) return Status::Ok();
  MC_ASSIGN_OR_RETURN(std::string path, JoinDecoded(i));
  auto file = RepoFilePath::Parse(path);
  if (!file.ok()) return Context(file.status());
  // A tree URL's sub-folder is dropped, but garbage in it is still an error.
  if (keyword != "tree") ref.file = *std::move(file);
  return Status::Ok();
}

StatusOr<ModelRef> Parser::Run() {
  if (input_.size() > kMaxInputBytes) return Fail("longer than 8192 bytes");
  std::string_view text = Trim(input_);
  if (text.empty()) return Fail("empty");
  if (text.front() == '/' || text.front() == '~' || text.rfind("./", 0) == 0 ||
      text.rfind("../", 0) == 0) {
    return Fail("looks like a local path; use 'modelcache import DIR' for folders");
  }
  MC_ASSIGN_OR_RETURN(std::string_view path, StripUrl(text));
  StatusOr<ModelRef> ref = ParseRef(path);
  // "github.com/org/name" and the like: say why rather than "invalid repo id".
  std::string_view head = text.substr(0, text.find('/'));
  if (!ref.ok() && !is_url_ && head.find('.') != std::string_view::npos &&
      std::count(text.begin(), text.end(), '/') >= 2) {
    return Fail("not a huggingface.co or hf.co URL, nor a repo id");
  }
  return ref;
}

StatusOr<ModelRef> Parser::ParseRef(std::string_view path) {
  MC_ASSIGN_OR_RETURN(size_t i, SplitPath(path));
  MC_ASSIGN_OR_RETURN(RepoId repo, ParseRepo(i));
  ModelRef ref{std::move(repo), std::nullopt, std::nullopt};
  if (!rev_tail_.has_value()) {
    MC_RETURN_IF_ERROR(ParseSuffix(i, ref));
    return ref;
  }
  if (rev_tail_->empty()) return Fail("empty revision after '@' or ':'");
  auto decoded = net::PercentDecode(*rev_tail_);
  if (!decoded.ok()) return Context(decoded.status());
  auto rev = Revision::Parse(*decoded);
  if (!rev.ok()) return Context(rev.status());
  ref.revision = *std::move(rev);
  return ref;
}

}  // namespace

StatusOr<ModelRef> ParseModelRef(std::string_view text, RepoType default_type) {
  return Parser(text, default_type).Run();
}

std::string FormatModelRef(const ModelRef& ref) {
  std::string out(ref.repo.UrlPrefix());
  out += ref.repo.id();
  if (ref.file.has_value()) {
    out += "/blob/";
    out += net::PercentEncode(ref.revision ? ref.revision->str() : "main");
    out += '/';
    out += net::PercentEncodePath(ref.file->str());
    return out;
  }
  if (ref.revision.has_value()) {
    out += '@';
    for (char c : ref.revision->str()) {
      if (c == '%') {
        out += "%25";
      } else {
        out += c;
      }
    }
  }
  return out;
}

}  // namespace mc::hub
