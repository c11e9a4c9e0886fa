// Git object ids computed from a file listing: tree ids (used by import for its deterministic
// commit, and by the mirror for the "oid" of directories in tree listings) and a commit with fixed
// metadata, so the same content always gives the same commit sha. Pure functions, thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace mc::cache {

struct GitTreeFile {
  std::string path;     // '/'-separated repo path
  std::string oid_hex;  // 40-hex git blob id (for LFS files: the id of the pointer text)
};

// sha1 of the git tree object for these files (mode 100644, sub-trees 40000, git's entry order:
// by name, directories compared as if their name ended in '/'). Precondition: paths are unique
// and no path is both a file and a directory.
std::string GitTreeSha(const std::vector<GitTreeFile>& files);

// The tree ids of the root (key "") and of every directory of the listing (key "a/b"), with the
// same rules as GitTreeSha.
std::map<std::string, std::string> GitTreeShas(const std::vector<GitTreeFile>& files);

// sha1 of the commit object "tree <tree>\nauthor ...\ncommitter ...\n\n<message>" with a fixed
// author, committer, date (epoch 0, +0000) and message.
std::string GitCommitSha(const std::string& tree_hex);

// sha1 of "<type> <len>\0<content>" (git's object id).
std::string GitObjectSha(const std::string& type, const std::string& content);

}  // namespace mc::cache
