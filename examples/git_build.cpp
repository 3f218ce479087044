// git_build: clone a repository into a sandbox, then build and test it there.
// There is no network on the machines this runs on, so the example first makes its own
// "upstream" repository inside the sandbox (a tiny C project) and clones it over file://;
// with network access, put an https:// URL (a token may go in it: https://TOKEN@host/...).
#include <iostream>
#include <sandbox/sandbox.hpp>

int main() {
    try {
        auto sb = sandbox::getSandbox(sandbox::Client::fromEnv(), "git-build-demo");

        // 1. An upstream repository: one C file with a self-test, committed on "main".
        sb.writeFile("/workspace/upstream/add.c",
                     "#include <stdio.h>\n#include <string.h>\n"
                     "int add(int a, int b) { return a + b; }\n"
                     "int main(int argc, char** argv) {\n"
                     "    if (argc > 1 && strcmp(argv[1], \"--test\") == 0) {\n"
                     "        int ok = add(2, 2) == 4 && add(-1, 1) == 0;\n"
                     "        puts(ok ? \"tests passed\" : \"tests FAILED\");\n"
                     "        return ok ? 0 : 1;\n"
                     "    }\n"
                     "    printf(\"2 + 3 = %d\\n\", add(2, 3));\n"
                     "    return 0;\n}\n");
        auto init = sb.exec(
            "export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.com "
            "GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.com HOME=/tmp && "
            "git init -q -b main && git add add.c && git commit -q -m 'add()' && "
            "git clone -q --bare . /workspace/upstream.git",
            {.cwd = "/workspace/upstream"});
        if (init.exitCode != 0) {
            std::cerr << "git_build: making the upstream repository failed: " << init.stderrText;
            return 1;
        }

        // 2. Clone it: branch, target directory, a shallow history, a clone timeout.
        auto repo = sb.gitCheckout("file:///workspace/upstream.git",
                                   {.branch = "main",
                                    .targetDir = "/workspace/app",
                                    .depth = 1,
                                    .cloneTimeout = std::chrono::seconds(60)});
        std::cout << "cloned " << repo.repoUrl << " (" << repo.branch << ") into " << repo.targetDir
                  << "\n";

        // 3. Build and test it in the clone.
        auto build =
            sb.exec("cc -O2 -o add add.c && ./add && ./add --test", {.cwd = repo.targetDir});
        std::cout << build.stdoutText << "\n";
        if (!build.success) std::cerr << build.stderrText;

        // A missing branch is a typed error.
        try {
            sb.gitCheckout("file:///workspace/upstream.git",
                           {.branch = "nope", .targetDir = "/workspace/other"});
        } catch (const sandbox::GitBranchNotFoundError& e) {
            std::cout << "as expected: " << e.code() << "\n";
        }
        sb.destroy();
        return build.exitCode;
    } catch (const sandbox::SandboxError& e) {
        std::cerr << "git_build: " << e.code() << ": " << e.what() << "\n";
        return 1;
    }
}
