#pragma once
// A cgroup file system in memory, behind the OS library's Syscalls seam: directories get the
// interface files a kernel would give them (v1: per hierarchy; v2: those of the controllers the
// parent enables), cgroup.kill empties a group, SIGKILL removes a process from every group
// (unless it is "stubborn"), and rmdir fails with EBUSY while a group holds processes or
// children, as the kernel's does.
#include <signal.h>

#include <cerrno>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "os/syscalls.hpp"

namespace sandbox::testing {

class FakeCgroupFs : public os::Syscalls {
  public:
    enum class Kind { V1, V2 };

    /// A v2 hierarchy at `root` offering `controllers` ("memory pids cpu" ...).
    static FakeCgroupFs v2(const std::string& root, const std::string& controllers,
                           bool hasKill = true) {
        FakeCgroupFs f;
        f.kind_ = Kind::V2;
        f.hasKill_ = hasKill;
        f.cgroup2_.insert(root);
        f.dirs_.insert(root);
        f.files_[root + "/cgroup.controllers"] = controllers;
        f.files_[root + "/cgroup.subtree_control"] = "";
        f.files_[root + "/cgroup.procs"] = "";
        return f;
    }

    /// v1 hierarchies root/<c> for each controller in `controllers`.
    static FakeCgroupFs v1(const std::string& root, const std::vector<std::string>& controllers) {
        FakeCgroupFs f;
        f.kind_ = Kind::V1;
        f.dirs_.insert(root);
        for (const auto& c : controllers) {
            f.dirs_.insert(root + "/" + c);
            f.hierarchy_[root + "/" + c] = c;
            f.addFiles(root + "/" + c, c);
        }
        return f;
    }

    // ---- the seam ----
    int writeFile(const std::string& path, std::string_view data) override {
        writes.emplace_back(path, std::string(data));
        auto it = files_.find(path);
        if (it == files_.end()) return -ENOENT;
        if (refuse.count(path)) return -EINVAL;
        const std::string dir = parentOf(path), name = path.substr(dir.size() + 1);
        if (name == "cgroup.kill") {
            if (data != "1") return -EINVAL;
            killGroup(dir);
            return 0;
        }
        if (name == "cgroup.procs") {
            it->second += std::string(data) + "\n";
            return 0;
        }
        if (name == "cgroup.subtree_control") {
            // "+c": only a controller the group itself has.
            std::string c(data.substr(1));
            if (data.empty() || data[0] != '+' || !has(readFile(dir + "/cgroup.controllers").value_or(""), c))
                return -EINVAL;
            it->second += (it->second.empty() ? "" : " ") + c;
            return 0;
        }
        it->second = std::string(data);
        return 0;
    }
    std::optional<std::string> readFile(const std::string& path) override {
        // A v2 group's controllers are what its parent enables for it, as they are now.
        const std::string dir = parentOf(path);
        if (kind_ == Kind::V2 && path.ends_with("/cgroup.controllers") && !cgroup2_.count(dir) &&
            dirs_.count(dir))
            return files_[parentOf(dir) + "/cgroup.subtree_control"];
        auto it = files_.find(path);
        if (it == files_.end()) return std::nullopt;
        return it->second;
    }
    int makeDir(const std::string& path, mode_t) override {
        if (dirs_.count(path)) return -EEXIST;
        if (!dirs_.count(parentOf(path))) return -ENOENT;
        dirs_.insert(path);
        if (kind_ == Kind::V2) {
            std::string enabled = files_[parentOf(path) + "/cgroup.subtree_control"];
            files_[path + "/cgroup.controllers"] = enabled;
            files_[path + "/cgroup.subtree_control"] = "";
            files_[path + "/cgroup.procs"] = "";
            files_[path + "/cgroup.events"] = "populated 0\n";
            if (hasKill_) files_[path + "/cgroup.kill"] = "";
            if (has(enabled, "memory")) {
                files_[path + "/memory.max"] = "max";
                if (swap) files_[path + "/memory.swap.max"] = "max";
            }
            if (has(enabled, "pids")) files_[path + "/pids.max"] = "max";
            if (has(enabled, "cpu")) files_[path + "/cpu.max"] = "max 100000";
        } else {
            addFiles(path, controllerOf(path));
        }
        return 0;
    }
    int removeDir(const std::string& path) override {
        removeAttempts.push_back(path);
        if (!dirs_.count(path)) return -ENOENT;
        for (const auto& d : dirs_)
            if (d.size() > path.size() && d.compare(0, path.size() + 1, path + "/") == 0)
                return -EBUSY;
        if (!procs(path).empty()) return -EBUSY;
        dirs_.erase(path);
        for (auto it = files_.begin(); it != files_.end();)
            it = parentOf(it->first) == path ? files_.erase(it) : std::next(it);
        return 0;
    }
    std::vector<std::string> listDirs(const std::string& path) override {
        std::vector<std::string> out;
        for (const auto& d : dirs_)
            if (parentOf(d) == path && d != path) out.push_back(d.substr(path.size() + 1));
        return out;
    }
    bool exists(const std::string& path) override {
        return dirs_.count(path) || files_.count(path);
    }
    bool isCgroup2Mount(const std::string& path) override { return cgroup2_.count(path) != 0; }
    int sendSignal(pid_t pid, int sig) override {
        signals.emplace_back(pid, sig);
        if (sig == SIGKILL && !stubborn.count(pid)) {
            for (auto& [path, content] : files_)
                if (path.size() > 13 && path.ends_with("/cgroup.procs")) content = without(content, pid);
            if (auto f = forkOnKill.find(pid); f != forkOnKill.end()) {
                // The victim forked just before it died: its child is in the group now.
                files_[f->second.first + "/cgroup.procs"] += std::to_string(f->second.second) + "\n";
                forkOnKill.erase(f);
            }
        }
        return 0;
    }
    void pause(unsigned) override { ++pauses; }

    // ---- test helpers ----
    void putProcess(const std::string& group, pid_t pid) {
        files_[group + "/cgroup.procs"] += std::to_string(pid) + "\n";
    }
    std::vector<pid_t> procs(const std::string& group) const {
        std::vector<pid_t> out;
        auto it = files_.find(group + "/cgroup.procs");
        if (it == files_.end()) return out;
        std::istringstream in(it->second);
        long p;
        while (in >> p) out.push_back(static_cast<pid_t>(p));
        return out;
    }
    bool isDir(const std::string& path) const { return dirs_.count(path) != 0; }
    std::string file(const std::string& path) const {
        auto it = files_.find(path);
        return it == files_.end() ? "<none>" : it->second;
    }

    std::vector<std::pair<std::string, std::string>> writes;
    std::vector<std::pair<pid_t, int>> signals;
    std::vector<std::string> removeAttempts;
    std::set<std::string> refuse;  ///< files whose writes fail with EINVAL
    std::set<pid_t> stubborn;      ///< processes SIGKILL does not remove
    /// pid -> (group, child): killing pid puts child into group (a fork racing the kill).
    std::map<pid_t, std::pair<std::string, pid_t>> forkOnKill;
    bool swap = true;  ///< memory.swap.max / memory.memsw.* exist
    int pauses = 0;

  private:
    static bool has(const std::string& list, const std::string& word) {
        std::istringstream in(list);
        std::string w;
        while (in >> w)
            if (w == word) return true;
        return false;
    }
    static std::string parentOf(const std::string& p) { return p.substr(0, p.rfind('/')); }
    static std::string without(const std::string& content, pid_t pid) {
        std::istringstream in(content);
        std::string out;
        long p;
        while (in >> p)
            if (p != pid) out += std::to_string(p) + "\n";
        return out;
    }
    std::string controllerOf(const std::string& path) const {
        for (const auto& [h, c] : hierarchy_)
            if (path.compare(0, h.size() + 1, h + "/") == 0) return c;
        return {};
    }
    void addFiles(const std::string& dir, const std::string& controller) {
        files_[dir + "/cgroup.procs"] = "";
        if (controller == "memory") {
            files_[dir + "/memory.limit_in_bytes"] = "9223372036854771712";
            if (swap) files_[dir + "/memory.memsw.limit_in_bytes"] = "9223372036854771712";
        } else if (controller == "pids") {
            files_[dir + "/pids.max"] = "max";
        } else if (controller == "cpu") {
            files_[dir + "/cpu.cfs_period_us"] = "100000";
            files_[dir + "/cpu.cfs_quota_us"] = "-1";
        }
    }
    void killGroup(const std::string& dir) {
        for (auto& [path, content] : files_)
            if (path.ends_with("/cgroup.procs") &&
                (parentOf(path) == dir || path.compare(0, dir.size() + 1, dir + "/") == 0)) {
                std::string kept;
                for (pid_t p : procs(parentOf(path)))
                    if (stubborn.count(p)) kept += std::to_string(p) + "\n";
                content = kept;
            }
    }

    Kind kind_ = Kind::V2;
    bool hasKill_ = true;
    std::set<std::string> cgroup2_, dirs_;
    std::map<std::string, std::string> files_;
    std::map<std::string, std::string> hierarchy_;  ///< v1 hierarchy root -> controller
};

}  // namespace sandbox::testing
