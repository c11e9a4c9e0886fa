#include "mc/cache/git_objects.h"

#include <gtest/gtest.h>

#include "mc/cache/blob_hasher.h"

namespace mc::cache {
namespace {

// Values from `git write-tree` / `git commit-tree` on:
//   a-b "z\n", a.txt "hello\n", a/b.txt "x\n", a/c/d "w\n", a0 "y\n"
// with author and committer "modelcache <modelcache@localhost>", date "@0 +0000", message
// "Imported by modelcache".
std::vector<GitTreeFile> Example() {
  return {{"a.txt", GitBlobSha1("hello\n")},
          {"a/b.txt", GitBlobSha1("x\n")},
          {"a0", GitBlobSha1("y\n")},
          {"a-b", GitBlobSha1("z\n")},
          {"a/c/d", GitBlobSha1("w\n")}};
}

TEST(GitObjectsTest, TreeShaMatchesGitIncludingDirectoryOrdering) {
  EXPECT_EQ(GitTreeSha(Example()), "aabaa8d03c6855471c7b5c4e16c86f79e766f077");
}

TEST(GitObjectsTest, SubTreeShaMatchesGit) {
  EXPECT_EQ(GitTreeSha({{"b.txt", GitBlobSha1("x\n")}, {"c/d", GitBlobSha1("w\n")}}),
            "e1d3920bddeb23f0019ac08f9f65d31c6f94778c");
}

TEST(GitObjectsTest, TreeShasGivesEveryDirectoryAsGitDoes) {
  auto shas = GitTreeShas(Example());
  EXPECT_EQ(shas[""], "aabaa8d03c6855471c7b5c4e16c86f79e766f077");
  // Directory "a" holds exactly the listing of SubTreeShaMatchesGit.
  EXPECT_EQ(shas["a"], "e1d3920bddeb23f0019ac08f9f65d31c6f94778c");
  EXPECT_EQ(shas["a/c"], GitTreeSha({{"d", GitBlobSha1("w\n")}}));
  EXPECT_EQ(shas.size(), 3u);
}

TEST(GitObjectsTest, CommitShaMatchesGitCommitTree) {
  EXPECT_EQ(GitCommitSha("aabaa8d03c6855471c7b5c4e16c86f79e766f077"),
            "2263e2ff56fc948494aed8b26b942154d17c9ea3");
}

TEST(GitObjectsTest, BlobObjectShaEqualsGitBlobSha1) {
  EXPECT_EQ(GitObjectSha("blob", "Hello, World!"), GitBlobSha1("Hello, World!"));
}

}  // namespace
}  // namespace mc::cache
