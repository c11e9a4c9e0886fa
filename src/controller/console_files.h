// The web console's files (web/console), embedded in the binary by cmake/embed_files.cmake, which
// generates the definition of ConsoleFiles() at build time.
#pragma once

#include <span>
#include <string_view>

namespace mc::controller {

struct EmbeddedFile {
  std::string_view path;          // relative to web/console, e.g. "app.js"
  std::string_view content_type;  // from the extension, e.g. "text/javascript; charset=utf-8"
  std::string_view bytes;
};

// Every file, sorted by path. Constant data: safe from any thread, at any time.
std::span<const EmbeddedFile> ConsoleFiles();

}  // namespace mc::controller
