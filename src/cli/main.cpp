// sandbox: a command-line tool over the SDK. It uses the same configuration as any program
// linked with the SDK (SANDBOX_API_URL / SANDBOX_AGENT_URL / nothing = embedded sandboxd).
//
//   sandbox exec NAME -- COMMAND...      run a command (its output and exit code are yours)
//   sandbox read NAME PATH               print a file's bytes
//   sandbox write NAME PATH              write stdin to a file
//   sandbox ls NAME PATH                 list a directory
//   sandbox destroy NAME                 destroy a sandbox
//   sandbox shell [NAME]                 an interactive terminal (exit code = the shell's)
#include <iostream>
#include <iterator>
#include <sandbox/sandbox.hpp>
#include <string>
#include <vector>

#include "cli/shell.hpp"

namespace {

int usage(std::ostream& os, int code) {
    os << "usage: sandbox exec NAME -- COMMAND...\n"
          "       sandbox read NAME PATH\n"
          "       sandbox write NAME PATH < data\n"
          "       sandbox ls NAME PATH\n"
          "       sandbox destroy NAME\n"
          "       sandbox shell [NAME]          (NAME defaults to \"default\")\n"
          "       sandbox --version\n"
          "Backend: SANDBOX_API_URL (+ SANDBOX_API_KEY) for a bridge, SANDBOX_AGENT_URL for one\n"
          "sandbox's control plane, or nothing for a private sandboxd (sandboxes then last only\n"
          "as long as this command).\n";
    return code;
}

std::string shellJoin(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) {
        if (!out.empty()) out.push_back(' ');
        bool plain =
            !w.empty() &&
            w.find_first_not_of(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-./=:,@%+") ==
                std::string::npos;
        if (plain) {
            out += w;
            continue;
        }
        out.push_back('\'');
        for (char c : w) {
            if (c == '\'')
                out += "'\\''";
            else
                out.push_back(c);
        }
        out.push_back('\'');
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && args[0] == "--version") {
        std::cout << "sandbox " << sandbox::libraryVersion() << "\n";
        return 0;
    }
    if (args.empty() || args[0] == "-h" || args[0] == "--help")
        return usage(std::cout, args.empty() ? 2 : 0);
    const std::string cmd = args[0];
    if (cmd == "shell" && args.size() == 1) args.push_back("default");
    if (args.size() < 2) return usage(std::cerr, 2);
    try {
        auto client = sandbox::Client::fromEnv();
        auto sb = sandbox::getSandbox(client, args[1]);
        if (cmd == "exec") {
            std::size_t i = 2;
            if (i < args.size() && args[i] == "--") ++i;
            if (i >= args.size()) return usage(std::cerr, 2);
            std::vector<std::string> words(args.begin() + static_cast<long>(i), args.end());
            std::string command = words.size() == 1 ? words[0] : shellJoin(words);
            int exitCode = 1;
            for (const auto& ev : sb.execStream(command)) {
                if (ev.type == sandbox::ExecEvent::Type::Stdout) std::cout << ev.data << std::flush;
                if (ev.type == sandbox::ExecEvent::Type::Stderr) std::cerr << ev.data << std::flush;
                if (ev.type == sandbox::ExecEvent::Type::Complete)
                    exitCode = ev.exitCode.value_or(0);
                if (ev.type == sandbox::ExecEvent::Type::Error) {
                    std::cerr << "sandbox: " << ev.data << "\n";
                    return 1;
                }
            }
            return exitCode;
        }
        if (cmd == "read" && args.size() == 3) {
            std::cout << sb.readFile(args[2]).bytes();
            return 0;
        }
        if (cmd == "write" && args.size() == 3) {
            std::string data((std::istreambuf_iterator<char>(std::cin)),
                             std::istreambuf_iterator<char>());
            sb.writeFile(args[2], sandbox::encodeBase64(data),
                         {.encoding = sandbox::Encoding::Base64});
            return 0;
        }
        if (cmd == "ls" && args.size() == 3) {
            for (const auto& f : sb.listFiles(args[2]).files)
                std::cout << f.mode << " " << f.size << "\t" << f.name
                          << (f.type == "directory" ? "/" : "") << "\n";
            return 0;
        }
        if (cmd == "shell" && args.size() == 2) return sandbox::cli::runShell(sb);
        if (cmd == "destroy" && args.size() == 2) {
            sb.destroy();
            return 0;
        }
        return usage(std::cerr, 2);
    } catch (const sandbox::SandboxError& e) {
        std::cerr << "sandbox: " << e.what() << " (" << e.code() << ")\n";
        return 1;
    }
}
