#include "cache/test_util.h"

#include "mc/cache/blob_hasher.h"

namespace mc::cache::test {

Etag PutBlob(CacheStore& store, const RepoId& repo, const std::string& content, bool lfs) {
  Etag etag = E(lfs ? Sha256Hex(content) : GitBlobSha1(content));
  auto writer = store.NewBlobWriter(repo, etag);
  EXPECT_TRUE(writer.ok()) << writer.status().ToString();
  EXPECT_TRUE(writer->Append(content.data(), content.size()).ok());
  Status s = store.PublishBlob(std::move(*writer), content.size(), true);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return etag;
}

}  // namespace mc::cache::test
