// The constructors of storage::Error (error.hpp).
#include <runnel/storage/error.hpp>

#include <cstring>
#include <utility>

namespace runnel::storage {

Error system_error(std::string doing, std::string path, int code) {
  std::string what = std::move(doing);
  if (!path.empty()) what += " " + path;
  what += ": ";
  what += std::strerror(code);
  return Error{std::move(what), std::move(path), code};
}

Error damage_error(std::string what, std::string path) { return Error{std::move(what), std::move(path), 0}; }

}  // namespace runnel::storage
