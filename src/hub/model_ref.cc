#include "mc/hub/model_ref.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <vector>

#include "mc/hub/url_codec.h"

namespace mc::hub {
namespace {

constexpr size_t kMaxInputBytes = 8192;
constexpr std::array<std::string_view, 4> kHubHosts = {"huggingface.co", "www.huggingface.co",
                                                       "hf.co", "www.hf.co"};
// Top-level website paths that are not repositories.
constexpr std::array<std::string_view, 13> kSitePages = {
    "api",   "docs",     "blog",    "settings",      "login", "join", "pricing",
    "posts", "learn",    "papers",  "organizations", "new",   "collections"};

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

  // Returns the URL path (after the host) or, for a bare reference, the text itself.
  StatusOr<std::string_view> StripUrl(std::string_view text);
  StatusOr<ModelRef> ParsePath(std::string_view path);
  // Parses "<rev>[/rest...]" from segments_[i...] as written after /tree/ or /blob/.
  StatusOr<Revision> ParseRevisionSegments(size_t& i) const;
  StatusOr<std::string> JoinDecoded(size_t from) const;

  std::string_view input_;
  RepoType type_;
  bool is_url_ = false;
  std::vector<std::string_view> segments_;
};

StatusOr<std::string_view> Parser::StripUrl(std::string_view text) {
  std::string_view rest;
  size_t scheme_end = text.find("://");
  bool has_scheme = scheme_end != std::string_view::npos && scheme_end > 0 &&
                    std::isalpha(static_cast<unsigned char>(text[0]));
  for (size_t i = 0; has_scheme && i < scheme_end; ++i) {
    char c = text[i];
    has_scheme = std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
  }
  if (has_scheme) {
    std::string scheme = Lower(text.substr(0, scheme_end));
    if (scheme != "https" && scheme != "http") {
      return Fail("unsupported URL scheme " + QuoteForMessage(scheme) + ", only http(s)");
    }
    rest = text.substr(scheme_end + 3);
  } else {
    // "huggingface.co/org/name" without a scheme.
    std::string_view head = text.substr(0, text.find_first_of("/?#:@"));
    if (!Contains(kHubHosts, Lower(head))) return text;
    rest = text;
  }
  is_url_ = true;
  size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  if (authority.find('@') != std::string_view::npos) {
    return Fail("user info in the URL is not supported");
  }
  if (authority.find(':') != std::string_view::npos) {
    return Fail("a port in the URL is not supported");
  }
  if (!Contains(kHubHosts, Lower(authority))) {
    return Fail("host " + QuoteForMessage(authority) + " is not huggingface.co or hf.co");
  }
  if (authority_end == std::string_view::npos) return std::string_view();
  std::string_view path = rest.substr(authority_end);
  return path.substr(0, path.find_first_of("?#"));
}

StatusOr<std::string> Parser::JoinDecoded(size_t from) const {
  std::string out;
  for (size_t i = from; i < segments_.size(); ++i) {
    auto seg = PercentDecode(segments_[i]);
    if (!seg.ok()) return Context(seg.status());
    if (i > from) out += '/';
    out += *seg;
  }
  return out;
}

StatusOr<Revision> Parser::ParseRevisionSegments(size_t& i) const {
  if (i >= segments_.size()) return Fail("a revision is missing after /tree/, /blob/ or /resolve/");
  std::string text;
  if (segments_[i] == "refs") {
    if (i + 2 >= segments_.size()) {
      return Fail("incomplete 'refs/...' revision (expected refs/pr/<n> or refs/convert/<name>)");
    }
    text = "refs/";
    for (size_t k = i + 1; k <= i + 2; ++k) {
      auto seg = PercentDecode(segments_[k]);
      if (!seg.ok()) return Context(seg.status());
      text += *seg + (k == i + 1 ? "/" : "");
    }
    i += 3;
  } else {
    auto seg = PercentDecode(segments_[i]);
    if (!seg.ok()) return Context(seg.status());
    text = std::move(*seg);
    i += 1;
  }
  auto rev = Revision::Parse(text);
  if (!rev.ok()) return Context(rev.status());
  return rev;
}

StatusOr<ModelRef> Parser::ParsePath(std::string_view path) {
  if (is_url_ && !path.empty() && path.front() == '/') path.remove_prefix(1);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (path.empty()) return Fail(is_url_ ? "the URL names no repository" : "empty");
  std::string_view full_path = path;
  for (size_t start = 0;;) {
    size_t end = path.find('/', start);
    segments_.push_back(path.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  for (std::string_view seg : segments_) {
    if (seg.empty()) return Fail("empty path segment ('//')");
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

  // Repo id: one or two segments, ending at the first '@' or ':' if there is one.
  std::string repo_text;
  std::optional<std::string_view> rev_tail;
  size_t n_parts = 2;
  if (segments_[i].find_first_of("@:") != std::string_view::npos) {
    n_parts = 1;
  } else if (i + 1 >= segments_.size()) {
    n_parts = 1;
  } else if (IsPathKeyword(segments_[i + 1]) && i + 2 < segments_.size() &&
             !(i + 3 < segments_.size() && IsPathKeyword(segments_[i + 2]))) {
    n_parts = 1;
  }
  for (size_t k = 0; k < n_parts; ++k) {
    std::string_view seg = segments_[i + k];
    size_t mark = seg.find_first_of("@:");
    if (k > 0) repo_text += '/';
    repo_text += seg.substr(0, mark);
    if (mark != std::string_view::npos) {
      size_t offset = static_cast<size_t>(seg.data() - full_path.data()) + mark + 1;
      rev_tail = full_path.substr(offset);
      break;
    }
  }
  auto repo = RepoId::Parse(repo_text, type_);
  if (!repo.ok()) return Context(repo.status());
  ModelRef ref{*std::move(repo), std::nullopt, std::nullopt};

  if (rev_tail.has_value()) {
    if (rev_tail->empty()) return Fail("empty revision after '@' or ':'");
    auto decoded = PercentDecode(*rev_tail);
    if (!decoded.ok()) return Context(decoded.status());
    auto rev = Revision::Parse(*decoded);
    if (!rev.ok()) return Context(rev.status());
    ref.revision = *std::move(rev);
    return ref;
  }

  i += n_parts;
  if (i == segments_.size()) return ref;
  std::string_view keyword = segments_[i];
  if (!IsPathKeyword(keyword)) {
    return Fail("unexpected " + QuoteForMessage(keyword) +
                " after the repo id (only /tree/<rev>, /blob/<rev>/<path> or "
                "/resolve/<rev>/<path> may follow)");
  }
  ++i;
  MC_ASSIGN_OR_RETURN(ref.revision, ParseRevisionSegments(i));
  if (keyword == "tree") {
    if (i < segments_.size()) {
      // The sub-folder is not part of the result, but garbage in it is still an error.
      auto subdir = JoinDecoded(i);
      if (!subdir.ok()) return subdir.status();
      auto checked = RepoFilePath::Parse(*subdir);
      if (!checked.ok()) return Context(checked.status());
    }
    return ref;
  }
  if (i == segments_.size()) {
    return Fail("a file path is missing after /" + std::string(keyword) + "/<rev>/");
  }
  MC_ASSIGN_OR_RETURN(std::string file, JoinDecoded(i));
  auto path_id = RepoFilePath::Parse(file);
  if (!path_id.ok()) return Context(path_id.status());
  ref.file = *std::move(path_id);
  return ref;
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
  auto ref = ParsePath(path);
  if (!ref.ok() && !is_url_) {
    // "github.com/org/name" and the like: say why rather than "invalid repo id".
    std::string_view head = text.substr(0, text.find('/'));
    if (text.find('/') != std::string_view::npos && head.find('.') != std::string_view::npos &&
        std::count(text.begin(), text.end(), '/') >= 2) {
      return Fail("not a huggingface.co or hf.co URL, nor a repo id");
    }
  }
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
    out += PercentEncode(ref.revision ? ref.revision->str() : "main", /*keep_slash=*/false);
    out += '/';
    out += PercentEncode(ref.file->str(), /*keep_slash=*/true);
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
