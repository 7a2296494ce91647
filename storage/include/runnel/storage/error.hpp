// storage::Error: what a storage call could not do, for the caller to report. Empty (false)
// when the call succeeded. Reads of entries return it (EntryStore::scan, SegmentLog's reads),
// so a failed read is an error the command answers, never a short answer; so do the calls
// that open, write and sync the data dir's files (file.hpp, SegmentLog, GroupJournal).
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

// A system call failed with errno `code` while `doing` something to `path`:
// what = "<doing> <path>: <strerror(code)>", or "<doing>: <strerror(code)>" without a path.
[[nodiscard]] Error system_error(std::string doing, std::string path, int code);
// Bytes on disk that are wrong: `what` as given, code 0.
[[nodiscard]] Error damage_error(std::string what, std::string path = {});

}  // namespace runnel::storage
