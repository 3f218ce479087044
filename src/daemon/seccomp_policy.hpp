#pragma once
// The seccomp filters every sandbox runs under (loaded by bubblewrap with --add-seccomp-fd, after
// no_new_privs, just before the sandbox's first program runs; every process of the sandbox
// inherits them and none can remove them).
//
// Two programs, stacked (the kernel applies the stricter answer of the two):
//  1. an allow-list in the spirit of Docker's default profile: the system calls ordinary
//     programs make are allowed; a list of dangerous ones fail with EPERM (keyrings, bpf,
//     perf_event_open, userfaultfd, io_uring, kexec and modules, file handles, mount and the new
//     mount API, swap, reboot, clocks, syslog, new user namespaces, setns, ...); clone3 fails
//     with ENOSYS (so libc falls back to clone, whose flags can be checked); anything else not
//     on the list fails with ENOSYS, as on a kernel that lacks it.
//  2. a deny-list for ioctl requests that inject input into a terminal (TIOCSTI, TIOCLINUX),
//     compared on the low 32 bits as the kernel reads them. (libseccomp cannot express "allow
//     ioctl except these" inside one default-deny program, hence the second one.)
#include <string>
#include <vector>

namespace sandbox::daemon {

struct SeccompPrograms {
    std::string allowList;     ///< BPF program 1 (struct sock_filter[]), as bwrap reads it
    std::string ioctlDenials;  ///< BPF program 2
};

/// Builds both programs for this machine's architecture. Throws std::runtime_error.
SeccompPrograms buildSeccompPrograms();

/// The system calls that fail with EPERM in a sandbox (documentation and tests).
const std::vector<std::string>& seccompDeniedCalls();

}  // namespace sandbox::daemon
