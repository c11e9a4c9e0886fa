// WriteModelFixture: a realistic llama-style model folder with valid safetensors files.
#include "mc/testing/model_fixture.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <system_error>

#include "mc/common/xoshiro.h"

namespace mc::testing {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Tensor {
  std::string name;
  std::vector<uint64_t> shape;
  uint64_t bytes() const {
    uint64_t n = 2;  // F16
    for (uint64_t d : shape) n *= d;
    return n;
  }
};

struct Dims {
  uint64_t hidden, intermediate, vocab, layers;
};

// Picks a shape whose weights add up to about `total` bytes: the largest hidden size that still
// gives at least `min_layers` layers.
Dims ChooseDims(uint64_t total, int min_layers) {
  Dims d{64, 128, 256, 1};
  for (uint64_t h = 64; h <= 8192; h *= 2) {
    Dims c{h, 2 * h, 4 * h, 0};
    uint64_t per_layer = 2 * (4 * h * h + 3 * h * c.intermediate + 2 * h);
    uint64_t fixed = 2 * (2 * c.vocab * h + h);
    if (total < fixed + per_layer * static_cast<uint64_t>(min_layers)) break;
    c.layers = (total - fixed) / per_layer;
    d = c;
  }
  d.layers = std::max<uint64_t>(d.layers, static_cast<uint64_t>(min_layers));
  return d;
}

std::vector<Tensor> Tensors(const Dims& d) {
  std::vector<Tensor> t;
  t.push_back({"model.embed_tokens.weight", {d.vocab, d.hidden}});
  for (uint64_t i = 0; i < d.layers; ++i) {
    std::string p = "model.layers." + std::to_string(i) + ".";
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
      t.push_back({p + "self_attn." + proj + ".weight", {d.hidden, d.hidden}});
    }
    t.push_back({p + "mlp.gate_proj.weight", {d.intermediate, d.hidden}});
    t.push_back({p + "mlp.up_proj.weight", {d.intermediate, d.hidden}});
    t.push_back({p + "mlp.down_proj.weight", {d.hidden, d.intermediate}});
    t.push_back({p + "input_layernorm.weight", {d.hidden}});
    t.push_back({p + "post_attention_layernorm.weight", {d.hidden}});
  }
  t.push_back({"model.norm.weight", {d.hidden}});
  t.push_back({"lm_head.weight", {d.vocab, d.hidden}});
  return t;
}

json ConfigJson(const Dims& d, const std::string& model_type) {
  uint64_t heads = std::max<uint64_t>(1, d.hidden / 64);
  return json{{"architectures", {"LlamaForCausalLM"}},
              {"attention_bias", false},
              {"bos_token_id", 1},
              {"eos_token_id", 2},
              {"hidden_act", "silu"},
              {"hidden_size", d.hidden},
              {"initializer_range", 0.02},
              {"intermediate_size", d.intermediate},
              {"max_position_embeddings", 4096},
              {"model_type", model_type},
              {"num_attention_heads", heads},
              {"num_hidden_layers", d.layers},
              {"num_key_value_heads", heads},
              {"rms_norm_eps", 1e-05},
              {"rope_theta", 10000.0},
              {"tie_word_embeddings", false},
              {"torch_dtype", "float16"},
              {"transformers_version", "4.44.0"},
              {"use_cache", true},
              {"vocab_size", d.vocab}};
}

json TokenizerJson() {
  json vocab = json::object();
  const char* tokens[] = {"<unk>", "<s>", "</s>", "h", "e", "l", "o", "he", "ll", "hello"};
  for (int i = 0; i < 10; ++i) vocab[tokens[i]] = i;
  return json{{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens",
               {{{"id", 0}, {"content", "<unk>"}, {"special", true}},
                {{"id", 1}, {"content", "<s>"}, {"special", true}},
                {{"id", 2}, {"content", "</s>"}, {"special", true}}}},
              {"normalizer", nullptr},
              {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
              {"model",
               {{"type", "BPE"},
                {"unk_token", "<unk>"},
                {"vocab", vocab},
                {"merges", {"h e", "l l", "he ll"}}}}};
}

json GenerationConfigJson() {
  return json{{"bos_token_id", 1},
              {"eos_token_id", 2},
              {"do_sample", true},
              {"temperature", 0.6},
              {"top_p", 0.9},
              {"max_length", 4096},
              {"transformers_version", "4.44.0"}};
}

json ParamsJson(const Dims& d) {
  return json{{"dim", d.hidden},
              {"n_layers", d.layers},
              {"n_heads", std::max<uint64_t>(1, d.hidden / 64)},
              {"vocab_size", d.vocab},
              {"norm_eps", 1e-05}};
}

}  // namespace

namespace {

class OutFile {
 public:
  static StatusOr<OutFile> Create(const fs::path& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoError(errno, "create " + path.string());
    return OutFile(fd, path);
  }
  OutFile(OutFile&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  OutFile(const OutFile&) = delete;
  OutFile& operator=(const OutFile&) = delete;
  OutFile& operator=(OutFile&&) = delete;
  ~OutFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Write(const void* data, size_t size) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
      ssize_t n = ::write(fd_, p, size);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError(errno, "write " + path_.string());
      p += n;
      size -= static_cast<size_t>(n);
    }
    return Status::Ok();
  }

 private:
  OutFile(int fd, fs::path path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  fs::path path_;
};

Status WriteText(const fs::path& path, const std::string& text) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return ErrnoError(ec.value(), "mkdir " + path.parent_path().string());
  MC_ASSIGN_OR_RETURN(OutFile out, OutFile::Create(path));
  return out.Write(text.data(), text.size());
}

// "8-byte LE length" + JSON header padded with spaces to a multiple of 8.
std::string SafetensorsHeader(const std::vector<const Tensor*>& tensors, uint64_t* data_bytes) {
  json header = json::object();
  uint64_t offset = 0;
  for (const Tensor* t : tensors) {
    header[t->name] = json{
        {"dtype", "F16"}, {"shape", t->shape}, {"data_offsets", {offset, offset + t->bytes()}}};
    offset += t->bytes();
  }
  header["__metadata__"] = json{{"format", "pt"}};
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  uint64_t len = text.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((len >> (8 * i)) & 0xff);
  *data_bytes = offset;
  return out + text;
}

Status WriteSafetensors(const fs::path& path, const std::vector<const Tensor*>& tensors,
                        uint64_t seed) {
  uint64_t remaining = 0;
  std::string header = SafetensorsHeader(tensors, &remaining);
  MC_ASSIGN_OR_RETURN(OutFile out, OutFile::Create(path));
  MC_RETURN_IF_ERROR(out.Write(header.data(), header.size()));
  Xoshiro256 rng(seed);  // deterministic, good enough for weights
  std::vector<uint64_t> buf((4 << 20) / sizeof(uint64_t));
  while (remaining > 0) {
    for (uint64_t& w : buf) w = rng.Next();
    size_t n = static_cast<size_t>(std::min<uint64_t>(remaining, buf.size() * sizeof(uint64_t)));
    MC_RETURN_IF_ERROR(out.Write(buf.data(), n));
    remaining -= n;
  }
  return Status::Ok();
}

// Shard of each tensor: balanced by bytes, or by count if a shard would end up empty.
std::vector<int> AssignShards(const std::vector<Tensor>& tensors, int shards) {
  uint64_t total = 0;
  for (const Tensor& t : tensors) total += t.bytes();
  std::vector<int> shard(tensors.size());
  std::vector<int> count(shards, 0);
  uint64_t start = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    uint64_t mid = start + tensors[i].bytes() / 2;
    shard[i] =
        std::min<int>(shards - 1, static_cast<int>(mid * shards / std::max<uint64_t>(total, 1)));
    ++count[shard[i]];
    start += tensors[i].bytes();
  }
  if (std::find(count.begin(), count.end(), 0) != count.end()) {
    for (size_t i = 0; i < tensors.size(); ++i) {
      shard[i] = static_cast<int>(i * shards / tensors.size());
    }
  }
  return shard;
}

std::string ShardName(int i, int n) {
  char name[64];
  std::snprintf(name, sizeof(name), "model-%05d-of-%05d.safetensors", i + 1, n);
  return name;
}

Status CheckTarget(const fs::path& dir, const ModelFixtureOptions& options) {
  if (options.shards < 1 || options.shards > 99999) {
    return InvalidArgumentError("shards must be between 1 and 99999");
  }
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
    return FailedPreconditionError("fixture dir is not empty: " + dir.string());
  }
  fs::create_directories(dir, ec);
  if (ec) return ErrnoError(ec.value(), "mkdir " + dir.string());
  return Status::Ok();
}

}  // namespace

StatusOr<std::vector<std::string>> WriteModelFixture(const fs::path& dir,
                                                     const ModelFixtureOptions& options) {
  MC_RETURN_IF_ERROR(CheckTarget(dir, options), "model fixture");
  // Every shard needs at least one tensor; each layer has 9.
  Dims dims = ChooseDims(options.total_weight_bytes, (options.shards + 8) / 9);
  std::vector<Tensor> tensors = Tensors(dims);
  // Whole layers round the size down; one more 1-D F16 tensor brings the total to the size asked.
  uint64_t sum = 0;
  for (const Tensor& t : tensors) sum += t.bytes();
  if (options.total_weight_bytes >= sum + 2) {
    tensors.push_back({"model.embed_positions.weight", {(options.total_weight_bytes - sum) / 2}});
  }
  std::vector<std::string> files = {"config.json", "generation_config.json", "original/params.json",
                                    "tokenizer.json"};
  MC_RETURN_IF_ERROR(WriteText(dir / files[0], ConfigJson(dims, options.model_type).dump(2)));
  MC_RETURN_IF_ERROR(WriteText(dir / files[1], GenerationConfigJson().dump(2)));
  MC_RETURN_IF_ERROR(WriteText(dir / files[2], ParamsJson(dims).dump(2)));
  MC_RETURN_IF_ERROR(WriteText(dir / files[3], TokenizerJson().dump(2)));
  if (options.shards == 1) {
    std::vector<const Tensor*> all;
    for (const Tensor& t : tensors) all.push_back(&t);
    MC_RETURN_IF_ERROR(WriteSafetensors(dir / "model.safetensors", all, options.seed));
    files.push_back("model.safetensors");
  } else {
    std::vector<int> shard = AssignShards(tensors, options.shards);
    json weight_map = json::object();
    uint64_t total = 0;
    for (int s = 0; s < options.shards; ++s) {
      std::vector<const Tensor*> part;
      for (size_t i = 0; i < tensors.size(); ++i) {
        if (shard[i] != s) continue;
        part.push_back(&tensors[i]);
        weight_map[tensors[i].name] = ShardName(s, options.shards);
        total += tensors[i].bytes();
      }
      uint64_t seed = options.seed * 0x100000001b3ull + static_cast<uint64_t>(s);
      MC_RETURN_IF_ERROR(WriteSafetensors(dir / ShardName(s, options.shards), part, seed));
      files.push_back(ShardName(s, options.shards));
    }
    json index{{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    MC_RETURN_IF_ERROR(WriteText(dir / "model.safetensors.index.json", index.dump(2)));
    files.push_back("model.safetensors.index.json");
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace mc::testing
