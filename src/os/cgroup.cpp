#include "os/cgroup.hpp"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace sandbox::os {

namespace {

// Whether a whitespace-separated list (cgroup.controllers) names `word`.
bool listHas(const std::string& list, const std::string& word) {
    std::istringstream in(list);
    std::string w;
    while (in >> w)
        if (w == word) return true;
    return false;
}

std::string errnoText(int negErr) {
    return std::strerror(-negErr);
}

// pids from a cgroup.procs file.
std::vector<pid_t> parsePids(const std::string& text) {
    std::vector<pid_t> out;
    std::istringstream in(text);
    long p;
    while (in >> p)
        if (p > 0) out.push_back(static_cast<pid_t>(p));
    return out;
}

}  // namespace

Cgroups Cgroups::detect(Syscalls& sys, std::string root) {
    Cgroups cg(sys, std::move(root));
    const std::string& r = cg.root_;
    if (sys.isCgroup2Mount(r)) {
        auto controllers = sys.readFile(r + "/cgroup.controllers").value_or("");
        if (listHas(controllers, "memory") && listHas(controllers, "pids")) {
            cg.version_ = CgroupVersion::V2;
            cg.cpu_ = listHas(controllers, "cpu");
            return cg;
        }
        cg.why_ = "the cgroup v2 hierarchy at " + r +
                  " does not offer the memory and pids controllers (cgroup.controllers: \"" +
                  controllers.substr(0, controllers.find('\n')) + "\")";
        return cg;
    }
    if (sys.exists(r + "/memory/cgroup.procs") && sys.exists(r + "/pids/cgroup.procs")) {
        cg.version_ = CgroupVersion::V1;
        cg.cpu_ = sys.exists(r + "/cpu/cpu.cfs_quota_us");
        return cg;
    }
    cg.why_ =
        "neither a cgroup v2 hierarchy with memory and pids nor cgroup v1 memory and pids "
        "hierarchies are mounted at " +
        r;
    return cg;
}

std::string Cgroups::describe() const {
    switch (version_) {
        case CgroupVersion::None:
            return "none (" + why_ + ")";
        case CgroupVersion::V1:
            return std::string("cgroup v1 (memory, pids") + (cpu_ ? ", cpu)" : ")");
        case CgroupVersion::V2:
            return std::string("cgroup v2 (memory, pids") + (cpu_ ? ", cpu)" : ")");
    }
    return {};
}

void Cgroups::setNone(std::string why) {
    version_ = CgroupVersion::None;
    cpu_ = false;
    why_ = std::move(why);
    name_.clear();
}

std::vector<std::string> Cgroups::hierarchies() const {
    if (version_ == CgroupVersion::V2) return {root_};
    if (version_ == CgroupVersion::V1) {
        std::vector<std::string> h = {root_ + "/pids", root_ + "/memory"};
        if (cpu_) h.push_back(root_ + "/cpu");
        return h;
    }
    return {};
}

std::string Cgroups::path(const std::string& child, const std::string& controller) const {
    if (version_ == CgroupVersion::V2) return root_ + "/" + name_ + "/" + child;
    return root_ + "/" + controller + "/" + name_ + "/" + child;
}

bool Cgroups::open(const std::string& name) {
    if (version_ == CgroupVersion::None) return false;
    std::vector<std::string> made;
    for (const auto& h : hierarchies()) {
        std::string dir = h + "/" + name;
        int rc = sys_->makeDir(dir, 0755);
        if (rc != 0 && rc != -EEXIST) {
            for (const auto& m : made) sys_->removeDir(m);
            setNone("cannot create " + dir + ": " + errnoText(rc));
            return false;
        }
        made.push_back(dir);
    }
    if (version_ == CgroupVersion::V2) {
        // Controllers reach a group only when its parent enables them for its children: the
        // root for the daemon's group, the daemon's group for each sandbox's.
        std::vector<std::string> wanted = {"memory", "pids"};
        if (cpu_) wanted.push_back("cpu");
        for (const std::string& parent : {root_, root_ + "/" + name}) {
            auto enabled = sys_->readFile(parent + "/cgroup.subtree_control").value_or("");
            for (const auto& c : wanted) {
                if (listHas(enabled, c)) continue;
                int rc = sys_->writeFile(parent + "/cgroup.subtree_control", "+" + c);
                if (rc == 0) continue;
                if (c == "cpu") {  // limits without CPU are still limits
                    cpu_ = false;
                    continue;
                }
                for (const auto& m : made) sys_->removeDir(m);
                setNone("cannot enable the " + c + " controller in " + parent + ": " +
                        errnoText(rc));
                return false;
            }
            if (!cpu_) wanted.resize(2);
        }
    }
    name_ = name;
    return true;
}

std::vector<std::string> Cgroups::create(const std::string& child, const CgroupLimits& limits) {
    if (version_ == CgroupVersion::None || name_.empty())
        throw std::runtime_error("cgroups are not in use");
    std::vector<std::string> dirs, procs;
    auto fail = [&](const std::string& what) {
        killAndRemove(dirs);
        throw std::runtime_error(what);
    };
    // A value the kernel refuses fails the sandbox's start: a limit must never be dropped.
    auto set = [&](const std::string& dir, const char* file, const std::string& value,
                   bool optional = false) {
        std::string p = dir + "/" + file;
        int rc = sys_->writeFile(p, value);
        if (rc == 0 || (optional && rc == -ENOENT)) return;
        fail("cannot set " + p + " to " + value + ": " + errnoText(rc));
    };
    const std::int64_t quota =
        limits.cpus > 0 ? std::max<std::int64_t>(
                              1000, std::llround(limits.cpus * static_cast<double>(kCpuPeriodUs)))
                        : 0;
    if (quota > 0 && !cpu_) fail("a CPU limit was asked for but the cpu controller is missing");

    if (version_ == CgroupVersion::V2) {
        std::string dir = path(child);
        int rc = sys_->makeDir(dir, 0755);
        if (rc != 0) fail("cannot create " + dir + ": " + errnoText(rc));
        dirs.push_back(dir);
        if (limits.memoryBytes > 0) {
            set(dir, "memory.max", std::to_string(limits.memoryBytes));
            set(dir, "memory.swap.max", "0", true);  // absent without swap accounting
        }
        if (limits.maxProcesses > 0) set(dir, "pids.max", std::to_string(limits.maxProcesses));
        if (quota > 0)
            set(dir, "cpu.max", std::to_string(quota) + " " + std::to_string(kCpuPeriodUs));
        procs.push_back(dir + "/cgroup.procs");
        return procs;
    }
    for (const char* controller : {"pids", "memory", "cpu"}) {
        if (std::strcmp(controller, "cpu") == 0 && !cpu_) continue;
        std::string dir = path(child, controller);
        int rc = sys_->makeDir(dir, 0755);
        if (rc != 0) fail("cannot create " + dir + ": " + errnoText(rc));
        dirs.push_back(dir);
        procs.push_back(dir + "/cgroup.procs");
    }
    if (limits.maxProcesses > 0)
        set(path(child, "pids"), "pids.max", std::to_string(limits.maxProcesses));
    if (limits.memoryBytes > 0) {
        std::string mem = path(child, "memory");
        set(mem, "memory.limit_in_bytes", std::to_string(limits.memoryBytes));
        // memory + swap: present only with swap accounting on.
        set(mem, "memory.memsw.limit_in_bytes", std::to_string(limits.memoryBytes), true);
    }
    if (quota > 0) {
        std::string cpu = path(child, "cpu");
        set(cpu, "cpu.cfs_period_us", std::to_string(kCpuPeriodUs));
        set(cpu, "cpu.cfs_quota_us", std::to_string(quota));
    }
    return procs;
}

bool Cgroups::killAndRemove(const std::vector<std::string>& dirs) {
    if (dirs.empty()) return true;
    // Child groups first (a daemon group left by a killed daemon holds sandbox groups).
    for (const auto& d : dirs) {
        std::vector<std::string> children;
        for (const auto& c : sys_->listDirs(d)) children.push_back(d + "/" + c);
        for (const auto& c : children) killAndRemove({c});
    }
    // v2 kills the whole group in one write; otherwise signal each member, again while any
    // is left (a member may fork between the read and the kill).
    const bool oneShot = sys_->writeFile(dirs.front() + "/cgroup.kill", "1") == 0;
    bool removed = false;
    for (int round = 0; round < 500 && !removed; ++round) {
        if (!oneShot || round > 0) {
            for (const auto& d : dirs)
                for (pid_t p : parsePids(sys_->readFile(d + "/cgroup.procs").value_or("")))
                    sys_->sendSignal(p, SIGKILL);
        }
        removed = true;
        for (const auto& d : dirs) {
            int rc = sys_->removeDir(d);
            if (rc != 0 && rc != -ENOENT) removed = false;
        }
        if (!removed) sys_->pause(1000);  // the killed processes are still exiting
    }
    return removed;
}

bool Cgroups::destroy(const std::string& child) {
    if (version_ == CgroupVersion::None || name_.empty()) return true;
    std::vector<std::string> dirs;
    if (version_ == CgroupVersion::V2)
        dirs.push_back(path(child));
    else
        for (const auto& h : hierarchies()) dirs.push_back(h + "/" + name_ + "/" + child);
    return killAndRemove(dirs);
}

void Cgroups::close() {
    if (name_.empty()) return;
    for (const auto& h : hierarchies()) sys_->removeDir(h + "/" + name_);
    name_.clear();
}

int Cgroups::removeStale(const std::string& prefix, const std::function<bool(pid_t)>& alive) {
    if (version_ == CgroupVersion::None) return 0;
    // The daemon groups found in any hierarchy, each with its directory in every hierarchy.
    std::vector<std::string> stale;
    for (const auto& h : hierarchies()) {
        for (const auto& n : sys_->listDirs(h)) {
            if (n.rfind(prefix, 0) != 0 || n.size() == prefix.size()) continue;
            std::string digits = n.substr(prefix.size());
            if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9)
                continue;
            pid_t pid = static_cast<pid_t>(std::stol(digits));
            if (alive(pid)) continue;
            if (std::find(stale.begin(), stale.end(), n) == stale.end()) stale.push_back(n);
        }
    }
    int removed = 0;
    for (const auto& n : stale) {
        std::vector<std::string> dirs;
        for (const auto& h : hierarchies())
            if (sys_->exists(h + "/" + n)) dirs.push_back(h + "/" + n);
        if (killAndRemove(dirs)) ++removed;
    }
    return removed;
}

}  // namespace sandbox::os
