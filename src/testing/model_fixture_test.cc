#include "mc/testing/model_fixture.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

namespace mc::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path NewTempDir() {
  std::string tmpl = ::testing::TempDir() + "fixture_XXXXXX";
  char* made = ::mkdtemp(tmpl.data());
  EXPECT_NE(made, nullptr);
  return fs::path(tmpl);
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct ParsedSafetensors {
  uint64_t header_len = 0;
  json header;
  uint64_t data_size = 0;
};

ParsedSafetensors Parse(const fs::path& p) {
  std::string bytes = ReadAll(p);
  ParsedSafetensors out;
  for (int i = 7; i >= 0; --i) out.header_len = (out.header_len << 8) | uint8_t(bytes[i]);
  out.header = json::parse(bytes.substr(8, out.header_len), nullptr, false);
  out.data_size = bytes.size() - 8 - out.header_len;
  return out;
}

// Checks data_offsets are contiguous from 0 and end exactly at the end of the file.
void ExpectOffsetsCoverData(const ParsedSafetensors& st) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, t] : st.header.items()) {
    if (name == "__metadata__") continue;
    uint64_t elems = 1;
    for (uint64_t d : t["shape"]) elems *= d;
    uint64_t b = t["data_offsets"][0], e = t["data_offsets"][1];
    EXPECT_EQ(t["dtype"], "F16");
    EXPECT_EQ(e - b, elems * 2) << name;
    ranges.emplace_back(b, e);
  }
  std::sort(ranges.begin(), ranges.end());
  uint64_t pos = 0;
  for (auto [b, e] : ranges) {
    EXPECT_EQ(b, pos);
    pos = e;
  }
  EXPECT_EQ(pos, st.data_size);
}

TEST(ModelFixtureTest, WritesTheFilesOfASingleFileModel) {
  fs::path dir = NewTempDir() / "m";
  auto files = WriteModelFixture(dir, {});
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  std::vector<std::string> expected = {"config.json", "generation_config.json", "model.safetensors",
                                       "original/params.json", "tokenizer.json"};
  EXPECT_EQ(*files, expected);
  for (const auto& f : expected) EXPECT_TRUE(fs::is_regular_file(dir / f)) << f;
}

TEST(ModelFixtureTest, JsonFilesParse) {
  fs::path dir = NewTempDir() / "m";
  ASSERT_TRUE(WriteModelFixture(dir, {}).ok());
  for (const char* f :
       {"config.json", "generation_config.json", "original/params.json", "tokenizer.json"}) {
    json j = json::parse(ReadAll(dir / f), nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << f;
  }
  json config = json::parse(ReadAll(dir / "config.json"), nullptr, false);
  EXPECT_EQ(config["model_type"], "llama");
  EXPECT_EQ(config["architectures"][0], "LlamaForCausalLM");
}

TEST(ModelFixtureTest, SafetensorsHeaderParsesAndOffsetsCoverTheDataExactly) {
  fs::path dir = NewTempDir() / "m";
  ASSERT_TRUE(WriteModelFixture(dir, {.total_weight_bytes = 3 << 20}).ok());
  ParsedSafetensors st = Parse(dir / "model.safetensors");
  ASSERT_FALSE(st.header.is_discarded());
  EXPECT_EQ(st.header_len % 8, 0u);
  EXPECT_EQ(st.header["__metadata__"]["format"], "pt");
  EXPECT_TRUE(st.header.contains("model.embed_tokens.weight"));
  ExpectOffsetsCoverData(st);
  EXPECT_GT(st.data_size, 1u << 20);
  EXPECT_LT(st.data_size, 4u << 20);
}

TEST(ModelFixtureTest, ShardedModelHasAnIndexCoveringEveryTensor) {
  fs::path dir = NewTempDir() / "m";
  auto files = WriteModelFixture(dir, {.total_weight_bytes = 2 << 20, .shards = 3});
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  json index = json::parse(ReadAll(dir / "model.safetensors.index.json"), nullptr, false);
  ASSERT_FALSE(index.is_discarded());
  uint64_t total = 0;
  size_t tensors = 0;
  for (int s = 1; s <= 3; ++s) {
    std::string name = "model-0000" + std::to_string(s) + "-of-00003.safetensors";
    ASSERT_TRUE(fs::exists(dir / name)) << name;
    ParsedSafetensors st = Parse(dir / name);
    ExpectOffsetsCoverData(st);
    total += st.data_size;
    for (const auto& [tensor, _] : st.header.items()) {
      if (tensor == "__metadata__") continue;
      EXPECT_EQ(index["weight_map"][tensor], name);
      ++tensors;
    }
  }
  EXPECT_EQ(index["weight_map"].size(), tensors);
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), total);
}

TEST(ModelFixtureTest, SameSeedGivesSameBytesAndOtherSeedDiffers) {
  fs::path root = NewTempDir();
  ASSERT_TRUE(WriteModelFixture(root / "a", {.seed = 7}).ok());
  ASSERT_TRUE(WriteModelFixture(root / "b", {.seed = 7}).ok());
  ASSERT_TRUE(WriteModelFixture(root / "c", {.seed = 8}).ok());
  EXPECT_EQ(ReadAll(root / "a/model.safetensors"), ReadAll(root / "b/model.safetensors"));
  EXPECT_NE(ReadAll(root / "a/model.safetensors"), ReadAll(root / "c/model.safetensors"));
}

TEST(ModelFixtureTest, RefusesANonEmptyDirectory) {
  fs::path dir = NewTempDir();
  std::ofstream(dir / "x") << "x";
  auto files = WriteModelFixture(dir, {});
  EXPECT_EQ(files.status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace mc::testing
