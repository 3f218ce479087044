// sandbox: a command-line tool over the SDK. It uses the same configuration as any program
// linked with the SDK (SANDBOX_API_URL / SANDBOX_AGENT_URL / nothing = embedded sandboxd).
//
//   sandbox exec NAME -- COMMAND...      run a command (its output and exit code are yours)
//   sandbox read NAME PATH               print a file's bytes
//   sandbox write NAME PATH              write stdin to a file
//   sandbox ls NAME PATH                 list a directory
//   sandbox destroy NAME                 destroy a sandbox
//   sandbox shell [NAME]                 an interactive terminal (exit code = the shell's)
//   sandbox run-code [--language L] [--context ID] [--sandbox NAME] FILE|-
//                                        run code in the code interpreter
//   sandbox expose NAME PORT [--token T] [--hostname H]   print a port's preview URL
//   sandbox unexpose NAME PORT / sandbox ports NAME       revoke one / list them
//   sandbox tunnel NAME PORT [--destroy]                  print (or end) a port's tunnel
#include <fstream>
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
          "       sandbox run-code [--language python|javascript|typescript] [--context ID]\n"
          "                        [--sandbox NAME] FILE|-\n"
          "         runs FILE (- = stdin) in the code interpreter: output and text results are\n"
          "         printed, images written to result-N.png|jpg|svg; exit 1 if the code raised\n"
          "       sandbox expose NAME PORT [--token T] [--hostname H]\n"
          "         exposes PORT of the sandbox and prints its preview URL\n"
          "       sandbox unexpose NAME PORT\n"
          "       sandbox ports NAME            (the exposed ports: PORT URL per line)\n"
          "       sandbox tunnel NAME PORT [--destroy]\n"
          "         prints the URL of a tunnel to PORT (made if needed), or ends it\n"
          "       sandbox --version\n"
          "Backend: SANDBOX_API_URL (+ SANDBOX_API_KEY) for a bridge, SANDBOX_AGENT_URL for one\n"
          "sandbox's control plane, or nothing for a private sandboxd (sandboxes then last only\n"
          "as long as this command: expose and tunnel need a lasting sandboxd).\n";
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

// sandbox run-code: the code interpreter from the command line.
int runCode(const std::vector<std::string>& args) {
    std::string language = "python", context, name = "default", file;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&]() -> const std::string* {
            return i + 1 < args.size() ? &args[++i] : nullptr;
        };
        const std::string* v = nullptr;
        if (a == "--language" && (v = value()))
            language = *v;
        else if (a == "--context" && (v = value()))
            context = *v;
        else if (a == "--sandbox" && (v = value()))
            name = *v;
        else if (file.empty() && (a == "-" || a.rfind("--", 0) != 0))
            file = a;
        else
            return usage(std::cerr, 2);
    }
    if (file.empty()) return usage(std::cerr, 2);
    std::string code;
    if (file == "-") {
        code.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
        std::ifstream in(file, std::ios::binary);
        if (!in) {
            std::cerr << "sandbox: cannot read " << file << "\n";
            return 2;
        }
        code.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    auto sb = sandbox::getSandbox(sandbox::Client::fromEnv(), name);
    sandbox::RunCodeOptions options{.language = language};
    if (!context.empty()) {
        for (const auto& c : sb.listCodeContexts())
            if (c.id == context) options.context = c;
        if (!options.context) {
            std::cerr << "sandbox: no code context " << context << " in sandbox " << name << "\n";
            return 1;
        }
    }
    int images = 0;
    bool raised = false;
    for (auto& ev : sb.runCodeStream(code, options)) {
        using T = sandbox::CodeEvent::Type;
        if (ev.type == T::Stdout) std::cout << ev.text << std::flush;
        if (ev.type == T::Stderr) std::cerr << ev.text << std::flush;
        if (ev.type == T::Error) {
            raised = true;
            std::cerr << ev.error->name << ": " << ev.error->value << "\n";
        }
        if (ev.type != T::Result) continue;
        const auto& r = *ev.result;
        auto save = [&](const std::string& bytes, const char* ext) {
            std::string path = "result-" + std::to_string(++images) + ext;
            std::ofstream(path, std::ios::binary) << bytes;
            std::cerr << "[" << path << ": " << bytes.size() << " bytes]\n";
        };
        if (auto png = r.pngBytes())
            save(*png, ".png");
        else if (auto jpeg = r.jpegBytes())
            save(*jpeg, ".jpg");
        else if (r.svg)
            save(*r.svg, ".svg");
        else if (r.text)
            std::cout << *r.text << "\n";
        else if (r.json)
            std::cout << r.json->dump(2) << "\n";
        else if (r.html)
            std::cout << *r.html << "\n";
        else if (r.markdown)
            std::cout << *r.markdown << "\n";
        else if (r.latex)
            std::cout << *r.latex << "\n";
    }
    return raised ? 1 : 0;
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
    if (cmd == "run-code") try {
            return runCode(args);
        } catch (const sandbox::SandboxError& e) {
            std::cerr << "sandbox: " << e.what() << " (" << e.code() << ")\n";
            return 1;
        }
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
        if ((cmd == "expose" || cmd == "unexpose" || cmd == "tunnel") && args.size() >= 3) {
            std::size_t used = 0;
            int port = 0;
            try {
                port = std::stoi(args[2], &used);
            } catch (const std::exception&) {
            }
            if (used == 0 || used != args[2].size()) return usage(std::cerr, 2);
            if (cmd == "unexpose" && args.size() == 3) {
                sb.unexposePort(port);
                return 0;
            }
            if (cmd == "tunnel") {
                if (args.size() == 4 && args[3] == "--destroy") {
                    sb.tunnels().destroy(port);
                    return 0;
                }
                if (args.size() != 3) return usage(std::cerr, 2);
                std::cout << sb.tunnels().get(port).url << "\n";
                return 0;
            }
            if (cmd != "expose") return usage(std::cerr, 2);
            sandbox::ExposePortOptions o;
            for (std::size_t i = 3; i < args.size(); i += 2) {
                if (i + 1 >= args.size()) return usage(std::cerr, 2);
                if (args[i] == "--token")
                    o.token = args[i + 1];
                else if (args[i] == "--hostname")
                    o.hostname = args[i + 1];
                else
                    return usage(std::cerr, 2);
            }
            std::cout << sb.exposePort(port, o).url << "\n";
            return 0;
        }
        if (cmd == "ports" && args.size() == 2) {
            for (const auto& p : sb.getExposedPorts()) std::cout << p.port << " " << p.url << "\n";
            return 0;
        }
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
