// Server log lines in Redis's format: "<pid>:M <date> <level char> <message>", on stderr or in
// --logfile (opened again on SIGHUP, for logrotate).
#pragma once

#include <string_view>

namespace runnel::log {

enum class Level { kDebug = 0, kVerbose = 1, kNotice = 2, kWarning = 3 };

void set_level(Level level);
// Parses "debug", "verbose", "notice" or "warning"; false for anything else.
bool parse_level(std::string_view text, Level& level);
std::string_view level_name(Level level);
Level level();

void write(Level level, std::string_view message);
// Log lines go to the file at `path` (appended to) from now on; "" is stderr. On failure,
// the error text, and the lines go where they went before.
[[nodiscard]] std::string open_file(const std::string& path);
// Opens the file again by its path (after logrotate moved it): a new file if it is gone.
void reopen();
inline void debug(std::string_view m) { write(Level::kDebug, m); }
inline void verbose(std::string_view m) { write(Level::kVerbose, m); }
inline void notice(std::string_view m) { write(Level::kNotice, m); }
inline void warning(std::string_view m) { write(Level::kWarning, m); }

// Escapes client bytes for a log line, keeping at most `max` of them.
std::string escape_sample(std::string_view bytes, std::size_t max = 64);

}  // namespace runnel::log
