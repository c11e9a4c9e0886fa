// The secrets an endpoint carries (its HF token, its secret worker env), sealed with the
// controller's SecretBox before they reach the store and opened only where they are used: the
// upstream client, and the body sent to the agent that starts a worker. Each is sealed for its
// own context ("endpoint <id> <field>"), so a sealed value pasted into another row or field does
// not open. New secret fields of an endpoint (registry credentials, ...) belong here too.
#pragma once

#include <string>

#include "controller/store.h"
#include "mc/common/secret_box.h"
#include "mc/common/status.h"

namespace mc::controller {

// The context a secret field of an endpoint is sealed for.
std::string EndpointSecretContext(const std::string& endpoint_id, const char* field);

// In place: every sealed secret of `e` → its plaintext. DataLoss if one does not open (another
// key file, or the value was changed); InvalidArgument if one is not sealed.
Status OpenEndpointSecrets(const SecretBox& box, EndpointRecord& e);
// In place: every secret of `e` (plaintext) → its sealed form. `e.id` must be set.
void SealEndpointSecrets(const SecretBox& box, EndpointRecord& e);

// The context a host's credential is sealed for.
std::string HostCredentialContext(const std::string& host_id);

// Seals the secrets the store holds in clear (written before sealing existed) and returns how
// many endpoints were rewritten. Run when the controller opens its store.
StatusOr<int> SealStoredSecrets(ControllerStore& store, const SecretBox& box);

}  // namespace mc::controller
