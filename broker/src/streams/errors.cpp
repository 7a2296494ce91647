#include "streams/errors.hpp"

namespace runnel::errors {

OpError no_group(std::string_view key, std::string_view group, NoGroupIn where) {
  std::string text;
  switch (where) {
    case NoGroupIn::kGroupCommand:
      text = "NOGROUP No such consumer group '" + std::string(group) + "' for key name '" + std::string(key) + "'";
      break;
    case NoGroupIn::kKeyOrGroup:
    case NoGroupIn::kReadGroup:
      text = "NOGROUP No such key '" + std::string(key) + "' or consumer group '" + std::string(group) + "'";
      if (where == NoGroupIn::kReadGroup) text += " in XREADGROUP with GROUP option";
      break;
  }
  return op_error(Errc::kNoGroup, std::move(text));
}

}  // namespace runnel::errors
