// storage::Error: what a storage call could not do, for the caller to report. Empty (false)
// when the call succeeded. Reads of entries return it (EntryStore::scan, SegmentLog's reads),
// so a failed read is an error the command answers, never a short answer.
#pragma once

#include <string>

namespace runnel::storage {

struct [[nodiscard]] Error {
  std::string what;  // empty: no error; else the cause, naming the file
  std::string path;  // the file, when one is involved
  int code = 0;      // the errno of a failed system call; 0 for bytes that are wrong (damage)

  explicit operator bool() const noexcept { return !what.empty(); }
  // Bytes on disk that are wrong (a checksum mismatch, a malformed record, entries missing),
  // as opposed to a call the system refused (EIO, EMFILE, ...).
  [[nodiscard]] bool damage() const noexcept { return code == 0; }
};

}  // namespace runnel::storage
