// JSON answers of the modelcache HTTP APIs (the agent and the controller): the one place that
// sets their Content-Type and writes their error body.
//
// The body is taken already serialised, so that this header (and net) stay free of any JSON
// library: callers dump their nlohmann::json themselves. Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "mc/common/status.h"
#include "mc/net/http_server.h"

namespace mc::net {

// Sets `status`, Content-Type: application/json and `json_text` (a serialised JSON value).
void SetJson(HttpResponse& response, int status, std::string json_text);

// The error body of the APIs, {"error": <message>, "code": <StatusCodeName>}, with the HTTP
// status mc::ToHttpStatus gives `error` (which must not be OK).
void SetJsonError(HttpResponse& response, const Status& error);
// The same with an HTTP status of the caller's choosing (405, which no Status code maps to).
void SetJsonError(HttpResponse& response, int http_status, const Status& error);

// `text` as a JSON string literal, quotes included. Bytes that are not valid UTF-8 become
// U+FFFD, so any text (an error message quoting request input) gives valid JSON.
std::string JsonQuote(std::string_view text);

// True if `text`, read as JSON, nests arrays and objects more than `max_depth` deep (brackets
// inside strings do not count). A linear scan that never recurses, so it is safe on any input;
// it does not validate the rest of the syntax.
bool JsonDeeperThan(std::string_view text, int max_depth);

}  // namespace mc::net
