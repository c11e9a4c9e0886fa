// CheckRegistryAccess: may these credentials (or none) read this image from its registry? One
// manifest HEAD over the registry's v2 API (OCI distribution spec), in process: about a
// millisecond on loopback, where a `skopeo inspect` costs 50-120 ms and a `podman pull` of an
// image already in the store 180-230 ms (measured on the 2-core VM, docs/agent.md).
//
// The agent asks it before a worker starts from an image that is already in the engine's store
// but that this worker's credentials have not been shown to read (images.h): the store is shared
// by every endpoint on the host, the registry's answer is not.
//
// Auth: the registry's 401 challenge decides. `Basic` (docker-registry with htpasswd): the
// credentials are sent on the retry. `Bearer realm=...,service=...,scope=...` (Docker Hub, ghcr,
// Harbor, ...): a token for `repository:<path>:pull` is fetched from the realm (with the
// credentials as Basic, or anonymously), then the HEAD is retried with it. Docker Hub's API is
// registry-1.docker.io. A registry in `insecure` is spoken to over plain HTTP, any other over HTTPS
// with the system's CAs (not podman's certs.d).
//
// Answers: OK (200 for the manifest); PermissionDenied (401/403: the registry refused these
// credentials, or wants some); NotFound (404: no such image or tag, or a registry that hides a
// private repository from those who may not read it); Unavailable (no answer: connection
// refused, timeout, 5xx, a token realm that does not answer). The password is sent only in the
// Authorization header, never logged or put in a message.
#pragma once

#include <chrono>

#include "agent/engine.h"
#include "mc/common/image_ref.h"
#include "mc/common/status.h"

namespace mc::agent {

struct RegistryAccessOptions {
  bool insecure = false;  // plain HTTP (the engine's --insecure-registry list)
  std::chrono::milliseconds timeout{10'000};  // each request
};

Status CheckRegistryAccess(const ImageRef& ref, const RegistryAuth* auth,
                           const RegistryAccessOptions& options);

}  // namespace mc::agent
