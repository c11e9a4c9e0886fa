// ImageRef: a validated OCI image reference ("registry:5000/org/worker:1.2", "ubuntu",
// "ghcr.io/org/app@sha256:<64 hex>"), parsed once at the edge (API bodies) by the grammar of the
// distribution project's reference package:
//
//   reference := [domain "/"] path [":" tag] ["@" digest]
//   domain    := host [":" port]      host: DNS labels joined by ".", "localhost", IPv4, [IPv6]
//   path      := component ("/" component)*    component: [a-z0-9]+ ([._]|__|-+ [a-z0-9]+)*
//   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//   digest    := algorithm ":" hex   (sha256: 64 hex, sha512: 128 hex, others 32+ hex)
//
// The first component is a domain only when it contains "." or ":" or is "localhost", as Docker
// and Podman decide. A reference without a domain is Docker Hub's ("docker.io", and
// "docker.io/library/x" for a single component), so that an engine never asks which registry a
// short name means; one without tag or digest gets "latest". str() is that normalized full form.
// The name (domain/path) is at most 255 characters.
#pragma once

#include <string>
#include <string_view>

#include "mc/common/status.h"

namespace mc {

class ImageRef {
 public:
  // InvalidArgument with the reason ("image reference \"x\": uppercase letters are not allowed in
  // the repository path ...") for anything else.
  static StatusOr<ImageRef> Parse(std::string_view text);

  const std::string& domain() const { return domain_; }  // "docker.io", "127.0.0.1:5000"
  const std::string& path() const { return path_; }      // "library/ubuntu"
  const std::string& tag() const { return tag_; }        // "" when only a digest was given
  const std::string& digest() const { return digest_; }  // "" or "sha256:..."
  // "docker.io/library/ubuntu:latest", "r:5000/a/b@sha256:...", "r/a:t@sha256:...".
  std::string str() const;
  // "domain/path": the repository, without tag or digest.
  std::string name() const { return domain_ + "/" + path_; }

  bool operator==(const ImageRef& other) const { return str() == other.str(); }

 private:
  std::string domain_, path_, tag_, digest_;
};

}  // namespace mc
