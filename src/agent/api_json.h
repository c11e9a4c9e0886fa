// JSON of the agent's API that more than one route uses: model and worker requests in, worker,
// image and time views out (docs/agent.md has the fields). Private to src/agent: it carries
// nlohmann/json, so only the API's .cc files include it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "agent/downloads.h"
#include "agent/images.h"
#include "agent/workers.h"
#include "mc/common/clock.h"
#include "mc/common/status.h"

namespace mc::agent {

std::string IsoTime(TimePoint t);
// "org/name" for models, "datasets/org/name" for the others: what ParseModelRef reads back.
std::string ModelName(const RepoId& repo);

StatusOr<std::optional<std::string>> OptString(const nlohmann::json& body, const char* name);
StatusOr<std::vector<std::string>> StringList(const nlohmann::json& body, const char* name);
// model + optional revision -> repo and revision (default main); a revision in both places must
// agree.
StatusOr<std::pair<RepoId, Revision>> ParseModel(const nlohmann::json& body);
// {"model", "revision", "include", "exclude", "peers", "token"}.
StatusOr<EnsureRequest> ParseEnsure(const nlohmann::json& body);

// The fields POST /v1/workers accepts.
const std::vector<const char*>& WorkerFields();
// A POST /v1/workers body (already checked against WorkerFields()) -> the request. Every field
// is validated; registryAuth is taken as a secret and never echoed.
StatusOr<WorkerRequest> ParseWorkerRequest(const nlohmann::json& body);

// The download progress object of an ensure or a worker's model.
nlohmann::json ProgressJson(const EnsureState& s);
nlohmann::json WorkerJson(const WorkerView& view);
// The "images" object of the inventory.
nlohmann::json ImagesJson(const Images& images);

}  // namespace mc::agent
