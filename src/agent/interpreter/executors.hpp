#pragma once
// The executors' programs, compiled into the agent from interpreter/python_executor.py and
// interpreter/node_executor.js (executors.cpp.in): the agent runs them with `python3 -c` and
// `node -e`, so nothing is installed beside it and nothing in a sandbox can replace them.
#include <string_view>

namespace sandbox::agent::interpreter {
extern const std::string_view kPythonExecutor;
extern const std::string_view kNodeExecutor;
}  // namespace sandbox::agent::interpreter
