#include "mc/common/text_tail.h"

#include <fstream>
#include <system_error>

namespace mc {

std::string LastLines(std::string_view text, size_t max_lines, size_t max_bytes) {
  if (max_lines == 0 || max_bytes == 0) return "";
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  // Walk back one line at a time: text[start, size) is what is kept so far, and text[start - 1]
  // is the line break before it.
  size_t start = text.size();
  for (size_t lines = 0; lines < max_lines; ++lines) {
    const size_t end = lines == 0 ? text.size() : start - 1;  // where the next line ends
    const size_t nl = end == 0 ? std::string_view::npos : text.rfind('\n', end - 1);
    const size_t line_start = nl == std::string_view::npos ? 0 : nl + 1;
    if (text.size() - line_start > max_bytes) {
      // This line would pass the byte cap: keep what came before, or the end of this one if it
      // is the only line.
      if (lines == 0) start = text.size() - max_bytes;
      break;
    }
    start = line_start;
    if (nl == std::string_view::npos) break;
  }
  return ValidUtf8(text.substr(start));
}

namespace {

// The length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629, table 3-7 of
// Unicode: no overlong forms, no surrogates, nothing above U+10FFFF); 0 if there is none.
size_t Utf8Length(std::string_view s) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  auto in = [&](size_t i, unsigned lo, unsigned hi) {
    return i < s.size() && byte(i) >= lo && byte(i) <= hi;
  };
  const unsigned b = byte(0);
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return in(1, 0x80, 0xBF) ? 2 : 0;
  if (b >= 0xE0 && b <= 0xEF) {
    const unsigned lo = b == 0xE0 ? 0xA0 : 0x80, hi = b == 0xED ? 0x9F : 0xBF;
    return in(1, lo, hi) && in(2, 0x80, 0xBF) ? 3 : 0;
  }
  if (b >= 0xF0 && b <= 0xF4) {
    const unsigned lo = b == 0xF0 ? 0x90 : 0x80, hi = b == 0xF4 ? 0x8F : 0xBF;
    return in(1, lo, hi) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF) ? 4 : 0;
  }
  return 0;
}

}  // namespace

std::string ValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const size_t n = Utf8Length(text);
    if (n == 0) {
      out += '?';
      text.remove_prefix(1);
    } else {
      out.append(text.substr(0, n));
      text.remove_prefix(n);
    }
  }
  return out;
}

StatusOr<std::string> ReadFileTail(const std::filesystem::path& path, size_t max_lines,
                                   size_t max_bytes) {
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec == std::errc::no_such_file_or_directory) return std::string();
  if (ec) return InternalError("size of " + path.string() + ": " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) return InternalError("cannot open " + path.string());
  // One byte more than the cap: the line break before the first kept line, so that a cut line
  // at the start of the window is known to be cut and dropped.
  const uintmax_t window = std::min<uintmax_t>(size, max_bytes + 1);
  in.seekg(static_cast<std::streamoff>(size - window));
  std::string data(window, '\0');
  in.read(data.data(), static_cast<std::streamsize>(window));
  data.resize(static_cast<size_t>(in.gcount()));
  std::string_view view = data;
  if (window < size) {
    // The window starts inside a line: drop that part unless it is all there is.
    const size_t nl = view.find('\n');
    if (nl != std::string_view::npos && nl + 1 < view.size()) view.remove_prefix(nl + 1);
  }
  return LastLines(view, max_lines, max_bytes);
}

}  // namespace mc
