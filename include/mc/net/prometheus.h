// PrometheusText: the text exposition format (version 0.0.4) of a /metrics answer, the one
// writer the agent and the controller use. A family's # HELP and # TYPE lines, then its samples:
//
//   PrometheusText out;
//   out.Family("modelcache_agent_gpus", "GPU slots by state.", "gauge");
//   out.Sample("modelcache_agent_gpus", {{"state", "free"}}, 3);
//   out.Reply(response);
//
// Label values are escaped as the format asks (backslash, double quote, line feed), so any text
// (an endpoint id, a peer URL) is safe in them; names and help texts are the caller's constants.
// Integers are written exactly; other numbers in the shortest form that reads back the same.
// Not thread-safe (one writer per answer).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "mc/net/http_server.h"

namespace mc::net {

class PrometheusText {
 public:
  using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

  // The # HELP and # TYPE lines of a family; `type` is "gauge" or "counter".
  void Family(std::string_view name, std::string_view help, std::string_view type);

  // One sample: `name{k="v",...} value` (no braces without labels).
  template <typename Number>
    requires std::is_arithmetic_v<Number>
  void Sample(std::string_view name, Labels labels, Number value) {
    if constexpr (std::is_floating_point_v<Number>) {
      SampleText(name, labels, FormatDouble(static_cast<double>(value)));
    } else if constexpr (std::is_signed_v<Number>) {
      SampleText(name, labels, std::to_string(static_cast<int64_t>(value)));
    } else {
      SampleText(name, labels, std::to_string(static_cast<uint64_t>(value)));
    }
  }
  template <typename Number>
    requires std::is_arithmetic_v<Number>
  void Sample(std::string_view name, Number value) {
    Sample(name, {}, value);
  }

  const std::string& text() const { return text_; }
  // Status 200, the text, Content-Type: text/plain; version=0.0.4; charset=utf-8.
  void Reply(HttpResponse& response) const;

 private:
  static std::string FormatDouble(double value);
  void SampleText(std::string_view name, Labels labels, const std::string& value);

  std::string text_;
};

}  // namespace mc::net
