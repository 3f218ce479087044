#pragma once
// The agent's shared vocabulary: the OS library's descriptors, spawning and process-tree helpers
// and the server library's coroutine helpers, named without qualification inside the agent.
#include "os/process.hpp"
#include "server/async_util.hpp"

namespace sandbox::agent {

namespace net = boost::asio;
using net::awaitable;
using net::use_awaitable;

using os::adoptChild;
using os::descendantsOf;
using os::drainFd;
using os::environWith;
using os::Fd;
using os::forgetChild;
using os::freezeThenSignal;
using os::isAlive;
using os::isDirectory;
using os::isSpawnedChild;
using os::NamedPipe;
using os::openPidFd;
using os::Pipe;
using os::ProcStat;
using os::readProcTable;
using os::reapExitCode;
using os::signalTree;
using os::SpawnOptions;
using os::spawnProcess;
using os::TreeSpec;
using server::AsyncMutex;
using server::Event;
using server::LockGuard;

}  // namespace sandbox::agent
