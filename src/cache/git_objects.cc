#include "mc/cache/git_objects.h"

#include <algorithm>
#include <map>
#include <memory>

#include "mc/cache/blob_hasher.h"

namespace mc::cache {
namespace {

struct TreeNode {
  std::string oid_hex;                                        // set for files
  std::map<std::string, std::unique_ptr<TreeNode>> children;  // set for directories
  bool is_dir = false;
};

std::string HexToBytes(const std::string& hex) {
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<char>((nibble(hex[2 * i]) << 4) | nibble(hex[2 * i + 1]));
  }
  return out;
}

void Insert(TreeNode& root, const GitTreeFile& file) {
  TreeNode* node = &root;
  size_t start = 0;
  while (true) {
    size_t slash = file.path.find('/', start);
    std::string name = file.path.substr(start, slash == std::string::npos ? slash : slash - start);
    auto& child = node->children[name];
    if (!child) child = std::make_unique<TreeNode>();
    if (slash == std::string::npos) {
      child->oid_hex = file.oid_hex;
      return;
    }
    child->is_dir = true;
    node = child.get();
    start = slash + 1;
  }
}

// Tree id of `dir`; records it, and those of every sub-directory, in *out under `path`.
std::string TreeSha(const TreeNode& dir, const std::string& path,
                    std::map<std::string, std::string>* out) {
  struct Entry {
    std::string sort_key, name, mode, oid_hex;
  };
  std::vector<Entry> entries;
  for (const auto& [name, child] : dir.children) {
    if (child->is_dir) {
      std::string sub = path.empty() ? name : path + "/" + name;
      entries.push_back({name + "/", name, "40000", TreeSha(*child, sub, out)});
    } else {
      entries.push_back({name, name, "100644", child->oid_hex});
    }
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.sort_key < b.sort_key; });
  std::string content;
  for (const Entry& e : entries) {
    content += e.mode + " " + e.name;
    content += '\0';
    content += HexToBytes(e.oid_hex);
  }
  std::string sha = GitObjectSha("tree", content);
  if (out != nullptr) (*out)[path] = sha;
  return sha;
}

}  // namespace

std::string GitObjectSha(const std::string& type, const std::string& content) {
  std::string object = type + " " + std::to_string(content.size());
  object += '\0';
  object += content;
  return Sha1Hex(object);
}

std::string GitTreeSha(const std::vector<GitTreeFile>& files) {
  TreeNode root;
  root.is_dir = true;
  for (const GitTreeFile& f : files) Insert(root, f);
  return TreeSha(root, "", nullptr);
}

std::map<std::string, std::string> GitTreeShas(const std::vector<GitTreeFile>& files) {
  TreeNode root;
  root.is_dir = true;
  for (const GitTreeFile& f : files) Insert(root, f);
  std::map<std::string, std::string> out;
  TreeSha(root, "", &out);
  return out;
}

std::string GitCommitSha(const std::string& tree_hex) {
  const std::string who = "modelcache <modelcache@localhost> 0 +0000";
  std::string content = "tree " + tree_hex + "\nauthor " + who + "\ncommitter " + who +
                        "\n\nImported by modelcache\n";
  return GitObjectSha("commit", content);
}

}  // namespace mc::cache
