#include "agent/gpus.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace mc::agent {
namespace {

namespace fs = std::filesystem;

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

// A YAML scalar as nvidia-ctk writes it: bare, "double" or 'single' quoted; a trailing comment
// after a bare value is dropped.
std::string Scalar(std::string_view raw) {
  std::string v = Trim(raw);
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
    return v.substr(1, v.size() - 2);
  }
  size_t hash = v.find(" #");
  return hash == std::string::npos ? v : Trim(v.substr(0, hash));
}

size_t Indent(std::string_view line) {
  size_t n = 0;
  while (n < line.size() && line[n] == ' ') ++n;
  return n;
}

// Block-style YAML: `kind:` at column 0; under `devices:` (column 0) list items "- " at some
// indent i, whose own keys sit at i + 2 (or follow the dash on its line).
StatusOr<CdiSpec> ParseYaml(std::string_view text) {
  CdiSpec spec;
  std::istringstream in{std::string(text)};
  std::string line;
  bool in_devices = false;
  std::optional<size_t> item_indent;
  while (std::getline(in, line)) {
    if (Trim(line).empty() || Trim(line).starts_with('#') || line == "---") continue;
    const size_t indent = Indent(line);
    std::string_view rest = std::string_view(line).substr(indent);
    if (indent == 0 && !rest.starts_with("- ")) {
      in_devices = rest.starts_with("devices:");
      item_indent.reset();
      if (rest.starts_with("kind:")) spec.kind = Scalar(rest.substr(5));
      continue;
    }
    if (!in_devices) continue;
    size_t key_indent = indent;
    if (rest.starts_with("- ")) {
      if (!item_indent) item_indent = indent;
      if (indent != *item_indent) continue;  // a nested list
      rest.remove_prefix(2);
      key_indent = indent + 2;
    }
    if (item_indent && key_indent == *item_indent + 2 && rest.starts_with("name:")) {
      spec.devices.push_back(Scalar(rest.substr(5)));
    }
  }
  if (spec.kind.empty()) return InvalidArgumentError("CDI spec has no kind");
  return spec;
}

bool IsIndex(const std::string& name) {
  return !name.empty() && name.size() <= 4 &&
         std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

StatusOr<CdiSpec> ParseCdiSpec(std::string_view text) {
  const std::string trimmed = Trim(text.substr(0, std::min<size_t>(text.size(), 64)));
  if (!trimmed.starts_with('{')) return ParseYaml(text);
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return InvalidArgumentError("CDI spec is not valid JSON");
  }
  CdiSpec spec;
  if (!doc.contains("kind") || !doc["kind"].is_string()) {
    return InvalidArgumentError("CDI spec has no kind");
  }
  spec.kind = doc["kind"].get<std::string>();
  if (doc.contains("devices") && doc["devices"].is_array()) {
    for (const auto& d : doc["devices"]) {
      if (d.is_object() && d.contains("name") && d["name"].is_string()) {
        spec.devices.push_back(d["name"].get<std::string>());
      }
    }
  }
  return spec;
}

std::vector<int> FindCdiGpus(const std::vector<fs::path>& dirs, const std::string& kind,
                             std::vector<fs::path>* spec_files) {
  std::set<int> indices;
  for (const fs::path& dir : dirs) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string ext = entry.path().extension().string();
      if (ext != ".json" && ext != ".yaml" && ext != ".yml") continue;
      if (entry.file_size(ec) > (4u << 20) || ec) continue;
      std::ifstream in(entry.path());
      std::stringstream text;
      text << in.rdbuf();
      auto spec = ParseCdiSpec(text.str());
      if (!spec.ok()) {
        spdlog::debug("agent: CDI spec {}: {}", entry.path().string(), spec.status().ToString());
        continue;
      }
      if (spec->kind != kind) continue;
      bool used = false;
      for (const std::string& name : spec->devices) {
        if (IsIndex(name)) {
          indices.insert(std::stoi(name));
          used = true;
        }
      }
      if (used && spec_files != nullptr) spec_files->push_back(entry.path());
    }
  }
  return {indices.begin(), indices.end()};
}

NvidiaSmiGpus ParseNvidiaSmiList(std::string_view text) {
  NvidiaSmiGpus out;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("GPU ")) continue;
    size_t colon = line.find(": ");
    if (colon == std::string::npos) continue;
    ++out.count;
    if (out.count == 1) {
      std::string model = line.substr(colon + 2);
      size_t uuid = model.find(" (UUID");
      out.model = Trim(model.substr(0, uuid));
    }
  }
  return out;
}

}  // namespace mc::agent
