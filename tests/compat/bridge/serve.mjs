// Serves Cloudflare's real bridge Worker (`bridge()` from @cloudflare/sandbox/bridge, the
// published package pinned in ../package-lock.json) over HTTP on 127.0.0.1, with the Workers
// runtime stood in for by ./workers-runtime.mjs and every sandbox's container a sandbox-agent.
//
//   bun serve.mjs AGENT_BIN
//
// Prints `listening on port N` as its only stdout line once it accepts connections. With
// --watch-stdin it stops (as on SIGTERM) when its stdin reaches end of file. Reads
// SANDBOX_API_KEY (the bridge's bearer token; empty or unset: no auth), WARM_POOL_* and
// SANDBOX_TRANSPORT (passed to the Worker's env as wrangler vars would be), BRIDGE_TMPDIR (where
// the containers' temp dirs go; default $TMPDIR or /tmp), BRIDGE_VERBOSE=1 (show the SDK's info
// and debug logs, which go to stderr). SIGTERM or SIGINT stop every container (SIGKILL to its bubblewrap, whose pid namespace goes with it),
// remove their temp dirs and exit.

import { plugin } from 'bun';
import { existsSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import * as workers from '../cloudflare-workers-stub.mjs';
import {
  ContainerRuntime,
  DurableObjectNamespace,
  installGlobals,
  liveContainers,
  tempBase
} from './workers-runtime.mjs';

const args = process.argv.slice(2);
const watchStdin = args[0] === '--watch-stdin';
const agentArg = watchStdin ? args[1] : args[0];
const agentPath = agentArg && resolve(agentArg); // containers start in /workspace
if (!agentPath || !existsSync(agentPath)) {
  console.error('usage: bun serve.mjs [--watch-stdin] AGENT_BIN (the sandbox-agent binary)');
  process.exit(2);
}
const bwrapPath = Bun.which('bwrap');
if (!bwrapPath) {
  console.error('serve.mjs: bwrap (bubblewrap) not found: each container needs its own /workspace');
  process.exit(2);
}

// stdout carries the one "listening" line; every log line goes to stderr.
const verbose = process.env.BRIDGE_VERBOSE === '1';
const toStderr = (...args) => console.error(...args);
console.log = verbose ? toStderr : () => {};
console.info = console.log;
console.debug = console.log;
if (!process.env.SANDBOX_LOG_LEVEL) process.env.SANDBOX_LOG_LEVEL = verbose ? 'debug' : 'error';
// Workers log a promise the Worker leaves rejected; so do we, in one line, and go on.
process.on('unhandledRejection', (reason) => {
  const text = reason?.message !== undefined ? `${reason.name}: ${reason.message}` : String(reason);
  console.error(`unhandled rejection: ${text}`);
});

// `cloudflare:workers` is the Node stub shared with the ts_sdk_compat test; its `env` object is
// the module-level env the bridge checks its bindings in.
plugin({
  name: 'cloudflare-workers',
  setup(build) {
    build.module('cloudflare:workers', () => ({ exports: { ...workers }, loader: 'object' }));
  }
});
installGlobals();

const { Sandbox } = await import('@cloudflare/sandbox');
const { bridge, WarmPool } = await import('@cloudflare/sandbox/bridge');

const baseDir = tempBase();
const env = workers.env;
env.SANDBOX_API_KEY = process.env.SANDBOX_API_KEY ?? '';
for (const name of Object.keys(process.env)) {
  if (name.startsWith('WARM_POOL_') || name === 'SANDBOX_TRANSPORT') env[name] = process.env[name];
}
env.Sandbox = new DurableObjectNamespace(Sandbox, env, (id) =>
  new ContainerRuntime({ agentPath, bwrapPath, baseDir, label: id.name })
);
env.WarmPool = new DurableObjectNamespace(WarmPool, env);

// The deployed worker's own fetch handler answers every other path with "OK".
const worker = bridge({ fetch: () => new Response('OK') });
const executionContext = { waitUntil: (p) => Promise.resolve(p).catch(() => {}), passThroughOnException() {}, props: {} };

// workerd sends the status line and headers as soon as the Worker returns its Response; Bun
// sends them with the first body chunk, and resets the connection without any answer when the
// body fails before that. The bridge's streamed bodies (file reads, persist) can fail at once
// (a missing file is an error inside the container's stream), so their first read waits one
// turn of the event loop, by which time Bun has sent the headers, as workerd would have.
function commitHeadersFirst(response) {
  if (!response.body || response.headers.get('Content-Type') !== 'application/octet-stream') return response;
  const reader = response.body.getReader();
  let first = true;
  const body = new ReadableStream({
    async pull(controller) {
      if (first) {
        first = false;
        await new Promise((resolve) => setImmediate(resolve));
      }
      try {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (error) {
        controller.error(error);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    }
  });
  return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
}

const server = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  idleTimeout: 0, // a command may print nothing for a long while (no keep-alives on /exec)
  maxRequestBodySize: 64 * 1024 * 1024,
  async fetch(request, srv) {
    const response = await worker.fetch(request, env, executionContext);
    if (verbose) console.error(`bridge: ${request.method} ${new URL(request.url).pathname} -> ${response.status}`);
    if (response.status === 101 && response.webSocket) {
      const peer = response.webSocket; // the Worker's end is the pair's other socket
      if (srv.upgrade(request, { data: { peer } })) return undefined;
      peer.close(1011, 'upgrade failed');
      return new Response('WebSocket upgrade failed', { status: 400 });
    }
    return commitHeadersFirst(response);
  },
  websocket: {
    open(ws) {
      const { peer } = ws.data;
      peer.addEventListener('message', (e) => ws.send(e.data));
      peer.addEventListener('close', (e) => ws.close(e.code === 1005 || e.code === 1006 ? 1000 : e.code, e.reason));
      peer.accept();
    },
    message(ws, message) {
      try {
        ws.data.peer.send(message);
      } catch {
        ws.close(1011, 'sandbox side closed');
      }
    },
    close(ws, code, reason) {
      ws.data.peer.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    }
  }
});

function shutdown(code) {
  for (const c of [...liveContainers]) c.killNow();
  rmSync(baseDir, { recursive: true, force: true });
  server.stop(true);
  process.exit(code);
}
process.on('SIGTERM', () => shutdown(0));
// --watch-stdin: whoever started us holds our stdin open; when it closes, that process is gone.
if (watchStdin) {
  process.stdin.on('data', () => {});
  process.stdin.on('end', () => shutdown(0));
  process.stdin.on('error', () => shutdown(0));
}
process.on('SIGINT', () => shutdown(0));
process.on('exit', () => {
  for (const c of [...liveContainers]) c.killNow();
  rmSync(baseDir, { recursive: true, force: true });
});

process.stdout.write(`listening on port ${server.port}\n`);
