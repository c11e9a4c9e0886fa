// Writes a realistic model folder for tests and demos: config.json, tokenizer.json,
// generation_config.json, a nested file, and either model.safetensors or shards
// model-0000N-of-0000M.safetensors with model.safetensors.index.json. Safetensors files have a
// valid header (8-byte little-endian length + JSON with dtype/shape/data_offsets) and random
// tensor bytes from a seeded generator, so the same options give the same bytes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "mc/common/status.h"

namespace mc::testing {

struct ModelFixtureOptions {
  uint64_t total_weight_bytes = 1 << 20;  // approximate total of tensor data
  int shards = 1;                         // 1 = model.safetensors
  uint64_t seed = 1;
  std::string model_type = "llama";
};

// Creates `dir` (must not exist or be empty) and writes the files. Returns their relative paths.
StatusOr<std::vector<std::string>> WriteModelFixture(const std::filesystem::path& dir,
                                                     const ModelFixtureOptions& options);

}  // namespace mc::testing
