// Makes idle OpenMP workers sleep instead of spin, unless the user chose otherwise (OMP_WAIT_POLICY).
#pragma once

namespace embedserve::cli {

// libgomp reads OMP_WAIT_POLICY once, in a constructor that runs before main, and has no API to change
// it later. Its default spins a waiting worker for ~300k iterations before sleeping, which is right for a
// machine running nothing else and wrong for a server: the network and tokenizer threads, or any other
// process, take a core, and every barrier then waits out the descheduled worker's time slice while the
// others burn theirs spinning. Measured on the 2-core dev VM under a neighbour's build, a tiny model on 2
// threads: 5.5 s per batch spinning, 0.14 s passive (docs/PERFORMANCE.md). So when the variable is unset,
// set it to PASSIVE and re-execute this same binary with the same arguments (the pid is kept, so signals
// and supervisors are unaffected). Returns only when no re-exec happened (variable already set, or exec
// failed, in which case the process goes on with libgomp's default).
void ensure_passive_openmp_wait(char** argv);

}  // namespace embedserve::cli
