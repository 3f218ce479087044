#!/usr/bin/env node
// Compatibility test: the published TypeScript SDK (@cloudflare/sandbox) talks
// to our C++ sandbox-agent through the SDK's own route clients (SandboxClient
// -> utils / commands / files / git / watch / processes / ports / interpreter), the
// SDK's CodeInterpreter on top of its interpreter client, its own SSE parser
// (parseSSEStream) and its own file-stream helpers (streamFile / collectFile). Every
// request body, every response parse and every error mapping below is the SDK's code, not ours.
//
// Usage: node run.mjs /path/to/sandbox-agent
// Output: one `ok - <name>` / `not ok - <name>: <reason>` line per check, then
// `N passed, M failed`. Exit status 0 only when everything passed.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// hard bound on the whole run (COMPAT_RUN_TIMEOUT_MS overrides, for testing the bound itself)
const RUN_TIMEOUT_MS = Number(process.env.COMPAT_RUN_TIMEOUT_MS) || 60_000;
const START_TIMEOUT_MS = 10_000; // agent must print its port within this
const CHECK_TIMEOUT_MS = 15_000; // bound on a single check
const MAX_READ_BYTES = 33_554_432; // 32 MiB, container read limit (spec §3.3)

let agent = null; // ChildProcess
let workspace = null; // temp dir
let agentStderr = '';
let passed = 0;
let failed = 0;
let finished = false;

// ---------------------------------------------------------------------------
// cleanup / bounding

function killAgentSync() {
  if (!agent || agent.exitCode !== null || agent.signalCode !== null) return;
  const pid = agent.pid;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {}
  // The agent runs in its own process group (detached), so the group kill
  // also reaches session shells it may have left behind.
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {}
}

async function stopAgent() {
  if (!agent) return;
  const pid = agent.pid;
  if (agent.exitCode === null && agent.signalCode === null) {
    const exited = new Promise((resolve) => agent.once('exit', resolve));
    try {
      process.kill(pid, 'SIGTERM');
    } catch {}
    const timer = new Promise((resolve) => setTimeout(resolve, 3000, 'timeout'));
    if ((await Promise.race([exited, timer])) === 'timeout') {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }
  // Anything left in the agent's process group (shells, background commands).
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {}
}

function removeWorkspace() {
  if (!workspace) return;
  try {
    fs.rmSync(workspace, { recursive: true, force: true });
  } catch {}
  workspace = null;
}

async function finish(code) {
  if (finished) return;
  finished = true;
  await stopAgent();
  removeWorkspace();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(code);
}

process.on('exit', () => {
  killAgentSync();
  removeWorkspace();
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.log(`not ok - run: interrupted by ${sig}`);
    failed++;
    finish(1);
  });
}

const watchdog = setTimeout(() => {
  console.log(`not ok - run: exceeded ${RUN_TIMEOUT_MS / 1000} s bound`);
  failed++;
  finish(1);
}, RUN_TIMEOUT_MS);

// ---------------------------------------------------------------------------
// tiny harness

function oneLine(s) {
  return String(s).replace(/\s+/g, ' ').trim().slice(0, 600);
}

function describeError(err) {
  if (err instanceof assert.AssertionError) {
    const exp = JSON.stringify(err.expected);
    const act = JSON.stringify(err.actual);
    const msg = err.generatedMessage ? err.operator : err.message.split('\n')[0];
    if (err.operator === 'fail') return oneLine(msg);
    return oneLine(`${msg} (expected ${exp?.slice(0, 200)}, got ${act?.slice(0, 200)})`);
  }
  if (err && typeof err === 'object' && 'code' in err && err.name) {
    return oneLine(`${err.name} [${err.code}${err.httpStatus ? ` ${err.httpStatus}` : ''}]: ${err.message}`);
  }
  if (err instanceof Error) return oneLine(`${err.name}: ${err.message}${err.cause ? ` (cause: ${err.cause?.message ?? err.cause})` : ''}`);
  return oneLine(String(err));
}

async function check(name, fn) {
  if (finished) return;
  let timer;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`check timed out after ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
      })
    ]);
    if (finished) return; // the run bound fired meanwhile; the summary is already out
    passed++;
    console.log(`ok - ${name}`);
  } catch (err) {
    if (finished) return;
    failed++;
    console.log(`not ok - ${name}: ${describeError(err)}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs fn, which must throw; returns the error. */
async function rejects(fn) {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  assert.fail('expected the SDK call to throw, it resolved');
}

async function collectEvents(iterable) {
  const events = [];
  for await (const ev of iterable) events.push(ev);
  return events;
}

// ---------------------------------------------------------------------------
// agent start-up

function startAgent(binary) {
  return new Promise((resolve, reject) => {
    let out = '';
    let settled = false;
    const child = spawn(binary, ['--listen', '127.0.0.1:0', '--workspace', workspace], {
      cwd: workspace,
      detached: true, // own process group: lets us reap its shells by group id
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SANDBOX_VERSION: 'compat-test-9.9.9' }
    });
    agent = child;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      reject(new Error(`no "listening on port" line within ${START_TIMEOUT_MS} ms; stdout=${JSON.stringify(out)}`));
    }, START_TIMEOUT_MS);
    child.on('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`agent exited before listening (code ${code}, signal ${signal}); stderr=${oneLine(agentStderr)}`));
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => {
      agentStderr = (agentStderr + d).slice(-8192);
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      if (settled) return; // keep draining so the agent never blocks on a full pipe
      out += d;
      const firstLine = out.split('\n')[0];
      if (!out.includes('\n')) return;
      settled = true;
      clearTimeout(timer);
      const m = /^sandbox-agent listening on port (\d+)\s*$/.exec(firstLine);
      if (m) resolve(Number(m[1]));
      else reject(new Error(`unexpected first stdout line ${JSON.stringify(firstLine)}`));
    });
  });
}

// ---------------------------------------------------------------------------
// main

async function main() {
  const binary = process.argv[2];
  if (!binary) {
    console.log('not ok - usage: node run.mjs /path/to/sandbox-agent');
    failed++;
    return finish(2);
  }

  // The SDK imports `cloudflare:workers`; install the stub before loading it.
  let sdk;
  try {
    await import('./register.mjs');
    sdk = await import('@cloudflare/sandbox');
  } catch (err) {
    console.log(`not ok - load @cloudflare/sandbox: ${describeError(err)}`);
    failed++;
    return finish(1);
  }
  const { SandboxClient, CodeInterpreter, parseSSEStream, streamFile, collectFile, SessionTerminatedError } = sdk;
  // Only a few error classes are exported from the package root; the base
  // class is reachable through any exported subclass.
  const SandboxError = Object.getPrototypeOf(SessionTerminatedError);

  workspace = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'sandbox-compat-')));
  let port;
  try {
    port = await startAgent(path.resolve(binary));
    console.log(`ok - agent started on 127.0.0.1:${port}`);
    passed++;
  } catch (err) {
    console.log(`not ok - agent start: ${describeError(err)}`);
    failed++;
    return finish(1);
  }

  const client = new SandboxClient({
    baseUrl: `http://127.0.0.1:${port}`,
    retryTimeoutMs: 2000 // a 503 must not make the SDK back off for minutes
  });
  const { utils, commands, files } = client;

  const ws = workspace;
  const SID = 'compat-s1';
  const sessionCwd = path.join(ws, 'home');
  fs.mkdirSync(sessionCwd);

  /** Asserts err is the SDK's typed error `className` for wire code `code`. */
  function assertTyped(err, className, code, httpStatus) {
    assert.ok(err instanceof SandboxError, `expected a SandboxError, got ${err?.name}: ${err?.message}`);
    assert.equal(err.name, className, 'error class name');
    assert.equal(err.constructor.name, className, 'error constructor');
    assert.equal(err.code, code, 'error code');
    if (httpStatus !== undefined) assert.equal(err.httpStatus, httpStatus, 'httpStatus');
    assert.equal(typeof err.message, 'string');
    assert.ok(err.context && typeof err.context === 'object', 'context is an object');
  }

  // ---- sanity of the SDK exports we rely on ----------------------------------
  await check('sdk exports SandboxClient, parseSSEStream, streamFile, collectFile', async () => {
    assert.equal(typeof SandboxClient, 'function');
    assert.equal(typeof parseSSEStream, 'function');
    assert.equal(typeof streamFile, 'function');
    assert.equal(typeof collectFile, 'function');
    assert.equal(SandboxError.name, 'SandboxError');
  });

  // ---- utils ---------------------------------------------------------------
  await check('utils.ping resolves (SDK returns body.message: string or undefined)', async () => {
    const r = await utils.ping();
    assert.ok(r === undefined || typeof r === 'string', `ping returned ${typeof r}`);
  });

  await check('utils.getVersion returns SANDBOX_VERSION', async () => {
    // The SDK maps any failure to 'unknown', so compare with the real value.
    assert.equal(await utils.getVersion(), 'compat-test-9.9.9');
  });

  await check('utils.createSession with id/env/cwd', async () => {
    const r = await utils.createSession({ id: SID, env: { COMPAT_SESSION_VAR: 'from-session' }, cwd: sessionCwd });
    assert.equal(r.success, true);
    // The DO stores response.containerPlacementId (string or null); undefined
    // would mean "field missing" to the SDK.
    assert.ok(r.containerPlacementId === null || typeof r.containerPlacementId === 'string',
      `containerPlacementId is ${JSON.stringify(r.containerPlacementId)}`);
  });

  await check('utils.createSession duplicate -> SessionAlreadyExistsError that the SDK accepts as success', async () => {
    const err = await rejects(() => utils.createSession({ id: SID }));
    assertTyped(err, 'SessionAlreadyExistsError', 'SESSION_ALREADY_EXISTS', 409);
    assert.equal(err.sessionId, SID);
    // Sandbox.initializeDefaultSession() catches exactly this error and reads
    // error.containerPlacementId (from context) as the placement id.
    assert.ok(err.containerPlacementId === null || typeof err.containerPlacementId === 'string',
      `context.containerPlacementId is ${JSON.stringify(err.containerPlacementId)}`);
  });

  await check('session env and cwd apply to commands', async () => {
    const r = await commands.execute('echo "$COMPAT_SESSION_VAR"; pwd', SID);
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, `from-session\n${sessionCwd}`);
  });

  await check('utils.deleteSession', async () => {
    await utils.createSession({ id: 'compat-s2' });
    const r = await utils.deleteSession('compat-s2');
    assert.equal(r.success, true);
    assert.equal(r.sessionId, 'compat-s2');
    assert.equal(typeof r.timestamp, 'string');
  });

  // Deliberate difference (docs/compatibility.md): the reference answers 500 INTERNAL_ERROR.
  await check('utils.deleteSession of an unknown id -> SandboxError SESSION_NOT_FOUND 404', async () => {
    const err = await rejects(() => utils.deleteSession('compat-no-such-session'));
    assertTyped(err, 'SandboxError', 'SESSION_NOT_FOUND', 404);
    assert.equal(err.context.sessionId, 'compat-no-such-session');
  });

  // ---- commands.execute ----------------------------------------------------
  await check('commands.execute stdout/exitCode/success', async () => {
    const r = await commands.execute('echo hello', SID);
    assert.equal(r.success, true);
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, 'hello');
    assert.equal(r.stderr, '');
    assert.equal(r.command, 'echo hello');
    assert.equal(typeof r.timestamp, 'string');
  });

  await check('commands.execute non-zero exit -> success:false, stderr', async () => {
    const r = await commands.execute('echo oops >&2; (exit 3)', SID);
    assert.equal(r.success, false);
    assert.equal(r.exitCode, 3);
    assert.equal(r.stderr, 'oops');
  });

  await check('commands.execute env and cwd options are per-command', async () => {
    const sub = path.join(ws, 'cwd-opt');
    fs.mkdirSync(sub);
    const r = await commands.execute('echo "$FOO:$BAR"; pwd', SID, { env: { FOO: 'foo val', BAR: 'b' }, cwd: sub });
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, `foo val:b\n${sub}`);
    const after = await commands.execute('echo "[$FOO]"; pwd', SID);
    assert.equal(after.stdout, `[]\n${sessionCwd}`);
  });

  await check('commands.execute sessionless (__DISABLE_SESSION__) returns raw output', async () => {
    const r = await commands.execute('echo sessionless; echo err >&2', '__DISABLE_SESSION__');
    assert.equal(r.exitCode, 0);
    assert.equal(r.success, true);
    assert.equal(r.stdout, 'sessionless\n');
    assert.equal(r.stderr, 'err\n');
  });

  await check('commands.execute without sessionId uses the default session', async () => {
    await commands.execute('export COMPAT_DEFAULT=kept', undefined);
    const r = await commands.execute('echo "$COMPAT_DEFAULT"', undefined);
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, 'kept');
  });

  await check('commands.execute timeoutMs -> CommandError COMMAND_EXECUTION_ERROR 500', async () => {
    await utils.createSession({ id: 'compat-timeout' });
    const err = await rejects(() => commands.execute('sleep 5', 'compat-timeout', { timeoutMs: 300 }));
    assertTyped(err, 'CommandError', 'COMMAND_EXECUTION_ERROR', 500);
    assert.match(err.message, /timeout/i);
  });

  await check('commands.execute cwd that does not exist -> exitCode 1 + stderr', async () => {
    const r = await commands.execute('echo never', SID, { cwd: path.join(ws, 'no-such-dir') });
    assert.equal(r.success, false);
    assert.equal(r.exitCode, 1);
    assert.equal(r.stderr, `Failed to change directory to '${path.join(ws, 'no-such-dir')}'`);
  });

  // Deliberate differences (docs/compatibility.md): client mistakes are 400s, not 500s.
  await check('commands.execute invalid env name -> ValidationFailedError 400', async () => {
    const err = await rejects(() => commands.execute('echo x', SID, { env: { '1BAD': 'v' } }));
    assertTyped(err, 'ValidationFailedError', 'VALIDATION_FAILED', 400);
  });

  await check('commands.execute whitespace sessionId -> ValidationFailedError 400', async () => {
    const err = await rejects(() => commands.execute('echo x', '   '));
    assertTyped(err, 'ValidationFailedError', 'VALIDATION_FAILED', 400);
  });

  await check('commands.execute "exit 7" -> SessionTerminatedError 410', async () => {
    const err = await rejects(() => commands.execute('exit 7', 'compat-term'));
    assert.ok(err instanceof SessionTerminatedError, `got ${err?.name}`);
    assertTyped(err, 'SessionTerminatedError', 'SESSION_TERMINATED', 410);
    assert.equal(err.exitCode, 7);
    // next call on that id transparently gets a fresh shell
    const r = await commands.execute('echo again', 'compat-term');
    assert.equal(r.stdout, 'again');
  });

  // ---- commands.executeStream + parseSSEStream ----------------------------
  await check('commands.executeStream events via parseSSEStream (start/stdout/stderr/complete)', async () => {
    const cmd = 'echo one; echo two >&2; printf partial';
    const stream = await commands.executeStream(cmd, SID);
    const events = await collectEvents(parseSSEStream(stream));
    const types = events.map((e) => e.type);
    assert.equal(types[0], 'start', `event types ${types.join(',')}`);
    assert.equal(events[0].command, cmd);
    assert.equal(types.at(-1), 'complete', `event types ${types.join(',')}`);
    assert.equal(events.at(-1).exitCode, 0);
    assert.equal(types.filter((t) => t === 'complete').length, 1);
    const stdout = events.filter((e) => e.type === 'stdout').map((e) => e.data).join('');
    const stderr = events.filter((e) => e.type === 'stderr').map((e) => e.data).join('');
    assert.equal(stdout, 'one\npartial\n');
    assert.equal(stderr, 'two\n');
    for (const e of events) assert.equal(typeof e.timestamp, 'string', `timestamp on ${e.type}`);
  });

  await check('commands.executeStream non-zero exit, env and cwd options', async () => {
    const sub = path.join(ws, 'cwd-stream');
    fs.mkdirSync(sub);
    const stream = await commands.executeStream('echo "$SVAR"; pwd; (exit 4)', SID, { env: { SVAR: 'sv' }, cwd: sub });
    const events = await collectEvents(parseSSEStream(stream));
    const stdout = events.filter((e) => e.type === 'stdout').map((e) => e.data).join('');
    assert.equal(stdout, `sv\n${sub}\n`);
    assert.equal(events.at(-1).type, 'complete');
    assert.equal(events.at(-1).exitCode, 4);
  });

  await check('commands.executeStream sessionless', async () => {
    const stream = await commands.executeStream('echo raw', '__DISABLE_SESSION__');
    const events = await collectEvents(parseSSEStream(stream));
    assert.equal(events[0].type, 'start');
    assert.equal(events.filter((e) => e.type === 'stdout').map((e) => e.data).join(''), 'raw\n');
    assert.equal(events.at(-1).type, 'complete');
    assert.equal(events.at(-1).exitCode, 0);
  });

  await check('commands.executeStream empty command -> CommandError INVALID_COMMAND 400', async () => {
    const err = await rejects(() => commands.executeStream('   ', SID));
    assertTyped(err, 'CommandError', 'INVALID_COMMAND', 400);
  });

  // ---- files ---------------------------------------------------------------
  const textPath = path.join(ws, 'dir1', 'a.txt');
  const textContent = 'hello\nworld — ünïcødé ✓';
  const binPath = path.join(ws, 'bytes.bin');
  const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

  await check('files.writeFile utf-8 (creates parent dirs)', async () => {
    const r = await files.writeFile(textPath, textContent, SID, { encoding: 'utf-8' });
    assert.equal(r.success, true);
    assert.equal(r.path, textPath);
    assert.equal(fs.readFileSync(textPath, 'utf8'), textContent);
  });

  await check('files.readFile utf-8', async () => {
    const r = await files.readFile(textPath, SID, { encoding: 'utf-8' });
    assert.equal(r.success, true);
    assert.equal(r.path, textPath);
    assert.equal(r.content, textContent);
    assert.equal(r.encoding, 'utf-8');
    assert.equal(r.isBinary, false);
    assert.equal(r.size, Buffer.byteLength(textContent));
    assert.equal(r.mimeType, 'text/plain');
  });

  await check('files.readFile without encoding auto-detects text', async () => {
    const r = await files.readFile(textPath, SID);
    assert.equal(r.encoding, 'utf-8');
    assert.equal(r.content, textContent);
  });

  await check('files.readFile base64 of a text file', async () => {
    const r = await files.readFile(textPath, SID, { encoding: 'base64' });
    assert.equal(r.encoding, 'base64');
    assert.equal(r.isBinary, true);
    assert.equal(Buffer.from(r.content, 'base64').toString('utf8'), textContent);
  });

  await check('files.writeFile base64 -> all 256 byte values round trip', async () => {
    const r = await files.writeFile(binPath, allBytes.toString('base64'), SID, { encoding: 'base64' });
    assert.equal(r.success, true);
    assert.deepEqual(fs.readFileSync(binPath), allBytes);
    const back = await files.readFile(binPath, SID, { encoding: 'base64' });
    assert.equal(back.encoding, 'base64');
    assert.equal(back.size, 256);
    assert.deepEqual(Buffer.from(back.content, 'base64'), allBytes);
  });

  await check('files.readFile auto-detects binary (.bin) as base64', async () => {
    const r = await files.readFile(binPath, SID);
    assert.equal(r.encoding, 'base64');
    assert.equal(r.isBinary, true);
    assert.deepEqual(Buffer.from(r.content, 'base64'), allBytes);
  });

  await check('files.writeFile invalid base64 -> ValidationFailedError 400', async () => {
    const err = await rejects(() => files.writeFile(path.join(ws, 'bad.bin'), 'not base64!', SID, { encoding: 'base64' }));
    assertTyped(err, 'ValidationFailedError', 'VALIDATION_FAILED', 400);
  });

  await check('files.writeFile below a regular file -> FileSystemError', async () => {
    // spec 3.3 says 500 FILESYSTEM_ERROR; only the SDK class is asserted here
    const err = await rejects(() => files.writeFile(path.join(binPath, 'sub'), 'x', SID));
    assert.ok(err instanceof SandboxError, `got ${err?.name}: ${err?.message}`);
    assert.equal(err.name, 'FileSystemError');
  });

  await check('files.readFile of a directory -> FileNotFoundError 404', async () => {
    const err = await rejects(() => files.readFile(ws, SID));
    assertTyped(err, 'FileNotFoundError', 'FILE_NOT_FOUND', 404);
  });

  await check('files.readFile empty path -> ValidationFailedError 400', async () => {
    const err = await rejects(() => files.readFile('', SID));
    assertTyped(err, 'ValidationFailedError', 'VALIDATION_FAILED', 400);
  });

  await check('files.writeFile relative path resolves against the session cwd', async () => {
    await files.writeFile('rel.txt', 'relative', SID);
    assert.equal(fs.readFileSync(path.join(sessionCwd, 'rel.txt'), 'utf8'), 'relative');
  });

  await check('files.readFileStream raw events via parseSSEStream (metadata/chunk/complete)', async () => {
    const stream = await files.readFileStream(textPath, SID);
    const events = await collectEvents(parseSSEStream(stream));
    assert.equal(events[0].type, 'metadata');
    assert.equal(events[0].mimeType, 'text/plain');
    assert.equal(events[0].isBinary, false);
    assert.equal(events[0].encoding, 'utf-8');
    assert.equal(events[0].size, Buffer.byteLength(textContent));
    assert.equal(events.at(-1).type, 'complete');
    assert.equal(events.at(-1).bytesRead, Buffer.byteLength(textContent));
    assert.equal(events.filter((e) => e.type === 'chunk').map((e) => e.data).join(''), textContent);
  });

  await check('collectFile(readFileStream) text', async () => {
    const { content, metadata } = await collectFile(await files.readFileStream(textPath, SID));
    assert.equal(content, textContent);
    assert.equal(metadata.isBinary, false);
    assert.equal(metadata.mimeType, 'text/plain');
  });

  await check('streamFile(readFileStream) binary, 200 KiB in several chunks', async () => {
    const big = randomBytes(200 * 1024);
    const p = path.join(ws, 'big-random.bin');
    fs.writeFileSync(p, big);
    const gen = streamFile(await files.readFileStream(p, SID));
    const parts = [];
    let step = await gen.next();
    while (!step.done) {
      assert.ok(step.value instanceof Uint8Array, 'binary chunks are Uint8Array');
      parts.push(step.value);
      step = await gen.next();
    }
    assert.ok(parts.length >= 2, `expected several chunks, got ${parts.length}`);
    assert.deepEqual(Buffer.concat(parts), big);
    assert.equal(step.value.isBinary, true);
    assert.equal(step.value.encoding, 'base64');
    assert.equal(step.value.size, big.length);
  });

  await check('collectFile(readFileStream) binary 256 bytes', async () => {
    const { content, metadata } = await collectFile(await files.readFileStream(binPath, SID));
    assert.ok(content instanceof Uint8Array);
    assert.deepEqual(Buffer.from(content), allBytes);
    assert.equal(metadata.size, 256);
  });

  await check('readFileStream of a missing file -> streamFile throws "File streaming error"', async () => {
    const stream = await files.readFileStream(path.join(ws, 'missing.txt'), SID);
    const err = await rejects(() => collectFile(stream));
    assert.match(err.message, /^File streaming error: .*missing\.txt/);
  });

  const dirA = path.join(ws, 'tree', 'a', 'b');
  await check('files.mkdir recursive', async () => {
    const r = await files.mkdir(dirA, SID, { recursive: true });
    assert.equal(r.success, true);
    assert.equal(r.path, dirA);
    assert.equal(r.recursive, true);
    assert.ok(fs.statSync(dirA).isDirectory());
  });

  // Deliberate difference (docs/compatibility.md): the reference answers 500 FILESYSTEM_ERROR.
  await check('files.mkdir existing dir, non-recursive -> FileExistsError FILE_EXISTS 409', async () => {
    const err = await rejects(() => files.mkdir(dirA, SID));
    assertTyped(err, 'FileExistsError', 'FILE_EXISTS', 409);
    assert.equal(err.path, dirA);
  });

  await check('files.listFiles returns FileInfo entries', async () => {
    const root = path.join(ws, 'tree');
    fs.writeFileSync(path.join(root, 'f.txt'), '12345');
    fs.writeFileSync(path.join(root, '.hidden'), 'h');
    const r = await files.listFiles(root, SID);
    assert.equal(r.success, true);
    assert.equal(r.path, root);
    assert.ok(Array.isArray(r.files));
    assert.equal(r.count, r.files.length);
    const names = r.files.map((f) => f.name).sort();
    assert.deepEqual(names, ['a', 'f.txt']);
    const f = r.files.find((x) => x.name === 'f.txt');
    assert.equal(f.absolutePath, path.join(root, 'f.txt'));
    assert.equal(f.relativePath, 'f.txt');
    assert.equal(f.type, 'file');
    assert.equal(f.size, 5);
    assert.equal(typeof f.modifiedAt, 'string');
    assert.ok(!Number.isNaN(Date.parse(f.modifiedAt)), `modifiedAt ${f.modifiedAt} parses as a date`);
    assert.match(f.mode, /^[r-][w-][x-][r-][w-][x-][r-][w-][x-]$/);
    assert.deepEqual(Object.keys(f.permissions).sort(), ['executable', 'readable', 'writable']);
    assert.equal(f.permissions.readable, true);
    assert.equal(f.permissions.executable, false);
    const d = r.files.find((x) => x.name === 'a');
    assert.equal(d.type, 'directory');
  });

  await check('files.listFiles recursive + includeHidden', async () => {
    const root = path.join(ws, 'tree');
    const r = await files.listFiles(root, SID, { recursive: true, includeHidden: true });
    const rel = r.files.map((f) => f.relativePath).sort();
    assert.deepEqual(rel, ['.hidden', 'a', 'a/b', 'f.txt']);
  });

  await check('files.listFiles on a file -> FileSystemError NOT_DIRECTORY 400', async () => {
    const err = await rejects(() => files.listFiles(textPath, SID));
    assertTyped(err, 'FileSystemError', 'NOT_DIRECTORY', 400);
  });

  await check('files.listFiles on a missing dir -> FileNotFoundError 404', async () => {
    const err = await rejects(() => files.listFiles(path.join(ws, 'nope'), SID));
    assertTyped(err, 'FileNotFoundError', 'FILE_NOT_FOUND', 404);
  });

  await check('files.exists true / false', async () => {
    const yes = await files.exists(textPath, SID);
    assert.equal(yes.success, true);
    assert.equal(yes.exists, true);
    const no = await files.exists(path.join(ws, 'nope'), SID);
    assert.equal(no.success, true);
    assert.equal(no.exists, false);
  });

  const renamed = path.join(ws, 'dir1', 'renamed.txt');
  await check('files.renameFile', async () => {
    const r = await files.renameFile(textPath, renamed, SID);
    assert.equal(r.success, true);
    assert.equal(r.path, textPath);
    assert.equal(r.newPath, renamed);
    assert.equal((await files.exists(textPath, SID)).exists, false);
    assert.equal((await files.exists(renamed, SID)).exists, true);
  });

  await check('files.renameFile missing source -> FileNotFoundError 404', async () => {
    const err = await rejects(() => files.renameFile(path.join(ws, 'ghost'), path.join(ws, 'ghost2'), SID));
    assertTyped(err, 'FileNotFoundError', 'FILE_NOT_FOUND', 404);
  });

  await check('files.renameFile into a missing directory -> FileSystemError FILESYSTEM_ERROR 500 [spec 3.3]', async () => {
    // source exists, destination's parent does not: `mv` fails (not a 404 for the source)
    const err = await rejects(() => files.renameFile(renamed, path.join(ws, 'no-dir', 'x.txt'), SID));
    assertTyped(err, 'FileSystemError', 'FILESYSTEM_ERROR', 500);
    assert.equal(fs.existsSync(renamed), true);
  });

  const moved = path.join(ws, 'tree', 'a', 'moved.txt');
  await check('files.moveFile', async () => {
    const r = await files.moveFile(renamed, moved, SID);
    assert.equal(r.success, true);
    assert.equal(r.path, renamed);
    assert.equal(r.newPath, moved);
    assert.equal(fs.readFileSync(moved, 'utf8'), textContent);
    assert.equal(fs.existsSync(renamed), false);
  });

  await check('files.deleteFile', async () => {
    const r = await files.deleteFile(moved, SID);
    assert.equal(r.success, true);
    assert.equal(r.path, moved);
    assert.equal((await files.exists(moved, SID)).exists, false);
  });

  await check('files.deleteFile on a directory -> FileSystemError IS_DIRECTORY 400', async () => {
    const err = await rejects(() => files.deleteFile(dirA, SID));
    assertTyped(err, 'FileSystemError', 'IS_DIRECTORY', 400);
  });

  await check('files.deleteFile missing -> FileNotFoundError 404', async () => {
    const err = await rejects(() => files.deleteFile(moved, SID));
    assertTyped(err, 'FileNotFoundError', 'FILE_NOT_FOUND', 404);
  });

  // ---- error mapping -------------------------------------------------------
  await check('files.readFile missing -> FileNotFoundError (code FILE_NOT_FOUND, 404, path)', async () => {
    const missing = path.join(ws, 'does-not-exist.json');
    const err = await rejects(() => files.readFile(missing, SID));
    assertTyped(err, 'FileNotFoundError', 'FILE_NOT_FOUND', 404);
    assert.equal(err.path, missing);
    assert.match(err.message, /does-not-exist\.json/);
  });

  await check('files.readFile > 32 MiB -> FileTooLargeError FILE_TOO_LARGE 413', async () => {
    const bigPath = path.join(ws, 'huge.bin');
    const fd = fs.openSync(bigPath, 'w');
    fs.ftruncateSync(fd, MAX_READ_BYTES + 1); // sparse: cheap to create
    fs.closeSync(fd);
    const err = await rejects(() => files.readFile(bigPath, SID));
    assertTyped(err, 'FileTooLargeError', 'FILE_TOO_LARGE', 413);
    assert.equal(err.path, bigPath);
    assert.equal(err.context.maxSize, MAX_READ_BYTES);
    assert.equal(err.context.actualSize, MAX_READ_BYTES + 1);
    fs.rmSync(bigPath);
  });

  // ---- git (GitClient) and file watch (WatchClient) -----------------------------
  const { git, watch } = client;
  const gitDir = path.join(ws, 'gitsrc');
  fs.mkdirSync(gitDir);
  const gitEnv = {
    ...process.env,
    GIT_AUTHOR_NAME: 't',
    GIT_AUTHOR_EMAIL: 't@example.com',
    GIT_COMMITTER_NAME: 't',
    GIT_COMMITTER_EMAIL: 't@example.com'
  };
  const { execFileSync } = await import('node:child_process');
  const gitRun = (args, cwd) => execFileSync('git', args, { cwd, env: gitEnv, stdio: 'ignore' });
  let repoUrl = null;
  try {
    gitRun(['init', '-q', '-b', 'main', 'src'], gitDir);
    fs.writeFileSync(path.join(gitDir, 'src', 'README'), 'hello\n');
    gitRun(['add', 'README'], path.join(gitDir, 'src'));
    gitRun(['commit', '-q', '-m', 'one'], path.join(gitDir, 'src'));
    gitRun(['checkout', '-q', '-b', 'dev'], path.join(gitDir, 'src'));
    gitRun(['clone', '-q', '--bare', 'src', 'repo.git'], gitDir);
    repoUrl = `file://${gitDir}/repo.git`;
  } catch {}

  await check('git.checkout (branch, targetDir, depth) -> {success, repoUrl, branch, targetDir}', async () => {
    assert.ok(repoUrl, 'the test repository could not be made with git');
    const target = path.join(ws, 'clone1');
    const r = await git.checkout(repoUrl, SID, { branch: 'dev', targetDir: target, depth: 1 });
    assert.equal(r.success, true);
    assert.equal(r.repoUrl, repoUrl);
    assert.equal(r.branch, 'dev');
    assert.equal(r.targetDir, target);
    assert.equal(fs.readFileSync(path.join(target, 'README'), 'utf8'), 'hello\n');
  });

  await check('git.checkout missing repository -> GitRepositoryNotFoundError 404', async () => {
    const err = await rejects(() =>
      git.checkout(`file://${gitDir}/missing.git`, SID, { targetDir: path.join(ws, 'clone2') })
    );
    assertTyped(err, 'GitRepositoryNotFoundError', 'GIT_REPOSITORY_NOT_FOUND', 404);
  });

  await check('git.checkout missing branch -> GitBranchNotFoundError 404', async () => {
    assert.ok(repoUrl);
    const err = await rejects(() =>
      git.checkout(repoUrl, SID, { branch: 'nope', targetDir: path.join(ws, 'clone3') })
    );
    assertTyped(err, 'GitBranchNotFoundError', 'GIT_BRANCH_NOT_FOUND', 404);
  });

  await check('git.checkout invalid URL -> InvalidGitUrlError 400', async () => {
    const err = await rejects(() => git.checkout('ext::sh -c id', SID, { targetDir: path.join(ws, 'x') }));
    assertTyped(err, 'InvalidGitUrlError', 'INVALID_GIT_URL', 400);
  });

  await check('watch.watch resolves after `watching`; events via parseSSEStream', async () => {
    const dir = path.join(ws, 'watched');
    fs.mkdirSync(dir);
    const stream = await watch.watch({ path: dir, recursive: true });
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.writeFileSync(path.join(dir, 'sub', 'a.txt'), 'a');
    const seen = [];
    for await (const ev of parseSSEStream(stream)) {
      seen.push(ev);
      if (ev.type === 'event' && ev.path === path.join(dir, 'sub', 'a.txt') && ev.eventType === 'create') break;
    }
    assert.equal(seen[0].type, 'watching');
    assert.equal(seen[0].path, dir);
    assert.match(seen[0].watchId, /^watch-\d+-\d+$/);
    const created = seen.filter((e) => e.type === 'event' && e.eventType === 'create').map((e) => e.path);
    assert.deepEqual(created, [path.join(dir, 'sub'), path.join(dir, 'sub', 'a.txt')]);
    assert.equal(seen[1].isDirectory, true);
    assert.equal(typeof seen[1].timestamp, 'string');
  });

  await check('watch.checkChanges unchanged -> changed -> unchanged; resync for another watch', async () => {
    const dir = path.join(ws, 'checked');
    fs.mkdirSync(dir);
    const first = await watch.checkChanges({ path: dir });
    assert.equal(first.success, true);
    assert.equal(first.status, 'unchanged');
    fs.writeFileSync(path.join(dir, 'f'), 'x');
    const second = await watch.checkChanges({ path: dir, since: first.version });
    assert.equal(second.status, 'changed');
    const third = await watch.checkChanges({ path: dir, since: second.version });
    assert.equal(third.status, 'unchanged');
    const other = await watch.checkChanges({ path: dir, since: 'watch-1-1:0' });
    assert.equal(other.status, 'resync');
    assert.equal(other.reason, 'restarted');
  });

  await check('watch.checkChanges outside the workspace -> PermissionDeniedError 403', async () => {
    const err = await rejects(() => watch.checkChanges({ path: '/etc' }));
    assertTyped(err, 'PermissionDeniedError', 'PERMISSION_DENIED', 403);
  });

  await check('unknown endpoint via the SDK base client -> SandboxError UNKNOWN_ERROR 404', async () => {
    // BaseHttpClient.get() is the SDK's own request + error-mapping path.
    const err = await rejects(() => utils.get('/api/no-such-endpoint'));
    assertTyped(err, 'SandboxError', 'UNKNOWN_ERROR', 404);
  });

  // Deliberate difference (docs/compatibility.md): the reference route always fails with 500.
  await check('utils.getCommands returns the command list', async () => {
    const list = await utils.getCommands();
    assert.ok(Array.isArray(list) && list.includes('exec'), `got ${JSON.stringify(list)}`);
  });

  // ---- processes and port readiness -----------------------------------------
  const { processes, ports } = client;
  const waitDone = async (id) => {
    for (let i = 0; i < 400; i++) {
      const info = await processes.getProcess(id);
      if (info.process.status !== 'running') return info.process;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`process ${id} still running`);
  };

  await check('processes.startProcess / getProcess / getProcessLogs / listProcesses', async () => {
    const r = await processes.startProcess('echo from-process; echo e >&2', SID, { processId: 'compat-p1' });
    assert.equal(r.success, true);
    assert.equal(r.processId, 'compat-p1');
    assert.equal(typeof r.pid, 'number');
    const p = await waitDone('compat-p1');
    assert.equal(p.status, 'completed');
    assert.equal(p.exitCode, 0);
    const logs = await processes.getProcessLogs('compat-p1');
    assert.equal(logs.stdout, 'from-process\n');
    assert.equal(logs.stderr, 'e\n');
    const list = await processes.listProcesses();
    assert.ok(list.processes.some((q) => q.id === 'compat-p1'), JSON.stringify(list));
  });

  await check('processes.streamProcessLogs via parseSSEStream (process_info/stdout/stderr/exit)', async () => {
    const events = await collectEvents(parseSSEStream(await processes.streamProcessLogs('compat-p1')));
    const types = events.map((e) => e.type);
    assert.equal(types[0], 'process_info', types.join(','));
    assert.equal(types.at(-1), 'exit', types.join(','));
    assert.equal(events.at(-1).exitCode, 0);
    assert.equal(events.filter((e) => e.type === 'stdout').map((e) => e.data).join(''), 'from-process\n');
    assert.equal(events.filter((e) => e.type === 'stderr').map((e) => e.data).join(''), 'e\n');
  });

  await check('processes.killProcess -> killed 143; killAllProcesses -> cleanedCount', async () => {
    await processes.startProcess('sleep 30', SID, { processId: 'compat-p2' });
    const k = await processes.killProcess('compat-p2');
    assert.equal(k.success, true);
    const p = await processes.getProcess('compat-p2');
    assert.equal(p.process.status, 'killed');
    assert.equal(p.process.exitCode, 143);
    await processes.startProcess('sleep 30', '__DISABLE_SESSION__', { processId: 'compat-p3' });
    const all = await processes.killAllProcesses();
    assert.equal(all.cleanedCount, 1);
  });

  await check('processes.getProcess unknown -> ProcessNotFoundError 404', async () => {
    const err = await rejects(() => processes.getProcess('compat-no-such-process'));
    assertTyped(err, 'ProcessNotFoundError', 'PROCESS_NOT_FOUND', 404);
    assert.equal(err.processId, 'compat-no-such-process');
  });

  // Deliberate difference (docs/compatibility.md): the reference accepts a duplicate live id.
  await check('processes.startProcess with a running id -> 409 PROCESS_ALREADY_EXISTS', async () => {
    await processes.startProcess('sleep 30', SID, { processId: 'compat-dup' });
    const err = await rejects(() => processes.startProcess('true', SID, { processId: 'compat-dup' }));
    assert.equal(err.code, 'PROCESS_ALREADY_EXISTS');
    assert.equal(err.httpStatus, 409);
    await processes.killProcess('compat-dup');
  });

  await check('ports.watchPort http against python3 -m http.server -> watching, ready 200', async () => {
    const net = await import('node:net');
    const port = await new Promise((resolve) => {
      const srv = net.createServer();
      srv.listen(0, '127.0.0.1', () => {
        const p = srv.address().port;
        srv.close(() => resolve(p));
      });
    });
    const r = await processes.startProcess(`exec python3 -m http.server ${port} --bind 127.0.0.1`,
      '__DISABLE_SESSION__', { processId: 'compat-web' });
    const stream = await ports.watchPort({ port, mode: 'http', path: '/', statusMin: 200, statusMax: 399,
      processId: r.processId, interval: 100 });
    const events = await collectEvents(parseSSEStream(stream));
    assert.deepEqual(events.map((e) => e.type), ['watching', 'ready']);
    assert.equal(events[1].statusCode, 200);
    await processes.killProcess('compat-web');
  });

  // ---- code interpreter (InterpreterClient, and CodeInterpreter on top of it) -----------------
  const { interpreter } = client;
  const codeInterpreter = new CodeInterpreter(interpreter);
  const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const ctxs = {}; // language -> context, as createCodeContext returned it

  /** Runs code through interpreter.runCodeStream; returns the callbacks' calls in order. */
  async function runStream(ctx, code, language) {
    const calls = [];
    await interpreter.runCodeStream(ctx.id, code, language, {
      onStdout: (o) => calls.push({ type: 'stdout', ...o }),
      onStderr: (o) => calls.push({ type: 'stderr', ...o }),
      onResult: (r) => calls.push({ type: 'result', result: r }),
      onError: (e) => calls.push({ type: 'error', ...e })
    });
    return calls;
  }
  const ofType = (calls, type) => calls.filter((c) => c.type === type);
  // Output is streamed as it is written, so one print may arrive as several stdout events.
  const textOf = (events, type) => ofType(events, type).map((e) => e.text).join('');
  const kinds = (events) => [...new Set(events.map((e) => e.type))];

  // The client has no health method; BaseHttpClient.get() is the SDK's own request path.
  await check('interpreter health via the SDK base client -> {success, status: healthy}', async () => {
    const r = await utils.get('/api/interpreter/health');
    assert.equal(r.success, true);
    assert.equal(r.status, 'healthy');
    assert.equal(typeof r.timestamp, 'string');
  });

  // The client sends cwd '/workspace' when none is given; ours must exist, so pass the workspace.
  await check('interpreter.createCodeContext python/javascript/typescript -> id, language, cwd', async () => {
    for (const language of ['python', 'javascript', 'typescript']) {
      const c = await interpreter.createCodeContext({ language, cwd: ws });
      assert.match(c.id, UUID_V4, `${language} context id`);
      assert.equal(c.language, language);
      assert.equal(c.cwd, ws);
      assert.ok(!Number.isNaN(c.createdAt.getTime()), `${language} createdAt from the timestamp`);
      ctxs[language] = c;
    }
    assert.equal(new Set(Object.values(ctxs).map((c) => c.id)).size, 3, 'distinct ids');
  });

  await check('interpreter.runCodeStream python: `x = 10` then `x * 2` -> result text "20"', async () => {
    assert.ok(ctxs.python, 'no python context');
    assert.deepEqual(await runStream(ctxs.python, 'x = 10', 'python'), []);
    const calls = await runStream(ctxs.python, 'x * 2', 'python');
    const results = ofType(calls, 'result');
    assert.equal(results.length, 1, `callbacks ${calls.map((c) => c.type).join(',')}`);
    assert.equal(results[0].result.text, '20');
    assert.deepEqual(results[0].result.formats(), ['text']);
    assert.equal(ofType(calls, 'error').length, 0);
  });

  await check('interpreter.runCodeStream python: print("hi") -> stdout "hi\\n"', async () => {
    assert.ok(ctxs.python, 'no python context');
    const calls = await runStream(ctxs.python, 'print("hi")');
    assert.deepEqual(kinds(calls), ['stdout']);
    assert.equal(textOf(calls, 'stdout'), 'hi\n');
  });

  await check('interpreter.runCodeStream python: 1/0 -> error ZeroDivisionError / division by zero', async () => {
    assert.ok(ctxs.python, 'no python context');
    const calls = await runStream(ctxs.python, '1/0');
    const errors = ofType(calls, 'error');
    assert.equal(errors.length, 1, `callbacks ${calls.map((c) => c.type).join(',')}`);
    assert.equal(errors[0].name, 'ZeroDivisionError');
    assert.equal(errors[0].message, 'division by zero');
    assert.ok(Array.isArray(errors[0].traceback) && errors[0].traceback.length > 0, 'traceback lines');
    assert.ok(errors[0].traceback.every((l) => typeof l === 'string'), 'traceback of strings');
    assert.equal(ofType(calls, 'result').length, 0);
  });

  await check('interpreter.runCodeStream python: {"a": 1} -> result json {a: 1} (a value)', async () => {
    assert.ok(ctxs.python, 'no python context');
    const calls = await runStream(ctxs.python, '{"a": 1}');
    const results = ofType(calls, 'result');
    assert.equal(results.length, 1, `callbacks ${calls.map((c) => c.type).join(',')}`);
    assert.deepEqual(results[0].result.json, { a: 1 });
    assert.deepEqual(results[0].result.formats(), ['json']);
  });

  await check('interpreter.runCodeStream javascript `const y = 3; y * 2` -> "6", typescript -> "3"', async () => {
    assert.ok(ctxs.javascript && ctxs.typescript, 'no javascript/typescript context');
    const js = await runStream(ctxs.javascript, 'const y = 3; y * 2', 'javascript');
    assert.deepEqual(js.map((c) => c.type), ['result']);
    assert.equal(js[0].result.text, '6');
    const ts = await runStream(ctxs.typescript, 'const n: number = 2; n + 1', 'typescript');
    assert.deepEqual(ts.map((c) => c.type), ['result']);
    assert.equal(ts[0].result.text, '3');
  });

  await check('CodeInterpreter.runCode -> Execution (logs, results, error)', async () => {
    assert.ok(ctxs.python, 'no python context');
    const printed = await codeInterpreter.runCode('print("hi")', { context: ctxs.python });
    assert.equal(printed.logs.stdout.join(''), 'hi\n');
    assert.deepEqual(printed.logs.stderr, []);
    assert.deepEqual(printed.results, []);
    const valued = await codeInterpreter.runCode('x * 2', { context: ctxs.python });
    assert.deepEqual(valued.results.map((r) => r.text), ['20']);
    assert.equal(valued.error, undefined);
    const bad = await codeInterpreter.runCode('1/0', { context: ctxs.python });
    assert.equal(bad.error?.name, 'ZeroDivisionError');
    assert.equal(bad.error?.message, 'division by zero');
  });

  await check('CodeInterpreter.runCodeStream events via parseSSEStream (stdout, result, execution_complete)', async () => {
    assert.ok(ctxs.python, 'no python context');
    const stream = await codeInterpreter.runCodeStream('print("hi")\nx', { context: ctxs.python });
    const events = await collectEvents(parseSSEStream(stream));
    assert.deepEqual(kinds(events), ['stdout', 'result', 'execution_complete']);
    // The reference's IPython also prints `Out[n]: 10` there.
    assert.match(textOf(events, 'stdout'), /^hi\n/);
    assert.deepEqual(ofType(events, 'result').map((e) => e.text), ['10']);
    assert.equal(events.at(-1).type, 'execution_complete');
    assert.equal(typeof events.at(-1).execution_count, 'number');
  });

  await check('interpreter.listCodeContexts includes the created contexts', async () => {
    const list = await interpreter.listCodeContexts();
    for (const c of Object.values(ctxs)) {
      const listed = list.find((l) => l.id === c.id);
      assert.ok(listed, `context ${c.id} (${c.language}) listed`);
      assert.equal(listed.language, c.language);
      assert.equal(listed.cwd, ws);
    }
  });

  await check('interpreter.deleteCodeContext removes it; again -> ContextNotFoundError 404', async () => {
    assert.ok(ctxs.typescript, 'no typescript context');
    const id = ctxs.typescript.id;
    await interpreter.deleteCodeContext(id);
    assert.ok(!(await interpreter.listCodeContexts()).some((l) => l.id === id), 'still listed');
    const err = await rejects(() => interpreter.deleteCodeContext(id));
    assertTyped(err, 'ContextNotFoundError', 'CONTEXT_NOT_FOUND', 404);
    assert.equal(err.contextId, id);
  });

  // /api/execute/code refuses with {error, code, details} (not the standard envelope), so the
  // SDK's error has the right class and code but no message, context or httpStatus.
  await check('interpreter.runCodeStream on a deleted context -> ContextNotFoundError', async () => {
    assert.ok(ctxs.typescript, 'no typescript context');
    const id = ctxs.typescript.id;
    const err = await rejects(() => runStream(ctxs.typescript, 'n'));
    assert.ok(err instanceof SandboxError, `expected a SandboxError, got ${err?.name}: ${err?.message}`);
    assert.equal(err.name, 'ContextNotFoundError');
    assert.equal(err.code, 'CONTEXT_NOT_FOUND');
    assert.deepEqual(err.errorResponse, { code: 'CONTEXT_NOT_FOUND', error: `Context ${id} not found`, details: { contextId: id } });
  });

  await check('interpreter.runCodeStream python code on a javascript context -> CodeExecutionError', async () => {
    assert.ok(ctxs.javascript, 'no javascript context');
    const id = ctxs.javascript.id;
    const err = await rejects(() => runStream(ctxs.javascript, '1', 'python'));
    assert.ok(err instanceof SandboxError, `expected a SandboxError, got ${err?.name}: ${err?.message}`);
    assert.equal(err.name, 'CodeExecutionError');
    assert.equal(err.code, 'CODE_EXECUTION_ERROR');
    assert.equal(err.errorResponse.error, `Context ${id} was created for javascript, cannot execute python code`);
  });

  await check('unknown language: CodeInterpreter refuses it client-side; the route client gets python', async () => {
    const before = (await interpreter.listCodeContexts()).length;
    const err = await rejects(() => codeInterpreter.createCodeContext({ language: 'cobol', cwd: ws }));
    assert.equal(err.name, 'SandboxSecurityError');
    assert.equal(err.code, 'INVALID_LANGUAGE');
    assert.equal((await interpreter.listCodeContexts()).length, before, 'no context created');
    // InterpreterClient does not validate; the container maps an unknown language to python.
    const c = await interpreter.createCodeContext({ language: 'cobol', cwd: ws });
    assert.equal(c.language, 'python');
    const calls = await runStream(c, 'import sys; sys.version_info.major');
    assert.equal(calls.find((x) => x.type === 'result')?.result.text, '3');
    await interpreter.deleteCodeContext(c.id);
  });

  // ---- the websocket transport (transportMode: 'websocket'): every request of the SDK's
  // route clients travels as JSON frames over one /ws connection (container-api §6) --------
  if (typeof WebSocket === 'undefined') {
    failed++;
    console.log('not ok - websocket transport: no global WebSocket (Node 22+, or run with --experimental-websocket)');
  } else {
    const wsClient = new SandboxClient({
      baseUrl: `http://127.0.0.1:${port}`,
      transportMode: 'websocket',
      wsUrl: `ws://127.0.0.1:${port}/ws`,
      retryTimeoutMs: 2000
    });
    // The transport falls back to plain HTTP while its socket connects; here every request
    // must travel over the socket, so the fallback fails loudly.
    const noHttp = async () => {
      throw new Error('the websocket transport fell back to HTTP');
    };
    wsClient.transport.httpFetch = noHttp;
    wsClient.transport.httpFetchStream = noHttp;
    await check('websocket transport: utils.getVersion and ping', async () => {
      assert.equal(wsClient.transport.getMode(), 'websocket');
      assert.equal(await wsClient.utils.getVersion(), 'compat-test-9.9.9');
      await wsClient.utils.ping();
    });
    await check('websocket transport: commands.execute in a session', async () => {
      const r = await wsClient.commands.execute('echo ws-$((6*7))', SID);
      assert.equal(r.success, true);
      assert.equal(r.exitCode, 0);
      assert.equal(r.stdout, 'ws-42');
    });
    await check('websocket transport: executeStream events via parseSSEStream', async () => {
      const cmd = 'echo one; echo two >&2';
      const stream = await wsClient.commands.executeStream(cmd, SID);
      const events = await collectEvents(parseSSEStream(stream));
      const types = events.map((e) => e.type);
      assert.equal(types[0], 'start', `event types ${types.join(',')}`);
      assert.equal(types.at(-1), 'complete', `event types ${types.join(',')}`);
      const stdout = events.filter((e) => e.type === 'stdout').map((e) => e.data).join('');
      const stderr = events.filter((e) => e.type === 'stderr').map((e) => e.data).join('');
      assert.equal(stdout, 'one\n');
      assert.equal(stderr, 'two\n');
    });
    await check('websocket transport: files round trip and FileNotFoundError', async () => {
      const p = path.join(ws, 'ws-transport.txt');
      await wsClient.files.writeFile(p, 'over the socket', SID);
      const r = await wsClient.files.readFile(p, SID);
      assert.equal(r.content, 'over the socket');
      const err = await rejects(() => wsClient.files.readFile(path.join(ws, 'ws-missing.txt'), SID));
      assertTyped(err, 'FileNotFoundError', 'FILE_NOT_FOUND', 404);
    });
    await check('websocket transport: interpreter create, runCodeStream, list, delete', async () => {
      const wsInterp = wsClient.interpreter;
      const c = await wsInterp.createCodeContext({ language: 'python', cwd: ws });
      assert.equal(c.language, 'python');
      const calls = [];
      await wsInterp.runCodeStream(c.id, 'print("hi")\n6 * 7', undefined, {
        onStdout: (o) => calls.push({ type: 'stdout', text: o.text }),
        onResult: (r) => calls.push({ type: 'result', text: r.text })
      });
      assert.match(calls.filter((x) => x.type === 'stdout').map((x) => x.text).join(''), /^hi\n/);
      assert.deepEqual(calls.filter((x) => x.type === 'result').map((x) => x.text), ['42']);
      assert.ok((await wsInterp.listCodeContexts()).some((l) => l.id === c.id), 'listed');
      await wsInterp.deleteCodeContext(c.id);
      // Over the socket the SDK turns any refused stream into a plain Error with the body.
      const err = await rejects(() => wsInterp.runCodeStream(c.id, '1', undefined, {}));
      const m = /^Stream error: 404 - (.*)$/s.exec(err.message);
      assert.ok(m, `message ${err.message}`);
      assert.deepEqual(JSON.parse(m[1]), { code: 'CONTEXT_NOT_FOUND', error: `Context ${c.id} not found`, details: { contextId: c.id } });
    });
    await check('websocket transport: concurrent requests on one socket', async () => {
      await wsClient.utils.ping(); // connected before the burst (no connect-time fallback)
      assert.ok(wsClient.transport.isConnected(), 'the socket is connected');
      const flag = path.join(ws, 'ws-flag');
      // The first can only finish once the second ran.
      const waiting = wsClient.commands.execute(`until [ -f '${flag}' ]; do sleep 0.02; done; echo released`, 'compat-ws-a');
      const results = await Promise.all([
        waiting,
        wsClient.commands.execute(`touch '${flag}'; echo touched`, 'compat-ws-b'),
        ...[1, 2, 3].map((n) => wsClient.commands.execute(`echo n${n}`, `compat-ws-${n}`))
      ]);
      assert.deepEqual(results.map((r) => r.stdout), ['released', 'touched', 'n1', 'n2', 'n3']);
    });
    wsClient.disconnect();
  }

  await check('agent still alive after the run', async () => {
    assert.equal(agent.exitCode, null, `agent exited: ${oneLine(agentStderr)}`);
    assert.equal(await utils.getVersion(), 'compat-test-9.9.9');
  });

  clearTimeout(watchdog);
  return finish(failed === 0 ? 0 : 1);
}

main().catch((err) => {
  console.log(`not ok - run: ${describeError(err)}`);
  failed++;
  finish(1);
});
