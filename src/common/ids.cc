#include "mc/common/ids.h"

#include <cctype>

namespace mc {
namespace {

bool IsHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsRepoChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

Status CheckRepoPart(std::string_view part, std::string_view whole) {
  auto fail = [&](std::string_view why) {
    return InvalidArgumentError("invalid repo id " + QuoteForMessage(whole) + ": " +
                                std::string(why) +
                                " (expected 'name' or 'org/name' with letters, digits, '-', '_', "
                                "'.')");
  };
  if (part.empty()) return fail("empty part");
  for (char c : part) {
    if (!IsRepoChar(c)) return fail("character not allowed");
  }
  if (part.front() == '-' || part.front() == '.' || part.back() == '-' || part.back() == '.') {
    return fail("parts may not start or end with '-' or '.'");
  }
  if (part.find("--") != std::string_view::npos) return fail("'--' is not allowed");
  if (part.find("..") != std::string_view::npos) return fail("'..' is not allowed");
  return Status::Ok();
}

// True if `s` is valid UTF-8 (no overlong forms, no surrogates).
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// Calls check(segment) for each '/'-separated segment of `text`; returns the first non-empty
// complaint, or "" when every segment passes.
template <typename Check>
std::string_view FirstBadSegment(std::string_view text, Check check) {
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('/', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view why = check(text.substr(start, end - start));
    if (!why.empty()) return why;
    start = end + 1;
  }
  return {};
}

}  // namespace

std::string_view RepoTypeName(RepoType type) {
  switch (type) {
    case RepoType::kModel:
      return "model";
    case RepoType::kDataset:
      return "dataset";
    case RepoType::kSpace:
      return "space";
  }
  return "model";
}

std::string_view RepoTypePlural(RepoType type) {
  switch (type) {
    case RepoType::kModel:
      return "models";
    case RepoType::kDataset:
      return "datasets";
    case RepoType::kSpace:
      return "spaces";
  }
  return "models";
}

StatusOr<RepoType> ParseRepoType(std::string_view text) {
  if (text == "model" || text == "models") return RepoType::kModel;
  if (text == "dataset" || text == "datasets") return RepoType::kDataset;
  if (text == "space" || text == "spaces") return RepoType::kSpace;
  return InvalidArgumentError("unknown repo type " + QuoteForMessage(text) +
                              " (expected model, dataset or space)");
}

StatusOr<RepoId> RepoId::Parse(std::string_view id, RepoType type) {
  if (id.size() > 96) {
    return InvalidArgumentError("invalid repo id " + QuoteForMessage(id) +
                                ": longer than 96 characters");
  }
  size_t slash = id.find('/');
  if (slash == std::string_view::npos) {
    MC_RETURN_IF_ERROR(CheckRepoPart(id, id));
  } else {
    if (id.find('/', slash + 1) != std::string_view::npos) {
      return InvalidArgumentError("invalid repo id " + QuoteForMessage(id) +
                                  ": at most one '/' (expected 'org/name')");
    }
    MC_RETURN_IF_ERROR(CheckRepoPart(id.substr(0, slash), id));
    MC_RETURN_IF_ERROR(CheckRepoPart(id.substr(slash + 1), id));
  }
  return RepoId(type, std::string(id));
}

StatusOr<RepoId> RepoId::FromFolderName(std::string_view folder) {
  size_t sep = folder.find("--");
  if (sep == std::string_view::npos) {
    return InvalidArgumentError("not a repo folder name: " + QuoteForMessage(folder));
  }
  std::string_view prefix = folder.substr(0, sep);
  if (prefix != "models" && prefix != "datasets" && prefix != "spaces") {
    return InvalidArgumentError("not a repo folder name (unknown type): " +
                                QuoteForMessage(folder));
  }
  MC_ASSIGN_OR_RETURN(RepoType type, ParseRepoType(prefix));
  std::string rest(folder.substr(sep + 2));
  std::string id;
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest.compare(i, 2, "--") == 0) {
      id += '/';
      ++i;
    } else {
      id += rest[i];
    }
  }
  MC_ASSIGN_OR_RETURN(RepoId repo, Parse(id, type));
  // Only the exact folder name of a repo ("models--o/m" would otherwise be models--o--m).
  if (repo.FolderName() != folder) {
    return InvalidArgumentError("not a repo folder name: " + QuoteForMessage(folder));
  }
  return repo;
}

std::string RepoId::FolderName() const {
  std::string out(RepoTypePlural(type_));
  out += "--";
  for (char c : id_) {
    if (c == '/') {
      out += "--";
    } else {
      out += c;
    }
  }
  return out;
}

std::string_view RepoId::UrlPrefix() const {
  switch (type_) {
    case RepoType::kModel:
      return "";
    case RepoType::kDataset:
      return "datasets/";
    case RepoType::kSpace:
      return "spaces/";
  }
  return "";
}

std::string RepoId::ApiPath() const {
  std::string out(RepoTypePlural(type_));
  out += '/';
  out += id_;
  return out;
}

bool CommitSha::IsValid(std::string_view text) { return text.size() == 40 && IsHex(text); }

StatusOr<CommitSha> CommitSha::Parse(std::string_view text) {
  if (!IsValid(text)) {
    return InvalidArgumentError("invalid commit sha " + QuoteForMessage(text) +
                                ": expected 40 lowercase hex characters");
  }
  return CommitSha(std::string(text));
}

StatusOr<Revision> Revision::Parse(std::string_view text) {
  auto fail = [&](std::string_view why) {
    return InvalidArgumentError("invalid revision " + QuoteForMessage(text) + ": " +
                                std::string(why));
  };
  if (text.empty()) return fail("empty");
  if (text.size() > 255) return fail("longer than 255 bytes");
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F || c == ' ' || c == '~' || c == '^' || c == ':' || c == '?' ||
        c == '*' || c == '[' || c == '\\') {
      return fail("contains a character not allowed in a git ref name");
    }
  }
  if (text.find("..") != std::string_view::npos) return fail("'..' is not allowed");
  if (text.find("@{") != std::string_view::npos) return fail("'@{' is not allowed");
  if (text.front() == '/' || text.back() == '/') return fail("may not start or end with '/'");
  if (text.back() == '.') return fail("may not end with '.'");
  std::string_view bad = FirstBadSegment(text, [](std::string_view seg) -> std::string_view {
    if (seg.empty()) return "empty path segment";
    if (seg.front() == '.') return "a segment may not start with '.'";
    if (seg.ends_with(".lock")) return "a segment may not end with '.lock'";
    return {};
  });
  if (!bad.empty()) return fail(bad);
  if (!IsValidUtf8(text)) return fail("not valid UTF-8");
  return Revision(std::string(text));
}

StatusOr<Etag> Etag::Parse(std::string_view text) {
  std::string_view v = text;
  while (!v.empty() && (v.front() == 'W' || v.front() == '/')) v.remove_prefix(1);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  std::string lower;
  lower.reserve(v.size());
  for (char c : v) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if ((lower.size() != 40 && lower.size() != 64) || !IsHex(lower)) {
    return InvalidArgumentError("invalid etag " + QuoteForMessage(text) +
                                ": expected 40 (git sha1) or 64 (sha256) hex characters");
  }
  return Etag(std::move(lower));
}

StatusOr<RepoFilePath> RepoFilePath::Parse(std::string_view text) {
  auto fail = [&](std::string_view why) {
    return InvalidArgumentError("invalid file path " + QuoteForMessage(text) + ": " +
                                std::string(why));
  };
  if (text.empty()) return fail("empty");
  if (text.size() > 4096) return fail("longer than 4096 bytes");
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '\0') return fail("contains NUL");
    if (c == '\\') return fail("contains a backslash");
    if (u < 0x20 || u == 0x7F) return fail("contains a control character");
  }
  if (text.front() == '/') return fail("absolute paths are not allowed");
  if (text.size() >= 2 && text[1] == ':' && std::isalpha(static_cast<unsigned char>(text[0]))) {
    return fail("drive paths are not allowed");
  }
  std::string_view bad = FirstBadSegment(text, [](std::string_view seg) -> std::string_view {
    if (seg.empty()) return "empty path segment";
    if (seg == "." || seg == "..") return "'.' and '..' segments are not allowed";
    if (seg.size() > 255) return "a segment is longer than 255 bytes";
    return {};
  });
  if (!bad.empty()) return fail(bad);
  if (!IsValidUtf8(text)) return fail("not valid UTF-8");
  return RepoFilePath(std::string(text));
}

int RepoFilePath::Depth() const {
  int n = 0;
  for (char c : path_) n += (c == '/');
  return n;
}

std::string QuoteForMessage(std::string_view text) {
  constexpr size_t kMax = 120;
  std::string out = "'";
  size_t n = 0;
  for (char c : text) {
    if (n++ >= kMax) {
      out += "...";
      break;
    }
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F && c != '\'' && c != '\\') {
      out += c;
    } else {
      static const char* kHex = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  out += "'";
  return out;
}

}  // namespace mc
