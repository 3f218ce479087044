#pragma once
/// @file
/// Everything: `#include <sandbox/sandbox.hpp>`.
///
/// ```cpp
/// auto client = sandbox::Client::fromEnv();
/// auto sb = sandbox::getSandbox(client, "my-sandbox");
/// auto r = sb.exec("python3 -c 'print(2 + 2)'");   // r.stdoutText == "4"
/// ```
#include "sandbox/base64.hpp"
#include "sandbox/client.hpp"
#include "sandbox/errors.hpp"
#include "sandbox/git_watch.hpp"
#include "sandbox/interpreter.hpp"
#include "sandbox/ports.hpp"
#include "sandbox/process.hpp"
#include "sandbox/pty.hpp"
#include "sandbox/sse.hpp"
#include "sandbox/types.hpp"
#include "sandbox/version.hpp"
