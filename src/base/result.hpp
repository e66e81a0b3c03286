// SPDX-License-Identifier: GPL-2.0-or-later
// Errors are values in osmo: every fallible operation returns Result<T>, which holds either a
// value or an Error (an errno-style code plus a precise, human-readable message with context).
// Exceptions never cross a module boundary.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace osmo {

struct Error {
  int code = 0;         // errno value when the failure came from the kernel, else 0
  std::string message;  // one line: what failed, on what, and why

  std::string str() const {
    if (code == 0) return message;
    return fmt::format("{}: {}", message, std::strerror(code));
  }
};

// Builds an Error from a format string; code 0.
template <typename... Args>
Error make_error(fmt::format_string<Args...> f, Args&&... args) {
  return Error{0, fmt::format(f, std::forward<Args>(args)...)};
}

// Builds an Error carrying the current errno (read before formatting, which may clobber it).
template <typename... Args>
Error errno_error(fmt::format_string<Args...> f, Args&&... args) {
  int saved = errno;
  return Error{saved, fmt::format(f, std::forward<Args>(args)...)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }
  Error&& take_error() { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return err_; }
  Error&& take_error() { return std::move(err_); }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Status ok_status() { return Status{}; }

}  // namespace osmo

// Propagates an error from an expression returning Result<...>/Status.
#define OSMO_TRY(expr)                                  \
  do {                                                  \
    auto osmo_try_r_ = (expr);                          \
    if (!osmo_try_r_.ok()) return osmo_try_r_.take_error(); \
  } while (0)

// Assigns the value of a Result expression to `lhs` or propagates its error.
#define OSMO_CONCAT_INNER_(a, b) a##b
#define OSMO_CONCAT_(a, b) OSMO_CONCAT_INNER_(a, b)
#define OSMO_ASSIGN_OR_RETURN(lhs, expr)                             \
  auto OSMO_CONCAT_(osmo_r_, __LINE__) = (expr);                     \
  if (!OSMO_CONCAT_(osmo_r_, __LINE__).ok())                         \
    return OSMO_CONCAT_(osmo_r_, __LINE__).take_error();             \
  lhs = std::move(OSMO_CONCAT_(osmo_r_, __LINE__)).value()
