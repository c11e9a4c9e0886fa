#include "controller/endpoint_secrets.h"

#include <optional>

namespace mc::controller {
namespace {

constexpr const char* kHfToken = "hfToken";
constexpr const char* kSecretEnv = "secretEnv";
constexpr const char* kRegistryAuth = "registryAuth";

Status OpenField(const SecretBox& box, const std::string& id, const char* field,
                 std::optional<std::string>& value) {
  if (!value) return Status::Ok();
  MC_ASSIGN_OR_RETURN(std::string plain, box.Open(*value, EndpointSecretContext(id, field)),
                      "endpoint " + id + " " + field);
  value = std::move(plain);
  return Status::Ok();
}

void SealField(const SecretBox& box, const std::string& id, const char* field,
               std::optional<std::string>& value) {
  if (value) value = box.Seal(*value, EndpointSecretContext(id, field));
}

}  // namespace

std::string EndpointSecretContext(const std::string& endpoint_id, const char* field) {
  return "endpoint " + endpoint_id + " " + field;
}

std::string HostCredentialContext(const std::string& host_id) {
  return "host " + host_id + " credential";
}

Status OpenEndpointSecrets(const SecretBox& box, EndpointRecord& e) {
  MC_RETURN_IF_ERROR(OpenField(box, e.id, kHfToken, e.hf_token));
  MC_RETURN_IF_ERROR(OpenField(box, e.id, kRegistryAuth, e.registry_auth));
  return OpenField(box, e.id, kSecretEnv, e.secret_env);
}

void SealEndpointSecrets(const SecretBox& box, EndpointRecord& e) {
  SealField(box, e.id, kHfToken, e.hf_token);
  SealField(box, e.id, kRegistryAuth, e.registry_auth);
  SealField(box, e.id, kSecretEnv, e.secret_env);
}

StatusOr<int> SealStoredSecrets(ControllerStore& store, const SecretBox& box) {
  MC_ASSIGN_OR_RETURN(std::vector<EndpointRecord> endpoints, store.ListEndpoints());
  int sealed = 0;
  for (EndpointRecord& e : endpoints) {
    bool changed = false;
    for (auto [field, value] : {std::pair{kHfToken, &e.hf_token}, {kRegistryAuth, &e.registry_auth},
                                {kSecretEnv, &e.secret_env}}) {
      if (*value && !SecretBox::IsSealed(**value)) {
        SealField(box, e.id, field, *value);
        changed = true;
      }
    }
    if (!changed) continue;
    MC_RETURN_IF_ERROR(store.PutEndpoint(e), "seal the secrets of endpoint " + e.id);
    ++sealed;
  }
  return sealed;
}

}  // namespace mc::controller
