// Secret: a credential (a Hub access token) that cannot be printed by accident.
//
// Tokens must never reach logs, error messages, API responses or argv (design.md §6). Secret has
// no implicit conversion to a string; streaming it or calling ToString() yields a redacted form.
// The raw value is available only through Reveal(), whose call sites are easy to audit (building
// an Authorization header, comparing with a configured token). The value is wiped from memory
// when the Secret is destroyed or overwritten. A Secret is a value type; not synchronised.
#pragma once

#include <iosfwd>
#include <string>
#include <string_view>

namespace mc::hub {

class Secret {
 public:
  explicit Secret(std::string value) : value_(std::move(value)) {}
  Secret(const Secret& other) : value_(other.value_) {}
  Secret(Secret&& other) noexcept;
  Secret& operator=(const Secret& other);
  Secret& operator=(Secret&& other) noexcept;
  ~Secret();

  // The raw value. Only for the Authorization header or a comparison; never log the result.
  std::string_view Reveal() const { return value_; }
  bool empty() const { return value_.empty(); }

  // "hf_***" for Hub user tokens, "***" for anything else, "<empty>" when empty. Reveals no
  // character of the value beyond the well-known "hf_" prefix.
  std::string ToString() const;

  // Compares with `candidate` in time that depends only on the lengths, so that a server checking
  // tokens does not leak how many leading characters matched.
  bool Matches(std::string_view candidate) const;

 private:
  void Wipe();
  std::string value_;
};

// Writes ToString(): gtest, logging and ostreams never see the value.
std::ostream& operator<<(std::ostream& os, const Secret& secret);

}  // namespace mc::hub
