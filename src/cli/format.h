// Small helpers for human-readable CLI output.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace mc::cli {

// A left-aligned text table with a header row and a dashed rule under it.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// "just now", "12 seconds ago", "3 minutes ago", "5 hours ago", "2 days ago", "never".
std::string Ago(std::chrono::system_clock::time_point t,
                std::chrono::system_clock::time_point now = std::chrono::system_clock::now());
int64_t UnixSeconds(std::chrono::system_clock::time_point t);
std::string Join(const std::vector<std::string>& parts, const std::string& sep);

}  // namespace mc::cli
