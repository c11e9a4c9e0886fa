#include "mc/hub/secret.h"

#include <ostream>

#include "mc/common/constant_time.h"

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
  return ConstantTimeEquals(value_, candidate);
}

std::ostream& operator<<(std::ostream& os, const Secret& secret) { return os << secret.ToString(); }

}  // namespace mc::hub
