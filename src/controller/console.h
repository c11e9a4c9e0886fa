// The web console (docs/console.md): the static files of web/console, embedded in the binary at
// build time, served by the controller. The console is a client of the public /v1 and /v2 APIs
// like any other and has no route of its own: the page is public, every piece of data it shows
// needs the API key.
#pragma once

namespace mc::net {
struct HttpRequest;
struct HttpResponse;
}  // namespace mc::net

namespace mc::controller {

// Answers GET and HEAD of the console's paths and returns true:
//   "/" and "/console"   302 to /console/
//   "/console/"          index.html
//   "/console/<file>"    that file, or 404 if there is none
// with a strict Content-Security-Policy (same-origin scripts, styles and connections only; no
// inline script or style; no framing), X-Content-Type-Options: nosniff, Referrer-Policy:
// no-referrer and Cache-Control: no-cache. Returns false, leaving `res` untouched, for any other
// method or path (the caller's API routes). Thread-safe (reads constant data only).
bool ServeConsole(const net::HttpRequest& req, net::HttpResponse& res);

}  // namespace mc::controller
