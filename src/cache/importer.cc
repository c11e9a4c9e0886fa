// ImportFolder: a plain folder becomes a cached repo (blobs, snapshot links, ref).
#include "mc/cache/importer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "cache/fs_util.h"
#include "mc/cache/git_objects.h"

namespace mc::cache {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kLfsSizeThreshold = 10ull << 20;

// Extensions of the Hub's default .gitattributes (`*.<ext> filter=lfs`), case-sensitive like git.
constexpr const char* kLfsExtensions[] = {
    "7z",  "arrow",   "bin", "bz2",     "ckpt",  "ftz",     "ggml", "gguf", "gz",
    "h5",  "joblib",  "lz4", "mlmodel", "model", "msgpack", "npy",  "npz",  "onnx",
    "ot",  "parquet", "pb",  "pickle",  "pkl",   "pt",      "pth",  "rar",  "safetensors",
    "tar", "tflite",  "tgz", "wasm",    "xz",    "zip",     "zst"};

bool HasLfsPattern(const std::string& path) {
  std::string base = path.substr(path.rfind('/') + 1);  // npos + 1 == 0
  size_t dot = base.rfind('.');
  if (dot != std::string::npos) {
    std::string ext = base.substr(dot + 1);
    for (const char* e : kLfsExtensions) {
      if (ext == e) return true;
    }
  }
  // *.tar.*, *.lfs.*, *tfevents*, saved_model/**/*
  if (base.find(".tar.") != std::string::npos || base.find(".lfs.") != std::string::npos) {
    return true;
  }
  if (base.find("tfevents") != std::string::npos) return true;
  return path.rfind("saved_model/", 0) == 0;
}

struct SourceFile {
  RepoFilePath path;
  fs::path abs;
};

Status CheckEntry(const fs::directory_entry& entry, const std::string& rel) {
  std::error_code ec;
  fs::file_status st = entry.symlink_status(ec);
  if (ec) return internal::ErrorFromEc(ec, "stat " + QuoteForMessage(rel));
  if (fs::is_symlink(st)) {
    return InvalidArgumentError("cannot import symlink " + QuoteForMessage(rel) +
                                " (copy the file it points to instead)");
  }
  if (!fs::is_regular_file(st) && !fs::is_directory(st)) {
    return InvalidArgumentError("cannot import special file " + QuoteForMessage(rel));
  }
  return Status::Ok();
}

// The validated listing of `dir`, sorted by path. Nothing is written.
StatusOr<std::vector<SourceFile>> ListSource(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return InvalidArgumentError("not a directory: " + QuoteForMessage(dir.string()));
  }
  std::vector<SourceFile> files;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::string rel = it->path().lexically_relative(dir).generic_string();
    if (it.depth() == 0 && it->path().filename() == ".git") {
      it.disable_recursion_pending();
      continue;
    }
    MC_RETURN_IF_ERROR(CheckEntry(*it, rel));
    std::error_code type_ec;
    if (it->is_directory(type_ec)) continue;
    MC_ASSIGN_OR_RETURN(RepoFilePath path, RepoFilePath::Parse(rel), "cannot import");
    files.push_back({std::move(path), it->path()});
  }
  if (ec) return internal::ErrorFromEc(ec, "list " + dir.string());
  if (files.empty()) return InvalidArgumentError("nothing to import in " + dir.string());
  std::sort(files.begin(), files.end(),
            [](const SourceFile& a, const SourceFile& b) { return a.path < b.path; });
  return files;
}

// Reads until `buf` is full or EOF. Returns bytes read.
StatusOr<size_t> ReadChunk(int fd, std::vector<char>& buf, const fs::path& file) {
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = ::read(fd, buf.data() + got, buf.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "read " + file.string());
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

void Report(const ImportOptions& options, ImportProgress::Stage stage, const std::string& path,
            uint64_t bytes) {
  if (options.on_progress) options.on_progress(ImportProgress{stage, path, bytes});
}

class FileImporter {
 public:
  FileImporter(CacheStore& store, const RepoId& repo, const ImportOptions& options)
      : store_(store),
        repo_(repo),
        options_(options),
        buf_(std::max<size_t>(options.chunk_bytes, kLfsSniffBytes)) {}

  StatusOr<ImportedFile> Import(const SourceFile& src);

 private:
  Status Copy(int fd, const SourceFile& src, uint64_t size, BlobWriter& writer, size_t first);

  CacheStore& store_;
  const RepoId& repo_;
  const ImportOptions& options_;
  std::vector<char> buf_;
};

Status FileImporter::Copy(int fd, const SourceFile& src, uint64_t size, BlobWriter& writer,
                          size_t first) {
  uint64_t done = 0;
  for (size_t n = first; n > 0;) {
    MC_RETURN_IF_ERROR(writer.Append(buf_.data(), n));
    done += n;
    Report(options_, ImportProgress::Stage::kCopied, src.path.str(), done);
    MC_ASSIGN_OR_RETURN(n, ReadChunk(fd, buf_, src.abs));
  }
  if (done != size) {
    return FailedPreconditionError(src.path.str() + " changed while being imported");
  }
  return Status::Ok();
}

StatusOr<ImportedFile> FileImporter::Import(const SourceFile& src) {
  internal::ScopedFd fd(::open(src.abs.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return ErrnoError(errno, "open " + src.abs.string());
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoError(errno, "stat " + src.abs.string());
  if (!S_ISREG(st.st_mode)) return InvalidArgumentError("not a regular file: " + src.path.str());
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  MC_ASSIGN_OR_RETURN(size_t first, ReadChunk(fd.get(), buf_, src.abs));
  bool lfs = IsLfsFile(src.path.str(), size,
                       std::string_view(buf_.data(), std::min(first, kLfsSniffBytes)));
  MC_ASSIGN_OR_RETURN(
      BlobWriter writer,
      store_.NewContentBlobWriter(repo_, lfs ? HashKind::kSha256 : HashKind::kGitSha1, size));
  MC_RETURN_IF_ERROR(Copy(fd.get(), src, size, writer, first));
  MC_ASSIGN_OR_RETURN(Etag etag, writer.FinishContentHash());
  {
    MC_ASSIGN_OR_RETURN(FileLock lock, store_.LockBlob(repo_, etag));
    MC_RETURN_IF_ERROR(store_.PublishBlob(std::move(writer), size, /*verify_hash=*/true));
  }
  Report(options_, ImportProgress::Stage::kPublished, src.path.str(), size);
  return ImportedFile{src.path.str(), etag.str(), size, lfs};
}

StatusOr<CommitSha> CommitOf(const std::vector<ImportedFile>& files) {
  std::vector<GitTreeFile> tree;
  for (const ImportedFile& f : files) {
    std::string oid = f.etag;
    if (f.lfs) {
      MC_ASSIGN_OR_RETURN(Etag sha, Etag::Parse(f.etag));
      oid = GitBlobSha1(LfsPointer(sha, f.size));
    }
    tree.push_back({f.path, oid});
  }
  return CommitSha::Parse(GitCommitSha(GitTreeSha(tree)));
}

}  // namespace

bool IsLfsFile(const std::string& path, uint64_t size, std::string_view head) {
  if (size >= kLfsSizeThreshold) return true;
  if (head.substr(0, kLfsSniffBytes).find('\0') != std::string_view::npos) return true;
  return HasLfsPattern(path);
}

const ImportedFile* ImportResult::Find(std::string_view path) const {
  for (const ImportedFile& f : files) {
    if (f.path == path) return &f;
  }
  return nullptr;
}

StatusOr<ImportResult> ImportFolder(CacheStore& store, const fs::path& dir, const RepoId& repo,
                                    const Revision& revision, const ImportOptions& options) {
  if (revision.IsCommitSha()) {
    return InvalidArgumentError("import needs a branch or tag name, not a commit sha (" +
                                revision.str() + "): the commit is computed from the content");
  }
  MC_ASSIGN_OR_RETURN(std::vector<SourceFile> sources, ListSource(dir), "import");
  MC_RETURN_IF_ERROR(store.EnsureCacheDirTag(), "import");
  ImportResult result{CommitSha::Parse(std::string(40, '0')).value(), {}, 0};
  FileImporter importer(store, repo, options);
  for (const SourceFile& src : sources) {
    MC_ASSIGN_OR_RETURN(ImportedFile f, importer.Import(src), "import " + src.path.str());
    result.bytes += f.size;
    result.files.push_back(std::move(f));
  }
  MC_ASSIGN_OR_RETURN(result.commit, CommitOf(result.files), "import");
  for (size_t i = 0; i < sources.size(); ++i) {
    MC_ASSIGN_OR_RETURN(Etag etag, Etag::Parse(result.files[i].etag));
    MC_RETURN_IF_ERROR(store.LinkSnapshotFile(repo, result.commit, sources[i].path, etag),
                       "import");
    Report(options, ImportProgress::Stage::kLinked, sources[i].path.str(), result.files[i].size);
  }
  MC_RETURN_IF_ERROR(store.WriteRef(repo, revision, result.commit), "import");
  Report(options, ImportProgress::Stage::kRefWritten, "", result.bytes);
  return result;
}

}  // namespace mc::cache
