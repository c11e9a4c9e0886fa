#include "mc/hub/secret.h"

#include <algorithm>
#include <ostream>

namespace mc::hub {

Secret::Secret(Secret&& other) noexcept : value_(std::move(other.value_)) { other.Wipe(); }

Secret& Secret::operator=(const Secret& other) {
  if (this != &other) {
    Wipe();
    value_ = other.value_;
  }
  return *this;
}

Secret& Secret::operator=(Secret&& other) noexcept {
  if (this != &other) {
    Wipe();
    value_ = std::move(other.value_);
    other.Wipe();
  }
  return *this;
}

Secret::~Secret() { Wipe(); }

void Secret::Wipe() {
  // volatile keeps the compiler from dropping stores to memory that is about to be released.
  volatile char* p = value_.data();
  for (size_t i = 0; i < value_.size(); ++i) p[i] = 0;
  value_.clear();
}

std::string Secret::ToString() const {
  if (value_.empty()) return "<empty>";
  if (value_.rfind("hf_", 0) == 0) return "hf_***";
  return "***";
}

bool Secret::Matches(std::string_view candidate) const {
  const size_t n = std::max(value_.size(), candidate.size());
  unsigned char diff = value_.size() == candidate.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char a = i < value_.size() ? static_cast<unsigned char>(value_[i]) : 0;
    const unsigned char b = i < candidate.size() ? static_cast<unsigned char>(candidate[i]) : 0;
    diff |= static_cast<unsigned char>(a ^ b);
  }
  return diff == 0;
}

std::ostream& operator<<(std::ostream& os, const Secret& secret) { return os << secret.ToString(); }

}  // namespace mc::hub
