// Resume records read back from disk (a record a crash, a bug or a user left in the state dir).
// Invariants: a loaded record never claims more bytes in a cell than the cell has; one that does
// not load is replaced by a fresh one, never an error that blocks the download.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "downloader/resume_record.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mc;
  static const std::filesystem::path dir = [] {
    char tmpl[] = "/tmp/fuzz-resume-XXXXXX";
    return std::filesystem::path(::mkdtemp(tmpl));
  }();
  if (size < 2) return 0;
  const uint64_t blob_size = 1 + (data[0] * 4099u) % (1u << 16);
  const uint64_t cell = 1 + data[1] * 257u;
  const std::filesystem::path record = dir / "r.resume";
  const std::filesystem::path blob = dir / "blob";
  std::filesystem::remove(record);
  int bfd = ::open(blob.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  (void)!::ftruncate(bfd, static_cast<off_t>(blob_size));
  const Etag etag = *Etag::Parse(std::string(64, 'b'));
  bool resumed = false;
  // A genuine record first (its header matches this blob file), then its bytes replaced: after
  // the header when data[1] is even (the cell counts are fuzzed), wholly when odd.
  std::string header(128, '\0');
  {
    StatusOr<downloader::ResumeRecord> fresh = downloader::ResumeRecord::Open(
        FileSystem::Real(), record, etag, blob_size, cell, bfd, &resumed);
    MC_FUZZ_CHECK(fresh.ok() && !resumed);
    int fd = ::open(record.c_str(), O_RDONLY);
    (void)!::read(fd, header.data(), header.size());
    ::close(fd);
  }
  int rfd = ::open(record.c_str(), O_WRONLY | O_TRUNC, 0600);
  if (data[1] % 2 == 0) (void)!::write(rfd, header.data(), header.size());
  (void)!::write(rfd, data + 2, size - 2);
  ::close(rfd);
  StatusOr<downloader::ResumeRecord> r = downloader::ResumeRecord::Open(
      FileSystem::Real(), record, etag, blob_size, cell, bfd, &resumed);
  MC_FUZZ_CHECK(r.ok());
  for (size_t c = 0; c < r->cells(); ++c) MC_FUZZ_CHECK(r->written(c) <= r->CellLength(c));
  ::close(bfd);
  return 0;
}
