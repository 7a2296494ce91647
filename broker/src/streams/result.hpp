// Result<T>: what a stream or group op returns, a value or an OpError (std::expected is
// C++23; this is the small part of it the ops use).
//
// An OpError is the error reply Redis gives for the case, its text without the leading '-'
// ("ERR ...", "NOGROUP ...", "BUSYGROUP ..."). A read of stored entries that failed carries
// the storage::Error instead: only the caller knows the key its reply must name
// (stream_reply.hpp's error_text).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

#include <runnel/storage/error.hpp>

namespace runnel {

enum class Errc : std::uint8_t {
  kArgument,     // an argument the op cannot take (an ID rule, a count)
  kNoKey,        // "ERR no such key"
  kNoGroup,      // NOGROUP
  kGroupExists,  // BUSYGROUP
  kStorage,      // entries could not be read back (IOERR / DAMAGED)
  kNoFolder,     // a new stream's folder could not be made (MISCONF)
};

struct OpError {
  Errc code = Errc::kArgument;
  std::string text;       // the reply's text, without '-' (empty for kStorage)
  storage::Error cause;   // kStorage: what the read met
};

inline OpError op_error(Errc code, std::string text) { return OpError{code, std::move(text), {}}; }
inline OpError storage_error(storage::Error cause) {
  return OpError{Errc::kStorage, {}, std::move(cause)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit, as expected's
  Result(OpError error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  [[nodiscard]] bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& operator*() { return std::get<0>(v_); }
  const T& operator*() const { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  [[nodiscard]] const OpError& error() const { return std::get<1>(v_); }
  [[nodiscard]] OpError take_error() { return std::move(std::get<1>(v_)); }

 private:
  std::variant<T, OpError> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(OpError error) : error_(std::move(error)), failed_(true) {}  // NOLINT

  [[nodiscard]] bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  [[nodiscard]] const OpError& error() const { return error_; }
  [[nodiscard]] OpError take_error() { return std::move(error_); }

 private:
  OpError error_;
  bool failed_ = false;
};

}  // namespace runnel
