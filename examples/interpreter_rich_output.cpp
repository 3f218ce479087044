// interpreter_rich_output: a matplotlib chart saved as a PNG file and a pandas DataFrame as
// HTML (the "Rich Output Formats" examples). The images come base64-encoded; pngBytes()
// decodes them.
#include <fstream>
#include <iostream>
#include <sandbox/sandbox.hpp>

int main() {
    try {
        sandbox::ScopedSandbox sb(sandbox::getSandbox(sandbox::Client::fromEnv(), "interp-rich"));
        auto chart = sb->runCode(R"py(
import matplotlib.pyplot as plt
import numpy as np

x = np.linspace(0, 10, 100)
plt.plot(x, np.sin(x))
plt.title("sin(x)")
plt.show()
)py",
                                 {.language = "python"});
        if (chart.error) {
            std::cerr << chart.error->name << ": " << chart.error->value << "\n";
            return 1;
        }
        auto png = chart.results.empty() ? std::nullopt : chart.results[0].pngBytes();
        if (!png) {
            std::cerr << "no image came back\n";
            return 1;
        }
        std::ofstream("chart.png", std::ios::binary) << *png;
        std::cout << "chart.png: " << png->size() << " bytes\n";

        auto table = sb->runCode(R"py(
import pandas as pd
pd.DataFrame({"city": ["Lisbon", "Oslo", "Lima"], "temp_c": [17, 3, 19]})
)py");
        for (const auto& r : table.results)
            if (r.html) {
                std::cout << "DataFrame as HTML (" << r.html->size() << " characters):\n"
                          << r.html->substr(0, r.html->find("</thead>")) << "...\n";
                return r.html->find("<table") != std::string::npos ? 0 : 1;
            }
        std::cerr << "no HTML came back\n";
        return 1;
    } catch (const sandbox::SandboxError& e) {
        std::cerr << "interpreter_rich_output: " << e.code() << ": " << e.what() << "\n";
        return 1;
    }
}
