#include "daemon/seccomp_policy.hpp"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <memory>
#include <stdexcept>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace sandbox::daemon {

namespace {

// What ordinary programs use: file and socket I/O, memory, processes and threads, signals,
// timers, ids (all confined to the sandbox's user namespace), and the newer forms of each.
// Names this architecture lacks (e.g. "open" on arm64) are skipped.
const char* const kAllowed[] = {
    // files and descriptors
    "read",
    "write",
    "open",
    "openat",
    "openat2",
    "close",
    "close_range",
    "creat",
    "lseek",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "dup",
    "dup2",
    "dup3",
    "pipe",
    "pipe2",
    "fcntl",
    "flock",
    "fsync",
    "fdatasync",
    "syncfs",
    "sync",
    "sync_file_range",
    "truncate",
    "ftruncate",
    "fallocate",
    "fadvise64",
    "readahead",
    "sendfile",
    "splice",
    "tee",
    "vmsplice",
    "copy_file_range",
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "statx",
    "statfs",
    "fstatfs",
    "access",
    "faccessat",
    "faccessat2",
    "getdents",
    "getdents64",
    "getcwd",
    "chdir",
    "fchdir",
    "rename",
    "renameat",
    "renameat2",
    "mkdir",
    "mkdirat",
    "rmdir",
    "link",
    "linkat",
    "unlink",
    "unlinkat",
    "symlink",
    "symlinkat",
    "readlink",
    "readlinkat",
    "chmod",
    "fchmod",
    "fchmodat",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "umask",
    "mknod",
    "mknodat",
    "utime",
    "utimes",
    "utimensat",
    "futimesat",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "ioctl",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "eventfd",
    "eventfd2",
    "signalfd",
    "signalfd4",
    "timerfd_create",
    "timerfd_settime",
    "timerfd_gettime",
    "inotify_init",
    "inotify_init1",
    "inotify_add_watch",
    "inotify_rm_watch",
    "memfd_create",
    "io_setup",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_submit",
    "io_cancel",
    // sockets (the sandbox's own network namespace)
    "socket",
    "socketpair",
    "connect",
    "accept",
    "accept4",
    "bind",
    "listen",
    "shutdown",
    "getsockname",
    "getpeername",
    "setsockopt",
    "getsockopt",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
    // memory
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "msync",
    "mincore",
    "madvise",
    "mlock",
    "mlock2",
    "munlock",
    "mlockall",
    "munlockall",
    "remap_file_pages",
    "mbind",
    "set_mempolicy",
    "get_mempolicy",
    "set_mempolicy_home_node",
    "membarrier",
    "pkey_mprotect",
    "pkey_alloc",
    "pkey_free",
    "process_madvise",
    "shmget",
    "shmat",
    "shmdt",
    "shmctl",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
    // processes, threads, scheduling (clone and unshare are checked below)
    "fork",
    "vfork",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "wait4",
    "waitid",
    "kill",
    "tkill",
    "tgkill",
    "getpid",
    "getppid",
    "gettid",
    "getpgid",
    "setpgid",
    "getpgrp",
    "getsid",
    "setsid",
    "set_tid_address",
    "set_robust_list",
    "get_robust_list",
    "futex",
    "futex_waitv",
    "rseq",
    "arch_prctl",
    "prctl",
    "seccomp",
    "getrlimit",
    "setrlimit",
    "prlimit64",
    "getrusage",
    "times",
    "sysinfo",
    "uname",
    "getpriority",
    "setpriority",
    "sched_yield",
    "sched_setparam",
    "sched_getparam",
    "sched_setscheduler",
    "sched_getscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_rr_get_interval",
    "sched_setaffinity",
    "sched_getaffinity",
    "sched_setattr",
    "sched_getattr",
    "getcpu",
    "ioprio_set",
    "ioprio_get",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    "capget",
    "capset",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    "sethostname",
    "setdomainname",
    // signals and time
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "rt_sigsuspend",
    "sigaltstack",
    "pause",
    "nanosleep",
    "clock_nanosleep",
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "alarm",
    "getitimer",
    "setitimer",
    "timer_create",
    "timer_settime",
    "timer_gettime",
    "timer_getoverrun",
    "timer_delete",
    "adjtimex",
    "restart_syscall",
    "getrandom",
    // identities (inside the sandbox's user namespace: one uid and gid are mapped)
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setfsuid",
    "setfsgid",
    "setgroups",
};

// Fail with EPERM: the calls container runtimes deny because they reach the kernel or the host
// beyond the sandbox (most also need capabilities a sandbox never has; the filter makes the
// answer independent of that).
const std::vector<std::string> kDenied = {
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "query_module",
    "get_kernel_syms",
    "open_by_handle_at",
    "name_to_handle_at",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "swapon",
    "swapoff",
    "reboot",
    "clock_settime",
    "clock_adjtime",
    "settimeofday",
    "stime",
    "syslog",
    "acct",
    "quotactl",
    "quotactl_fd",
    "lookup_dcookie",
    "nfsservctl",
    "iopl",
    "ioperm",
    "setns",
    "kcmp",
    "fanotify_init",
    "vhangup",
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
    "migrate_pages",
    "move_pages",
};

// The namespace flags of clone(2) and unshare(2). CLONE_NEWTIME shares its bit with clone's
// exit-signal byte, so it is checked for unshare only.
constexpr unsigned long kCloneNamespaces = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS |
                                           CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                                           CLONE_NEWNET;
constexpr unsigned long kUnshareNamespaces = kCloneNamespaces | CLONE_NEWTIME;

struct CtxDeleter {
    void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxDeleter>;

void check(int rc, const std::string& what) {
    if (rc < 0) throw std::runtime_error("seccomp: " + what + ": error " + std::to_string(-rc));
}

int resolve(const std::string& name) {
    return seccomp_syscall_resolve_name(name.c_str());
}

std::string exportProgram(void* ctx) {
    // seccomp_export_bpf writes to a descriptor: a memory file, read back.
    int fd = ::memfd_create("seccomp-bpf", MFD_CLOEXEC);
    if (fd < 0) throw std::runtime_error("seccomp: memfd_create failed");
    int rc = seccomp_export_bpf(ctx, fd);
    std::string out;
    if (rc == 0) {
        ::lseek(fd, 0, SEEK_SET);
        char buf[4096];
        ssize_t n;
        while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    check(rc, "export");
    if (out.empty() || out.size() % 8 != 0) throw std::runtime_error("seccomp: bad program");
    return out;
}

}  // namespace

const std::vector<std::string>& seccompDeniedCalls() {
    return kDenied;
}

SeccompPrograms buildSeccompPrograms() {
    SeccompPrograms out;
    {
        Ctx ctx(seccomp_init(SCMP_ACT_ERRNO(ENOSYS)));
        if (!ctx) throw std::runtime_error("seccomp: seccomp_init failed");
        void* c = ctx.get();
        for (const char* name : kAllowed) {
            int nr = resolve(name);
            if (nr == __NR_SCMP_ERROR || nr < 0) continue;  // not on this architecture
            check(seccomp_rule_add(c, SCMP_ACT_ALLOW, nr, 0), name);
        }
        for (const auto& name : kDenied) {
            int nr = resolve(name);
            if (nr == __NR_SCMP_ERROR || nr < 0) continue;
            check(seccomp_rule_add(c, SCMP_ACT_ERRNO(EPERM), nr, 0), name);
        }
        // personality(2): the default domain, the query, and flags that only change how this
        // process's own address space is laid out; any other value is refused (ENOSYS).
        for (unsigned long v : {0x0ul, 0x0008ul, 0x20000ul, 0x20008ul, 0x0040000ul, 0xfffffffful})
            check(seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(personality), 1,
                                   SCMP_A0(SCMP_CMP_EQ, v)),
                  "personality");
        // clone(2) and unshare(2) without namespace flags are ordinary (threads, fork); with
        // any, EPERM: no new user namespace (the way to capabilities), nor any other.
        check(seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                               SCMP_A0(SCMP_CMP_MASKED_EQ, kCloneNamespaces, 0)),
              "clone");
        check(seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(unshare), 1,
                               SCMP_A0(SCMP_CMP_MASKED_EQ, kUnshareNamespaces, 0)),
              "unshare");
        for (unsigned long flag :
             {static_cast<unsigned long>(CLONE_NEWNS), static_cast<unsigned long>(CLONE_NEWCGROUP),
              static_cast<unsigned long>(CLONE_NEWUTS), static_cast<unsigned long>(CLONE_NEWIPC),
              static_cast<unsigned long>(CLONE_NEWUSER), static_cast<unsigned long>(CLONE_NEWPID),
              static_cast<unsigned long>(CLONE_NEWNET)}) {
            check(seccomp_rule_add(c, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                   SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)),
                  "clone");
            check(seccomp_rule_add(c, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
                                   SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)),
                  "unshare");
        }
        check(seccomp_rule_add(c, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
                               SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWTIME, CLONE_NEWTIME)),
              "unshare");
        // clone3 is left out on purpose: it passes its flags in memory a filter cannot read,
        // and the default answer, ENOSYS, sends libc back to clone(2), checked above.
        out.allowList = exportProgram(c);
    }
    {
        Ctx ctx(seccomp_init(SCMP_ACT_ALLOW));
        if (!ctx) throw std::runtime_error("seccomp: seccomp_init failed");
        for (unsigned long request :
             {static_cast<unsigned long>(TIOCSTI), static_cast<unsigned long>(TIOCLINUX)})
            check(seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                                   SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffull, request)),
                  "ioctl");
        out.ioctlDenials = exportProgram(ctx.get());
    }
    return out;
}

}  // namespace sandbox::daemon
