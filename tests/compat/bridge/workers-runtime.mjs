// The parts of the Cloudflare Workers runtime that Cloudflare's bridge Worker
// (@cloudflare/sandbox/bridge) and its Durable Objects (Sandbox, WarmPool)
// use, stood in for on one machine, under Bun. Nothing here is Cloudflare's
// code: it implements the runtime interfaces that code calls.
//
//   Durable Object namespaces  idFromName / get: a stub whose method calls run
//                              on the one in-memory instance of that id
//   ctx                        id, storage, blockConcurrencyWhile, waitUntil,
//                              abort, and for container classes `container`
//   ctx.storage                an in-memory key-value store (values cloned
//                              with structuredClone, as the real one
//                              serialises them), a recorded but never fired
//                              alarm, transactions, the synchronous kv API,
//                              and sql.exec on an in-memory SQLite (bun:sqlite)
//   ctx.container              a container = one sandbox-agent process with
//                              its own /workspace (see ContainerRuntime)
//   WebSocketPair, Response    a Response may carry `webSocket` (null by
//   with webSocket,            default) and status 101: how a Worker hands a
//   IdentityTransformStream    WebSocket back to the runtime
//
// What is deliberately not there: alarms never fire (the Container's activity
// timeout and the pool's refresh loop are timers a test run does not need),
// outbound interception (only R2-binding and credential-proxy mounts use it),
// and RPC serialisation (a stub call passes its arguments and result by
// reference; thrown errors keep their own properties, as with workerd's
// enhanced error serialisation).

import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { lstatSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Database } from 'bun:sqlite';

// ---- Response.webSocket, WebSocketPair, IdentityTransformStream -------------------------------

const NativeResponse = globalThis.Response;
// In Workers every Response has `webSocket`, null unless the Response hands a socket back.
Object.defineProperty(NativeResponse.prototype, 'webSocket', {
  value: null,
  writable: true,
  configurable: true
});

class WorkersResponse extends NativeResponse {
  constructor(body, init) {
    super(body, init);
    if (init?.webSocket) this.webSocket = init.webSocket;
  }
  static [Symbol.hasInstance](value) {
    return value instanceof NativeResponse;
  }
}

/** One end of a WebSocketPair, or a WebSocket to a container, as a Worker sees it. */
class WorkersSocket extends EventTarget {
  #accepted = false;
  #queue = [];
  #closed = false;
  peer = null; // the other end (WebSocketPair) or an adapter with send/close
  accept() {
    if (this.#accepted) return;
    this.#accepted = true;
    for (const ev of this.#queue.splice(0)) this.dispatchEvent(ev);
  }
  deliver(type, props) {
    const ev = new Event(type);
    Object.assign(ev, props);
    if (this.#accepted) this.dispatchEvent(ev);
    else this.#queue.push(ev);
  }
  send(data) {
    if (this.#closed) throw new Error('WebSocket is closed');
    this.peer.deliverMessage(data);
  }
  close(code = 1000, reason = '') {
    if (this.#closed) return;
    this.#closed = true;
    this.peer.deliverClose(code, reason);
  }
  deliverMessage(data) {
    this.deliver('message', { data });
  }
  deliverClose(code, reason) {
    if (!this.#closed) {
      this.#closed = true;
      this.deliver('close', { code, reason, wasClean: true });
    }
  }
  get readyState() {
    return this.#closed ? 3 : 1;
  }
}

class WebSocketPair {
  constructor() {
    const a = new WorkersSocket();
    const b = new WorkersSocket();
    a.peer = b;
    b.peer = a;
    this[0] = a;
    this[1] = b;
  }
}

/** A WebSocket client to a container port, with the Workers socket interface. */
async function connectWebSocket(url, headers, signal) {
  const ws = new WebSocket(url, { headers });
  ws.binaryType = 'arraybuffer';
  const side = new WorkersSocket();
  side.peer = {
    deliverMessage: (data) => ws.send(data),
    deliverClose: (code, reason) => {
      try {
        ws.close(code, reason);
      } catch {
        ws.close();
      }
    }
  };
  await new Promise((resolve, reject) => {
    const onAbort = () => reject(new Error('WebSocket connection aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('error', () => reject(new Error(`WebSocket upgrade to ${url} failed`)), {
      once: true
    });
  });
  ws.addEventListener('message', (e) => side.deliverMessage(e.data));
  ws.addEventListener('close', (e) => side.deliverClose(e.code, e.reason));
  return side;
}

export function installGlobals() {
  globalThis.Response = WorkersResponse;
  globalThis.WebSocketPair = WebSocketPair;
  globalThis.IdentityTransformStream = class IdentityTransformStream extends TransformStream {};
}

// ---- ctx.storage -----------------------------------------------------------------------------

class Storage {
  #data = new Map();
  #alarm = null;
  #db = null;

  async get(keys) {
    if (Array.isArray(keys)) {
      const out = new Map();
      for (const k of keys) if (this.#data.has(k)) out.set(k, structuredClone(this.#data.get(k)));
      return out;
    }
    return this.#data.has(keys) ? structuredClone(this.#data.get(keys)) : undefined;
  }
  async put(key, value) {
    if (typeof key === 'object' && key !== null) {
      for (const [k, v] of Object.entries(key)) this.#data.set(k, structuredClone(v));
    } else {
      this.#data.set(key, structuredClone(value));
    }
  }
  async delete(keys) {
    if (Array.isArray(keys)) return keys.filter((k) => this.#data.delete(k)).length;
    return this.#data.delete(keys);
  }
  async deleteAll() {
    this.#data.clear();
  }
  async list(options = {}) {
    const keys = [...this.#data.keys()].filter((k) => !options.prefix || k.startsWith(options.prefix)).sort();
    return new Map(keys.map((k) => [k, structuredClone(this.#data.get(k))]));
  }
  async getAlarm() {
    return this.#alarm;
  }
  async setAlarm(time) {
    this.#alarm = Number(time);
  }
  async deleteAlarm() {
    this.#alarm = null;
  }
  async sync() {}
  async transaction(fn) {
    const before = new Map(this.#data);
    let rolledBack = false;
    const txn = {
      get: (keys) => this.get(keys),
      put: (key, value) => this.put(key, value),
      delete: (keys) => this.delete(keys),
      list: (options) => this.list(options),
      rollback: () => {
        rolledBack = true;
      }
    };
    try {
      const result = await fn(txn);
      if (rolledBack) this.#data = before;
      return result;
    } catch (error) {
      this.#data = before;
      throw error;
    }
  }
  kv = {
    get: (key) => (this.#data.has(key) ? structuredClone(this.#data.get(key)) : undefined),
    put: (key, value) => void this.#data.set(key, structuredClone(value)),
    delete: (key) => this.#data.delete(key)
  };
  get sql() {
    this.#db ??= new Database(':memory:');
    const db = this.#db;
    return {
      exec: (query, ...bindings) => db.query(query).all(...bindings)
    };
  }
}

// ---- ctx.container: a sandbox-agent per container --------------------------------------------

/** Every container that is running, so that the process can stop them all when it exits. */
export const liveContainers = new Set();

const NOT_LISTENING = 'the container is not listening';
const CONTROL_PORT = 3000; // where the Sandbox class reaches the container API

/**
 * bubblewrap arguments that give a container the filesystem layout of a cloudflare/sandbox
 * container, built from the host's: the host's top-level directories read-only, its own
 * /workspace (`workspace`, the one host directory it writes to), its own empty /tmp, /mnt,
 * /root and /var/tmp, a writable root (new top-level directories such as /data stay in
 * bubblewrap's tmpfs), its own /proc in its own pid namespace, and death with the process that
 * started it. Each top-level entry is bound separately so that no mount point is ever made on
 * the host. This is not a security boundary (the agent runs as the caller, with the host's
 * network, devices and processes in view); it keeps what sandboxes write off the host, and the
 * bridge's /workspace paths lead to the sandbox's own workspace.
 */
const PRIVATE_DIRS = ['/tmp', '/mnt', '/root', '/var/tmp'];
function bwrapArgs(workspace, agentPath) {
  const args = [];
  for (const name of readdirSync('/')) {
    const path = `/${name}`;
    if (['/proc', '/dev', '/workspace', ...PRIVATE_DIRS].includes(path)) continue;
    const st = lstatSync(path);
    if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(path), path);
    else if (st.isDirectory()) args.push('--ro-bind', path, path);
  }
  args.push('--dev-bind', '/dev', '/dev', '--proc', '/proc');
  for (const dir of PRIVATE_DIRS) args.push('--tmpfs', dir);
  // The agent binary itself may live under a directory the container does not see (/tmp).
  args.push('--ro-bind', agentPath, agentPath);
  args.push('--bind', workspace, '/workspace');
  args.push('--unshare-pid', '--die-with-parent', '--chdir', '/workspace');
  return args;
}

export class ContainerRuntime {
  #proc = null;
  #exited = true;
  #port = null; // Promise<number>: the agent's port once it said so
  #exit = null; // Promise<{code, signal}>
  #dirs = [];

  constructor({ agentPath, bwrapPath, baseDir, label }) {
    this.agentPath = agentPath;
    this.bwrapPath = bwrapPath;
    this.baseDir = baseDir;
    this.label = label;
  }

  get running() {
    return this.#proc !== null && !this.#exited;
  }

  start(config = {}) {
    if (this.running) throw new Error('start() cannot be called on a container that is already running.');
    // The workspace is a host temp dir (removed when the container stops); the agent's runtime
    // dir is in the container's own /tmp, which goes with it.
    const workspace = mkdtempSync(join(this.baseDir, 'workspace-'));
    this.#dirs = [workspace];
    const agentArgs = [
      this.agentPath,
      '--listen',
      '127.0.0.1:0',
      '--workspace',
      '/workspace',
      '--runtime-dir',
      '/tmp/sandbox-agent'
    ];
    const env = { PATH: process.env.PATH, HOME: '/root', LANG: process.env.LANG ?? 'C.UTF-8' };
    Object.assign(env, config.env ?? {});
    const proc = spawn(this.bwrapPath, [...bwrapArgs(workspace, this.agentPath), ...agentArgs], {
      env,
      stdio: ['ignore', 'pipe', 'inherit']
    });
    this.#proc = proc;
    this.#exited = false;
    liveContainers.add(this);
    this.#exit = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        this.#exited = true;
        liveContainers.delete(this);
        this.#removeDirs();
        resolve({ code, signal });
      });
      proc.on('error', (error) => {
        console.error(`container ${this.label}: cannot start ${this.bwrapPath}: ${error.message}`);
        this.#exited = true;
        liveContainers.delete(this);
        this.#removeDirs();
        resolve({ code: 127, signal: null });
      });
    });
    this.#port = new Promise((resolve, reject) => {
      const lines = createInterface({ input: proc.stdout });
      lines.on('line', (line) => {
        const m = /listening on port (\d+)/.exec(line);
        if (m) resolve(Number(m[1]));
        else console.error(`container ${this.label}: ${line}`);
      });
      this.#exit.then(() => reject(new Error(NOT_LISTENING)));
    });
    this.#port.catch(() => {});
  }

  monitor() {
    if (!this.#exit) return Promise.reject(new Error('there is no container instance that can be provided to this durable object'));
    return this.#exit.then(({ code, signal }) => {
      if (code === 0) return;
      const status = code ?? 128 + (signalNumbers[signal] ?? 0);
      throw new Error(`container exited with unexpected exit code: ${status}`);
    });
  }

  signal(signo) {
    if (this.running) this.#proc.kill(signo);
  }

  async destroy() {
    if (!this.running) return;
    this.#proc.kill('SIGKILL'); // bubblewrap; its pid namespace goes with it
    await this.#exit;
  }

  /** Stops the container at once, for a process about to exit (no waiting). */
  killNow() {
    if (this.running) this.#proc.kill('SIGKILL');
    this.#removeDirs();
  }

  #removeDirs() {
    for (const d of this.#dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }

  getTcpPort(port) {
    return {
      fetch: (url, init) => this.#fetch(port, url, init),
      connect: () => {
        throw new Error('getTcpPort().connect() is not supported by this stand-in');
      }
    };
  }

  async #hostPort(port, signal) {
    if (!this.running) throw new Error(NOT_LISTENING);
    // The agent is the control plane on 3000; anything else a sandbox serves is on the host's
    // own port of that number (the container shares the host's network).
    if (port !== CONTROL_PORT) return port;
    if (!signal) return this.#port;
    return Promise.race([
      this.#port,
      new Promise((_, reject) => {
        if (signal.aborted) reject(new Error(NOT_LISTENING));
        signal.addEventListener('abort', () => reject(new Error(NOT_LISTENING)), { once: true });
      })
    ]);
  }

  async #fetch(port, url, init) {
    const request = new Request(url, init);
    const hostPort = await this.#hostPort(port, request.signal);
    const u = new URL(request.url);
    const target = `127.0.0.1:${hostPort}${u.pathname}${u.search}`;
    if (request.headers.get('Upgrade')?.toLowerCase() === 'websocket') {
      let socket;
      try {
        socket = await connectWebSocket(`ws://${target}`, {}, request.signal);
      } catch (error) {
        return new WorkersResponse(error.message, { status: 502 });
      }
      return new WorkersResponse(null, { status: 101, webSocket: socket });
    }
    try {
      return await fetch(`http://${target}`, {
        method: request.method,
        headers: request.headers,
        body: request.body,
        duplex: 'half',
        redirect: 'manual',
        signal: request.signal,
        timeout: false
      });
    } catch (error) {
      if (!this.running) throw new Error(NOT_LISTENING);
      if (error?.code === 'ConnectionRefused') throw new Error(NOT_LISTENING);
      throw error;
    }
  }
}

const signalNumbers = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

// ---- Durable Objects ------------------------------------------------------------------------

class DurableObjectId {
  constructor(hex, name) {
    this.hex = hex;
    this.name = name;
  }
  toString() {
    return this.hex;
  }
  equals(other) {
    return other?.hex === this.hex;
  }
}

class DurableObjectState {
  #blockers = new Set();
  constructor(id, container) {
    this.id = id;
    this.storage = new Storage();
    if (container) this.container = container;
  }
  /** Runs `fn` now; calls through a stub wait until it has finished (the input gate). */
  blockConcurrencyWhile(fn) {
    const p = (async () => fn())();
    const settled = p.then(
      () => {},
      () => {}
    );
    this.#blockers.add(settled);
    settled.then(() => this.#blockers.delete(settled));
    return p;
  }
  async gate() {
    while (this.#blockers.size > 0) await Promise.all([...this.#blockers]);
  }
  waitUntil(promise) {
    Promise.resolve(promise).catch((error) => console.error('waitUntil:', error));
  }
  abort(reason) {
    console.error(`durable object ${this.id.name}: abort(${reason ?? ''}) ignored`);
  }
}

export class DurableObjectNamespace {
  #instances = new Map();
  /**
   * @param className the binding's class (constructed as new Class(ctx, env))
   * @param env       the Worker's environment handed to each instance
   * @param makeContainer for container-enabled classes: (id) => a ContainerRuntime
   */
  constructor(className, env, makeContainer) {
    this.className = className;
    this.env = env;
    this.makeContainer = makeContainer;
  }
  idFromName(name) {
    const hex = createHash('sha256').update(`${this.className.name}:${name}`).digest('hex');
    return new DurableObjectId(hex, name);
  }
  idFromString(hex) {
    return new DurableObjectId(hex, undefined);
  }
  newUniqueId() {
    return this.idFromName(randomUUID());
  }
  #instance(id) {
    let entry = this.#instances.get(id.hex);
    if (!entry) {
      const container = this.makeContainer ? this.makeContainer(id) : undefined;
      const ctx = new DurableObjectState(id, container);
      entry = { ctx, object: new this.className(ctx, this.env) };
      this.#instances.set(id.hex, entry);
    }
    return entry;
  }
  get(id) {
    const call = async (method, args) => {
      const { ctx, object } = this.#instance(id);
      await ctx.gate();
      const member = object[method];
      if (typeof member !== 'function') return member;
      return member.apply(object, args);
    };
    return new Proxy(
      {},
      {
        get: (_, prop) => {
          if (prop === 'then' || typeof prop === 'symbol') return undefined;
          if (prop === 'id') return id;
          if (prop === 'name') return id.name;
          return (...args) => call(prop, args);
        }
      }
    );
  }
  getByName(name) {
    return this.get(this.idFromName(name));
  }
}

export function tempBase() {
  return mkdtempSync(join(process.env.BRIDGE_TMPDIR || tmpdir(), 'sandbox-bridge-'));
}
