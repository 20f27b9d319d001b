// partial_files: the .partial files a SIGINT or SIGTERM must remove before the process dies of it (no destructor
// runs then), for embed's writers.
#pragma once

#include <filesystem>

namespace embedserve::cli {

// Registers `partial` to be unlinked if SIGINT or SIGTERM ends the process; the signal is then raised again with its
// default action, so the exit status still says which one ended the run. Call it before the file is created, so no
// signal can fall between the creation and the registration. At most four files at once (embed writes two); a
// path past 4,095 bytes is not registered.
void unlink_on_signal(const std::filesystem::path& partial);
// The caller has renamed or removed `partial` (call it after doing so: a signal in between unlinks a name that is
// gone, which is harmless).
void forget_on_signal(const std::filesystem::path& partial);

}  // namespace embedserve::cli
