// sandbox-try-syscall: tries system calls a sandbox must not be able to make, each in a child
// process of its own, and prints one line per attempt: "NAME OK" when the call succeeded, else
// "NAME ERRNO" (the symbolic name). The escape tests copy it into a sandbox and run it there.
//   sandbox-try-syscall            every attempt
//   sandbox-try-syscall NAME...    those named
// Plain C++ on libc only (it runs inside sandboxes, whose /usr is the host's).
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

namespace {

struct Attempt {
    const char* name;
    long (*run)();
};

long sys(long nr, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
    return ::syscall(nr, a, b, c, d, e, f);
}

long ptyIoctl(unsigned long request) {
    int fd = ::open("/dev/ptmx", O_RDWR | O_NOCTTY);
    if (fd < 0) return -1;
    char c = 'x';
    return ::syscall(SYS_ioctl, fd, request, &c);
}

// The agent is its sandbox's init: pid 1 in the sandbox's pid namespace.
constexpr pid_t kAgent = 1;

const Attempt kAttempts[] = {
    // keyrings, bpf, perf, userfaultfd, io_uring
    {"keyctl", [] { return sys(SYS_keyctl, 0 /*GET_KEYRING_ID*/, -3 /*session*/, 0); }},
    {"add_key",
     [] {
         return sys(SYS_add_key, (long)"user", (long)"escape", (long)"x", 1, -3 /*session*/);
     }},
    {"request_key", [] { return sys(SYS_request_key, (long)"user", (long)"escape", 0, 0); }},
    {"bpf",
     [] {
         union bpf_attr attr;
         memset(&attr, 0, sizeof attr);
         attr.map_type = BPF_MAP_TYPE_ARRAY;
         attr.key_size = 4;
         attr.value_size = 4;
         attr.max_entries = 1;
         return sys(SYS_bpf, BPF_MAP_CREATE, (long)&attr, sizeof attr);
     }},
    {"perf_event_open",
     [] {
         perf_event_attr attr;
         memset(&attr, 0, sizeof attr);
         attr.size = sizeof attr;
         attr.type = PERF_TYPE_SOFTWARE;
         attr.config = PERF_COUNT_SW_CPU_CLOCK;
         return sys(SYS_perf_event_open, (long)&attr, 0, -1, -1, 0);
     }},
    {"userfaultfd", [] { return sys(SYS_userfaultfd, 0); }},
    {"io_uring_setup",
     [] {
         char params[120] = {};
         return sys(SYS_io_uring_setup, 1, (long)params);
     }},
    // the kernel itself: modules, kexec, reboot, swap, clocks, its log, accounting, quotas
    {"kexec_load", [] { return sys(SYS_kexec_load, 0, 0, 0, 0); }},
    {"kexec_file_load", [] { return sys(SYS_kexec_file_load, -1, -1, 0, 0, 0); }},
    {"init_module", [] { return sys(SYS_init_module, 0, 0, (long)""); }},
    {"finit_module", [] { return sys(SYS_finit_module, -1, (long)"", 0); }},
    {"delete_module", [] { return sys(SYS_delete_module, (long)"escape", 0); }},
    {"reboot",
     [] {
         // LINUX_REBOOT_CMD_CAD_OFF: changes nothing even where it is allowed.
         return sys(SYS_reboot, 0xfee1dead, 672274793, 0, 0);
     }},
    {"swapon", [] { return sys(SYS_swapon, (long)"/tmp/escape-swap", 0); }},
    {"swapoff", [] { return sys(SYS_swapoff, (long)"/tmp/escape-swap"); }},
    {"clock_settime",
     [] {
         timespec now{};
         clock_gettime(CLOCK_REALTIME, &now);
         return sys(SYS_clock_settime, CLOCK_REALTIME, (long)&now);
     }},
    {"settimeofday",
     [] {
         timeval now{};
         gettimeofday(&now, nullptr);
         return sys(SYS_settimeofday, (long)&now, 0);
     }},
    {"syslog",
     [] {
         char buf[64];
         return sys(SYS_syslog, 3 /*READ_ALL*/, (long)buf, sizeof buf);
     }},
    {"acct", [] { return sys(SYS_acct, 0); }},
    {"quotactl", [] { return sys(SYS_quotactl, 0x800002 /*Q_GETFMT*/, (long)"/", 0, 0); }},
    {"iopl", [] { return sys(SYS_iopl, 3); }},
    {"ioperm", [] { return sys(SYS_ioperm, 0x80, 1, 1); }},
    // file handles, mounts (old and new API), root changes, namespaces
    {"open_by_handle_at",
     [] {
         char handle[128] = {};
         return sys(SYS_open_by_handle_at, AT_FDCWD, (long)handle, O_RDONLY);
     }},
    {"name_to_handle_at",
     [] {
         char handle[128] = {};
         int mount = 0;
         reinterpret_cast<unsigned*>(handle)[0] = 120;
         return sys(SYS_name_to_handle_at, AT_FDCWD, (long)"/", (long)handle, (long)&mount, 0);
     }},
    {"mount", [] { return sys(SYS_mount, (long)"none", (long)"/tmp", (long)"tmpfs", 0, 0); }},
    {"umount2", [] { return sys(SYS_umount2, (long)"/tmp", MNT_DETACH); }},
    {"pivot_root", [] { return sys(SYS_pivot_root, (long)"/tmp", (long)"/tmp"); }},
    {"chroot", [] { return sys(SYS_chroot, (long)"/tmp"); }},
    {"fsopen", [] { return sys(SYS_fsopen, (long)"tmpfs", 0); }},
    {"open_tree", [] { return sys(SYS_open_tree, AT_FDCWD, (long)"/tmp", 1 /*CLONE*/); }},
    {"move_mount", [] { return sys(SYS_move_mount, -1, (long)"", -1, (long)"", 0); }},
    {"setns",
     [] {
         int fd = ::open("/proc/self/ns/net", O_RDONLY);
         return sys(SYS_setns, fd, 0);
     }},
    {"unshare_user", [] { return sys(SYS_unshare, CLONE_NEWUSER); }},
    {"unshare_net", [] { return sys(SYS_unshare, CLONE_NEWNET); }},
    {"unshare_mount", [] { return sys(SYS_unshare, CLONE_NEWNS); }},
    {"clone_newuser",
     [] {
         long rc = sys(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
         if (rc == 0) _exit(0);
         return rc;
     }},
    {"clone3",
     [] {
         unsigned long long args[11] = {};
         args[4] = SIGCHLD;  // exit_signal
         long rc = sys(SYS_clone3, (long)args, sizeof args);
         if (rc == 0) _exit(0);
         return rc;
     }},
    {"kcmp", [] { return sys(SYS_kcmp, getpid(), getpid(), 0 /*KCMP_FILE*/, 0, 0); }},
    {"fanotify_init", [] { return sys(SYS_fanotify_init, 0, O_RDONLY); }},
    // the agent, from its own sandbox
    {"ptrace_agent",
     [] {
         long rc = sys(SYS_ptrace, PTRACE_SEIZE, kAgent, 0, 0);
         if (rc == 0) sys(SYS_ptrace, PTRACE_DETACH, kAgent, 0, 0);
         return rc;
     }},
    {"process_vm_readv_agent",
     [] {
         char buf[8];
         iovec local{buf, sizeof buf}, remote{reinterpret_cast<void*>(0x400000), sizeof buf};
         return sys(SYS_process_vm_readv, kAgent, (long)&local, 1, (long)&remote, 1, 0);
     }},
    {"proc_mem_agent",
     [] { return static_cast<long>(::open("/proc/1/mem", O_RDONLY)); }},
    {"pidfd_getfd_agent",
     [] {
         long pidfd = sys(SYS_pidfd_open, kAgent, 0);
         if (pidfd < 0) return pidfd;
         return sys(SYS_pidfd_getfd, pidfd, 3, 0);
     }},
    // terminal input injection
    {"tiocsti", [] { return ptyIoctl(TIOCSTI); }},
    {"tiocsti_high_bits", [] { return ptyIoctl(0x100000000ul | TIOCSTI); }},
    {"tioclinux", [] { return ptyIoctl(TIOCLINUX); }},
    {"personality_bsd", [] { return sys(SYS_personality, 0x0006 /*PER_BSD*/); }},
    // what ordinary programs do: must keep working
    {"getpid", [] { return sys(SYS_getpid); }},
    {"fork",
     [] {
         pid_t p = ::fork();
         if (p == 0) _exit(0);
         if (p > 0) ::waitpid(p, nullptr, 0);
         return static_cast<long>(p > 0 ? 0 : -1);
     }},
    {"unshare_files", [] { return sys(SYS_unshare, CLONE_FILES); }},
    {"personality_query", [] { return sys(SYS_personality, 0xffffffff); }},
    {"tcgetattr",
     [] {
         int fd = ::open("/dev/ptmx", O_RDWR | O_NOCTTY);
         termios t{};
         return static_cast<long>(::tcgetattr(fd, &t));
     }},
};

// Runs one attempt in a child; its errno (0: success) comes back on a pipe.
int tryOne(const Attempt& a) {
    int fds[2];
    if (::pipe(fds) != 0) return -1;
    pid_t child = ::fork();
    if (child == 0) {
        ::close(fds[0]);
        errno = 0;
        long rc = a.run();
        int err = rc < 0 ? (errno ? errno : EINVAL) : 0;
        (void)!::write(fds[1], &err, sizeof err);
        _exit(0);
    }
    ::close(fds[1]);
    int err = -1;
    if (::read(fds[0], &err, sizeof err) != sizeof err) err = -1;  // the child died trying
    ::close(fds[0]);
    ::waitpid(child, nullptr, 0);
    return err;
}

}  // namespace

int main(int argc, char** argv) {
    for (const Attempt& a : kAttempts) {
        bool wanted = argc == 1;
        for (int i = 1; i < argc && !wanted; ++i) wanted = strcmp(argv[i], a.name) == 0;
        if (!wanted) continue;
        int err = tryOne(a);
        if (err == 0)
            printf("%s OK\n", a.name);
        else if (err < 0)
            printf("%s DIED\n", a.name);
        else
            printf("%s %s\n", a.name, strerrorname_np(err) ? strerrorname_np(err) : "E?");
        fflush(stdout);
    }
    return 0;
}
