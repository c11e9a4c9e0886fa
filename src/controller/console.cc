#include "controller/console.h"

#include <algorithm>
#include <string>
#include <string_view>

#include "controller/console_files.h"
#include "mc/net/http_server.h"

namespace mc::controller {
namespace {

constexpr std::string_view kPrefix = "/console/";

// The page loads only its own files and talks only to its own origin; with no inline script or
// style allowed, markup that slipped into the page could not run (the console also never parses
// data as HTML: it builds the DOM with textContent).
constexpr const char* kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

void SetSecurityHeaders(net::HttpResponse& res) {
  res.headers.Set("Content-Security-Policy", kContentSecurityPolicy);
  res.headers.Set("X-Content-Type-Options", "nosniff");
  res.headers.Set("Referrer-Policy", "no-referrer");
  res.headers.Set("Cache-Control", "no-cache");
}

const EmbeddedFile* FindFile(std::string_view path) {
  const auto files = ConsoleFiles();
  auto it = std::find_if(files.begin(), files.end(),
                         [&](const EmbeddedFile& f) { return f.path == path; });
  return it == files.end() ? nullptr : &*it;
}

}  // namespace

bool ServeConsole(const net::HttpRequest& req, net::HttpResponse& res) {
  if (req.method != "GET" && req.method != "HEAD") return false;
  const std::string_view path = req.raw_path;
  if (path == "/" || path == "/console") {
    res.SetText(302, "the console is at /console/\n");
    res.headers.Set("Location", std::string(kPrefix));
    SetSecurityHeaders(res);
    return true;
  }
  if (!path.starts_with(kPrefix)) return false;
  std::string_view name = path.substr(kPrefix.size());
  if (name.empty()) name = "index.html";
  // A lookup in the embedded table: no path is ever built from the request.
  if (const EmbeddedFile* f = FindFile(name)) {
    res.SetText(200, std::string(f->bytes), std::string(f->content_type));
  } else {
    res.SetText(404, "no such console file\n");
  }
  SetSecurityHeaders(res);
  return true;
}

}  // namespace mc::controller
