#include "mc/net/prometheus.h"

#include <charconv>
#include <cmath>

namespace mc::net {

void PrometheusText::Family(std::string_view name, std::string_view help, std::string_view type) {
  text_.append("# HELP ").append(name).append(" ").append(help).append("\n");
  text_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void PrometheusText::SampleText(std::string_view name, Labels labels, const std::string& value) {
  text_.append(name);
  if (labels.size() > 0) {
    text_ += '{';
    bool first = true;
    for (const auto& [key, raw] : labels) {
      if (!first) text_ += ',';
      first = false;
      text_.append(key).append("=\"");
      for (char c : raw) {
        if (c == '\\' || c == '"') {
          text_ += '\\';
          text_ += c;
        } else if (c == '\n') {
          text_ += "\\n";
        } else {
          text_ += c;
        }
      }
      text_ += '"';
    }
    text_ += '}';
  }
  text_.append(" ").append(value).append("\n");
}

std::string PrometheusText::FormatDouble(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, end);
}

void PrometheusText::Reply(HttpResponse& response) const {
  response.SetText(200, text_, "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace mc::net
