// ModelRef: what a user means when they paste a model name or a Hugging Face URL.
//
// ParseModelRef() accepts every form people copy from the Hub website, docs, Runpod endpoint
// configs and shell history, and turns it into validated ids (RepoId, Revision, RepoFilePath). It
// does no I/O and is thread-safe. Everything it rejects gets kInvalidArgument with a message that
// says what was expected and shows the (escaped, shortened) input.
//
// Accepted forms (surrounding whitespace is trimmed first):
//   name                                  a one-part (legacy canonical) model id, e.g. gpt2
//   org/name                              a model (or the `default_type`)
//   datasets/org/name, spaces/org/name    type prefix; "models/" is accepted too
//   org/name@rev                          rev may contain '/': org/name@refs/pr/1
//   org/name:rev                          Runpod's modelReferences form
//   https://huggingface.co/<any of the above>
//     also http://, no scheme, hf.co, www.huggingface.co, www.hf.co; host and scheme are
//     case-insensitive; a trailing '/', a ?query and a #fragment are ignored
//   <url>/tree/<rev>[/<subdir>]           revision only; the subdir is validated and dropped
//   <url>/blob/<rev>/<path>               revision and file
//   <url>/resolve/<rev>/<path>            revision and file
//
// Revision rules:
//   * After '@' or ':' the revision is everything up to the end (it may contain '/'); the repo id
//     ends at the first '@' or ':' (neither is allowed in a repo id or a git ref name).
//   * After /tree/, /blob/ or /resolve/ the revision is ONE path segment, unless that segment is
//     "refs": then it is three segments (refs/pr/<n>, refs/convert/<name>). So a branch with a
//     '/' in its name must be percent-encoded in these URLs (feature%2Fx), as the Hub itself does.
//   * Revisions are percent-decoded in every form (refs%2Fpr%2F1 == refs/pr/1), file paths per
//     segment. Repo ids are never decoded ('%' is not a repo-id character).
//   * A URL path whose second segment is tree/blob/resolve names a one-part repo
//     (huggingface.co/gpt2/tree/main), unless the third segment is also one of those words
//     (huggingface.co/org/tree/tree/main is repo org/tree).
//
// Rejected, among others: other hosts and schemes (github.com, hf://, ftp://), user info or a port
// in the URL, a host alone, /api/... and other website pages (docs, blog, ...), a bare type prefix
// ("spaces"), a Hub host name used as a repo id ("hf.co@main"), extra segments (org/name/extra),
// empty revisions ("org/name@"), and anything the id validators refuse (a/../b, --x, refs/../x,
// control characters, input over 8 KiB).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "mc/common/ids.h"
#include "mc/common/status.h"

namespace mc::hub {

struct ModelRef {
  RepoId repo;
  // Absent: the caller's default (the Hub's default branch, "main").
  std::optional<Revision> revision;
  // Set only by /blob/ and /resolve/ URLs; always comes with a revision.
  std::optional<RepoFilePath> file;

  bool operator==(const ModelRef&) const = default;
};

StatusOr<ModelRef> ParseModelRef(std::string_view text, RepoType default_type = RepoType::kModel);

// Canonical text that ParseModelRef() maps back to the same ModelRef:
//   "org/name", "org/name@refs/pr/1", "datasets/org/name@main", and, when a file is set,
//   "org/name/blob/<rev>/<path>" with the revision percent-encoded as one segment ("main" when the
//   revision is absent) and the path percent-encoded per segment.
// In the '@' form only '%' in the revision is encoded (as %25), so common refs stay readable.
std::string FormatModelRef(const ModelRef& ref);

}  // namespace mc::hub
