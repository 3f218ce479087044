// files: write, read (text and binary), list, move, delete, and a streamed read.
#include <iostream>
#include <sandbox/sandbox.hpp>

int main() {
    try {
        auto sb = sandbox::getSandbox(sandbox::Client::fromEnv(), "files-demo");
        sb.mkdir("/workspace/project/src", {.recursive = true});
        sb.writeFile("/workspace/project/src/main.py", "print('hi')\n");
        // Bytes go as base64.
        sb.writeFile("/workspace/project/logo.bin",
                     "AAEC/w==", {.encoding = sandbox::Encoding::Base64});

        auto text = sb.readFile("/workspace/project/src/main.py");
        std::cout << text.path << " (" << text.mimeType << "): " << text.content;
        auto bin = sb.readFile("/workspace/project/logo.bin");
        std::cout << "logo.bin: " << bin.size << " bytes, encoding " << bin.encoding << "\n";

        for (const auto& f : sb.listFiles("/workspace/project", {.recursive = true}).files)
            std::cout << "  " << f.type << " " << f.relativePath << " " << f.size << " " << f.mode
                      << "\n";

        sb.moveFile("/workspace/project/logo.bin", "/workspace/logo.bin");
        std::cout << "moved: " << sb.exists("/workspace/logo.bin").exists << "\n";
        sb.deleteFile("/workspace/logo.bin");

        auto stream = sb.readFileStream("/workspace/project/src/main.py");
        std::cout << "streamed " << stream.metadata().size << " bytes: " << stream.collect();

        try {
            sb.readFile("/workspace/missing.txt");
        } catch (const sandbox::FileNotFoundError& e) {
            std::cout << "as expected: " << e.what() << "\n";
        }
        sb.destroy();
        return bin.bytes() == std::string("\x00\x01\x02\xff", 4) ? 0 : 1;
    } catch (const sandbox::SandboxError& e) {
        std::cerr << "files: " << e.code() << ": " << e.what() << "\n";
        return 1;
    }
}
