'use strict';
// JavaScript/TypeScript executor of the agent's code interpreter (protocol: README.md in this
// directory). The agent runs it as `node -e "<this source>" -- javascript|typescript` with
// fd 0 = /dev/null, fds 1/2 = the user's stdout/stderr pipes, fd 3 = requests (JSON lines in),
// fd 4 = events (JSON lines out). Node built-ins only; acorn (for REPL-style declarations) and
// TypeScript (for typescript) are loaded from the Debian packages when present.

const fs = require('fs');
const net = require('net');
const path = require('path');
const util = require('util');
const vm = require('vm');
const Module = require('module');
const { Writable } = require('stream');
const { Console } = require('console');

const LANGUAGE = process.argv[1] === 'typescript' ? 'typescript' : 'javascript';

// Children the user starts must not inherit the protocol pipes (a background process holding
// fd 4 would keep the agent from seeing the executor's end). Node cannot set close-on-exec on
// an inherited descriptor, but what it opens itself has it: each pipe is reopened through /proc
// and the inherited number closed. Where that fails, the inherited descriptor is used as it is.
function reopen(fd, flags) {
  try {
    // A non-blocking open first: it fails instead of waiting when the pipe has no other end.
    fs.closeSync(fs.openSync(`/proc/self/fd/${fd}`, flags | fs.constants.O_NONBLOCK));
    const again = fs.openSync(`/proc/self/fd/${fd}`, flags);
    fs.closeSync(fd);
    return again;
  } catch {
    return fd;
  }
}
const REQ_FD = reopen(3, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
const EVT_FD = reopen(4, fs.constants.O_WRONLY);

// ---------------------------------------------------------------------------------------------
// Synchronous output. Everything written to fds 1/2 must be in the pipes before the event that
// follows it, so console, process.stdout and process.stderr all write synchronously.

const pauseCell = new Int32Array(new SharedArrayBuffer(4));

function writeAll(fd, data) {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (err) {
      // A pipe someone made non-blocking: wait a millisecond and write the rest.
      if (err.code !== 'EAGAIN' && err.code !== 'EINTR') throw err;
      Atomics.wait(pauseCell, 0, 0, 1);
    }
  }
}

function syncStream(fd) {
  const stream = new Writable({
    write(chunk, encoding, callback) {
      try {
        writeAll(fd, chunk);
      } catch {
        // The reader is gone: the output has nowhere to go.
      }
      callback();
    },
  });
  stream.fd = fd; // lets child_process take it as stdio
  stream.isTTY = false;
  return stream;
}

// process.stdout/stderr of Node would be asynchronous pipe streams (and make the pipes, shared
// with the user's children, non-blocking): both are replaced by synchronous ones.
const stdout = syncStream(1);
const stderr = syncStream(2);
for (const [name, stream] of [['stdout', stdout], ['stderr', stderr]]) {
  try {
    Object.defineProperty(process, name, { configurable: true, enumerable: true, get: () => stream });
  } catch {
    // Kept as Node made it.
  }
}
const userConsole = new Console({ stdout, stderr, colorMode: false });

function emit(event) {
  emitLine(JSON.stringify(event));
}

function emitLine(line) {
  try {
    writeAll(EVT_FD, line + '\n');
  } catch {
    process.exit(0); // the agent is gone: nobody to report to
  }
}

// ---------------------------------------------------------------------------------------------
// The context the user's code runs in, kept for the executor's lifetime.

const sandbox = {
  console: userConsole,
  process,
  Buffer,
  require: undefined,
  setTimeout,
  clearTimeout,
  setInterval,
  clearInterval,
  setImmediate,
  clearImmediate,
  queueMicrotask,
  structuredClone,
  URL,
  URLSearchParams,
  TextEncoder,
  TextDecoder,
};
// For TypeScript compiled to CommonJS (imports and exports) and code written for modules.
sandbox.exports = {};
sandbox.module = { exports: sandbox.exports };
// Node's other web globals, read when used (reading fetch loads its implementation).
for (const name of ['fetch', 'Headers', 'Request', 'Response', 'FormData', 'AbortController',
  'AbortSignal', 'Blob', 'File', 'Event', 'EventTarget', 'CustomEvent', 'DOMException', 'atob',
  'btoa', 'performance', 'crypto', 'MessageChannel', 'MessagePort', 'MessageEvent',
  'BroadcastChannel', 'ReadableStream', 'WritableStream', 'TransformStream', 'TextEncoderStream',
  'TextDecoderStream', 'CompressionStream', 'DecompressionStream', 'WebSocket', 'navigator']) {
  if (!(name in globalThis) || name in sandbox) continue;
  Object.defineProperty(sandbox, name, {
    configurable: true,
    enumerable: false,
    get: () => globalThis[name],
    set(value) {
      Object.defineProperty(sandbox, name, { value, writable: true, configurable: true, enumerable: true });
    },
  });
}
const context = vm.createContext(sandbox, { name: 'sandbox' });
vm.runInContext('globalThis.global = globalThis;', context);

// require() resolves from the current directory, which a setup request may change: it is made
// again for a new directory, unless the user's code has put its own in its place.
let currentRequire;
let requireDir;
function refreshRequire() {
  const cwd = process.cwd();
  if (sandbox.require !== currentRequire || cwd === requireDir) return;
  requireDir = cwd;
  currentRequire = Module.createRequire(path.join(cwd, '__sandbox_repl__.js'));
  sandbox.require = currentRequire;
}

// import() in the user's code goes to Node's own loader, which resolves relative and bare
// specifiers from the current directory (Node >= 20.12; before that import() is unavailable).
const IMPORT_OPTION = vm.constants && vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER
  ? { importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER } : {};

// ---------------------------------------------------------------------------------------------
// REPL-style rewriting. A script's top-level let/const/class stay in the context's script scope
// and cannot be declared again by a later run, and top-level await needs an async function.
// So top-level declarations become assignments to global variables (declared by a `var`
// prelude run first), and code with top-level await runs inside `(async () => { ... })()`.
// The rewriting keeps the code's line structure, so that stack traces point at the right lines.

let acorn; // undefined: not tried yet; null: not installed
function loadAcorn() {
  if (acorn === undefined) {
    acorn = null;
    for (const id of ['/usr/share/nodejs/acorn', 'acorn']) {
      try {
        acorn = require(id);
        break;
      } catch {
        // Next candidate.
      }
    }
  }
  return acorn;
}

const FUNCTION_TYPES = new Set(['FunctionDeclaration', 'FunctionExpression', 'ArrowFunctionExpression']);
const DECLARATION_KINDS = new Set(['var', 'let', 'const']);

function childNodes(node) {
  const out = [];
  for (const key of Object.keys(node)) {
    const value = node[key];
    if (Array.isArray(value)) {
      for (const item of value) if (item && typeof item.type === 'string') out.push(item);
    } else if (value && typeof value.type === 'string') {
      out.push(value);
    }
  }
  return out;
}

function hasTopLevelAwait(node) {
  if (FUNCTION_TYPES.has(node.type)) return false;
  if (node.type === 'AwaitExpression' || (node.type === 'ForOfStatement' && node.await)) return true;
  return childNodes(node).some(hasTopLevelAwait);
}

function collectNames(pattern, names) {
  if (!pattern) return;
  switch (pattern.type) {
    case 'Identifier': names.add(pattern.name); break;
    case 'ObjectPattern':
      for (const prop of pattern.properties) collectNames(prop.type === 'RestElement' ? prop.argument : prop.value, names);
      break;
    case 'ArrayPattern': for (const element of pattern.elements) collectNames(element, names); break;
    case 'AssignmentPattern': collectNames(pattern.left, names); break;
    case 'RestElement': collectNames(pattern.argument, names); break;
    default: break;
  }
}

// Returns { names, source, isAsync }: the global names to declare, the code to run, and
// whether it evaluates to a promise (async wrapper) rather than to the value itself.
function prepare(code) {
  // Code that cannot declare anything or await (no such word in it at all) runs as it is:
  // parsing it would change nothing.
  if (!/\b(?:const|let|var|function|class|await|async)\b/.test(code)) {
    return { names: [], source: code, isAsync: false };
  }
  const parser = loadAcorn();
  let program = null;
  if (parser) {
    try {
      program = parser.parse(code, {
        ecmaVersion: 'latest',
        sourceType: 'script',
        allowAwaitOutsideFunction: true,
        allowReturnOutsideFunction: false,
        allowHashBang: true,
      });
    } catch {
      program = null;
    }
  }
  if (!program) {
    // Without acorn, or for code it rejects, the code runs unchanged as a plain script: V8
    // reports the syntax error if there is one. Such code has no top-level await, and its
    // top-level let/const/class cannot be declared again in a later run.
    return { names: [], source: code, isAsync: false };
  }

  const edits = [];
  const names = new Set();
  const functions = [];
  const put = (start, end, text) => edits.push({ start, end, text, seq: edits.length });
  const newlinesOf = (start, end) => code.slice(start, end).replace(/[^\n]/g, '');

  // `kind a = 1, {b} = o;` -> `{(a = 1, {b} = o);}`; a block, so that it is still one statement
  // where one is expected (`if (c) var a = 1;`). In a for head only the keyword goes.
  function declaration(decl, inForHead) {
    for (const d of decl.declarations) collectNames(d.id, names);
    const keywordEnd = decl.start + decl.kind.length;
    if (inForHead) {
      put(decl.start, keywordEnd, '');
      return;
    }
    put(decl.start, keywordEnd, '{(');
    for (const d of decl.declarations) {
      if (!d.init && decl.kind !== 'var') put(d.end, d.end, ' = void 0');
    }
    const last = decl.declarations[decl.declarations.length - 1];
    put(last.end, decl.end, ');}' + newlinesOf(last.end, decl.end));
  }

  // `var` anywhere outside functions is the script's: found through blocks, loops, if, try...
  function nestedVars(node) {
    if (!node) return;
    switch (node.type) {
      case 'VariableDeclaration':
        if (node.kind === 'var') declaration(node, false);
        break;
      case 'BlockStatement': node.body.forEach(nestedVars); break;
      case 'IfStatement': nestedVars(node.consequent); nestedVars(node.alternate); break;
      case 'ForStatement':
        if (node.init && node.init.type === 'VariableDeclaration' && node.init.kind === 'var') declaration(node.init, true);
        nestedVars(node.body);
        break;
      case 'ForInStatement':
      case 'ForOfStatement':
        if (node.left.type === 'VariableDeclaration' && node.left.kind === 'var') declaration(node.left, true);
        nestedVars(node.body);
        break;
      case 'WhileStatement':
      case 'DoWhileStatement':
      case 'LabeledStatement':
      case 'WithStatement':
        nestedVars(node.body);
        break;
      case 'TryStatement':
        nestedVars(node.block);
        if (node.handler) nestedVars(node.handler.body);
        nestedVars(node.finalizer);
        break;
      case 'SwitchStatement': for (const c of node.cases) c.consequent.forEach(nestedVars); break;
      default: break;
    }
  }

  const body = program.body;
  for (const stmt of body) {
    if (stmt.type === 'VariableDeclaration' && DECLARATION_KINDS.has(stmt.kind)) {
      declaration(stmt, false);
    } else if (stmt.type === 'ClassDeclaration') {
      names.add(stmt.id.name);
      put(stmt.start, stmt.start, `{${stmt.id.name} = `);
      put(stmt.end, stmt.end, ';}');
    } else if (stmt.type === 'FunctionDeclaration') {
      // Left in place: in a script it already makes a global, and it keeps its hoisting.
      names.add(stmt.id.name);
      functions.push(stmt.id.name);
    } else {
      nestedVars(stmt);
    }
  }

  const isAsync = hasTopLevelAwait(program);
  const last = body[body.length - 1];
  const lastIsExpression = last !== undefined && last.type === 'ExpressionStatement';
  let source;
  if (isAsync) {
    if (code.startsWith('#!')) {
      const eol = code.indexOf('\n');
      put(0, eol === -1 ? code.length : eol, '');
    }
    // Function declarations are hoisted inside the wrapper: they are published as globals
    // first thing (after a "use strict" prologue, which must stay first).
    let at = 0;
    for (const stmt of body) {
      if (stmt.type !== 'ExpressionStatement' || stmt.directive === undefined) break;
      at = stmt.end;
    }
    if (functions.length) {
      put(at, at, ';' + functions.map((f) => `globalThis[${JSON.stringify(f)}] = ${f};`).join(' '));
    }
    if (lastIsExpression) {
      put(last.expression.start, last.expression.start, 'return (');
      put(last.expression.end, last.expression.end, ')');
    }
    source = `(async () => {${applyEdits(code, edits)}\n})()`;
  } else {
    source = applyEdits(code, edits);
    // The run's value is that of a final expression statement only.
    if (body.length && !lastIsExpression) source += '\n;void 0';
  }
  return { names: [...names], source, isAsync };
}

function applyEdits(code, edits) {
  // By position; at one position insertions come before a replacement, then in order made.
  const rank = (e) => (e.start === e.end ? 0 : 1);
  edits.sort((a, b) => a.start - b.start || rank(a) - rank(b) || a.seq - b.seq);
  let out = '';
  let pos = 0;
  for (const e of edits) {
    out += code.slice(pos, e.start) + e.text;
    pos = Math.max(pos, e.end);
  }
  return out + code.slice(pos);
}

function declareGlobals(names) {
  try {
    vm.runInContext(`var ${names.join(', ')};`, context);
  } catch {
    // A name already bound by a top-level let/const of an unrewritten run: the assignments
    // will reach that binding instead.
  }
}

// ---------------------------------------------------------------------------------------------
// TypeScript: each run is transpiled to JavaScript (types stripped, not checked), then runs
// like JavaScript. CommonJS output turns imports into require() and adds nothing to plain code.

let ts = null;
function loadTypeScript() {
  for (const id of ['/usr/share/nodejs/typescript', 'typescript']) {
    try {
      return require(id);
    } catch {
      // Next candidate.
    }
  }
  return null;
}

function transpile(code, count) {
  if (!ts) return { error: 'TypeScript is not installed (Debian package node-typescript)' };
  const fileName = `cell-${count}.ts`;
  const out = ts.transpileModule(code, {
    fileName,
    reportDiagnostics: true,
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.CommonJS,
      esModuleInterop: true,
      sourceMap: false,
      inlineSourceMap: false,
      removeComments: false,
    },
  });
  const errors = (out.diagnostics || []).filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length) {
    const messages = errors.map((d) => {
      const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
      let where = fileName;
      if (d.file && typeof d.start === 'number') {
        const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
        where += `(${line + 1},${character + 1})`;
      }
      return `${where}: error TS${d.code}: ${text}`;
    });
    return { error: messages.join('\n') };
  }
  return { js: out.outputText };
}

// ---------------------------------------------------------------------------------------------
// Results and errors

function emitValue(value) {
  if (value === undefined) return;
  if (value !== null && typeof value === 'object' && !isOpaqueObject(value)) {
    let json;
    try {
      json = JSON.stringify(value);
    } catch {
      json = undefined; // circular, BigInt...
    }
    if (typeof json === 'string') {
      emitLine(`{"type":"result","json":${json},"metadata":{}}`);
      return;
    }
  }
  emit({ type: 'result', text: util.inspect(value), metadata: {} });
}

// Objects whose JSON says nothing of them (a Map is {}), shown with util.inspect instead.
function isOpaqueObject(value) {
  const t = util.types;
  return t.isMap(value) || t.isSet(value) || t.isWeakMap(value) || t.isWeakSet(value)
    || t.isPromise(value) || t.isDate(value) || t.isRegExp(value) || t.isNativeError(value)
    || t.isAnyArrayBuffer(value) || t.isArrayBufferView(value) || t.isBoxedPrimitive(value)
    || t.isGeneratorObject(value) || t.isMapIterator(value) || t.isSetIterator(value);
}

function interruptedError() {
  const err = new Error('Execution interrupted');
  err.name = 'KeyboardInterrupt';
  err.stack = 'KeyboardInterrupt: Execution interrupted';
  return err;
}

const isExecutorFrame = (line) => /\[eval\]|node:vm:|node:internal\/vm/.test(line);
const isPlumbingFrame = (line) => /node:internal\/(process|timers)[/:]/.test(line);

// The stack without the executor's frames (they come below the user's) nor the event loop's.
function userStack(stack) {
  const lines = [];
  for (const line of String(stack).split('\n')) {
    const frame = /^\s+at /.test(line);
    if (frame && isExecutorFrame(line)) break;
    lines.push(line);
  }
  while (lines.length > 1 && /^\s+at /.test(lines[lines.length - 1]) && isPlumbingFrame(lines[lines.length - 1])) lines.pop();
  return lines;
}

function safely(read, fallback) {
  try {
    return read();
  } catch {
    return fallback;
  }
}

function describeError(err) {
  if (safely(() => err.code, undefined) === 'ERR_SCRIPT_EXECUTION_INTERRUPTED') err = interruptedError();
  const isObject = err !== null && (typeof err === 'object' || typeof err === 'function');
  if (!isObject) {
    const text = typeof err === 'string' ? err : util.inspect(err);
    return { ename: 'Error', evalue: text, traceback: [`Uncaught ${util.inspect(err)}`] };
  }
  const name = safely(() => err.name, undefined);
  const message = safely(() => err.message, undefined);
  const stack = safely(() => err.stack, undefined);
  const ename = name ? String(name) : 'Error';
  let evalue;
  if (typeof message === 'string' && message) evalue = message;
  else if (typeof stack === 'string') evalue = safely(() => String(err), ename);
  else evalue = safely(() => util.inspect(err), ename);
  const traceback = typeof stack === 'string' ? userStack(stack) : [`Uncaught ${evalue}`];
  return { ename, evalue, traceback };
}

function reportError(err) {
  const { ename, evalue, traceback } = describeError(err);
  try {
    writeAll(2, traceback.join('\n') + '\n');
  } catch {
    // stderr is gone.
  }
  emit({ type: 'error', ename, evalue, traceback });
}

// ---------------------------------------------------------------------------------------------
// Running code

let executionCount = 0;
let interrupt = null; // set while a run awaits a promise: SIGINT rejects it

function onSigint() {
  // Between runs SIGINT is ignored; synchronous code is stopped by vm's breakOnSigint.
  if (interrupt) interrupt();
}
function onUncaughtException(err) {
  // A timer or callback of an earlier run threw: reported on stderr, the executor lives on.
  safely(() => writeAll(2, `Uncaught ${describeError(err).traceback.join('\n').replace(/^Uncaught /, '')}\n`));
}
function onUnhandledRejection(reason) {
  safely(() => writeAll(2, `Unhandled promise rejection: ${describeError(reason).traceback.join('\n').replace(/^Uncaught /, '')}\n`));
}
function installProcessHandlers() {
  // Again before each run, in case the user's code removed them.
  for (const [event, handler] of [['SIGINT', onSigint], ['uncaughtException', onUncaughtException],
    ['unhandledRejection', onUnhandledRejection]]) {
    if (!process.listeners(event).includes(handler)) process.on(event, handler);
  }
}

function interruptible(promise) {
  return new Promise((resolve, reject) => {
    interrupt = () => reject(interruptedError());
    Promise.resolve(promise).then(resolve, reject);
  }).finally(() => {
    interrupt = null;
  });
}

async function run(code) {
  const count = ++executionCount;
  const filename = `<cell-${count}>`;
  try {
    installProcessHandlers();
    refreshRequire();
    let js = code;
    if (LANGUAGE === 'typescript') {
      const out = transpile(code, count);
      if (out.error !== undefined) {
        safely(() => writeAll(2, `TypeScript compilation error: ${out.error}\n`));
        emit({ type: 'error', ename: 'TranspileError', evalue: out.error, traceback: [] });
        return;
      }
      js = out.js;
    }
    const prepared = prepare(js);
    if (prepared.names.length) declareGlobals(prepared.names);
    const script = new vm.Script(prepared.source, { filename, ...IMPORT_OPTION });
    let value = script.runInContext(context, { breakOnSigint: true, displayErrors: false });
    if (prepared.isAsync) value = await interruptible(value);
    emitValue(value);
  } catch (err) {
    reportError(err);
  } finally {
    emit({ type: 'done', execution_count: count });
  }
}

function setup(request) {
  const { cwd, env } = request;
  if (env && typeof env === 'object') {
    for (const [key, value] of Object.entries(env)) {
      if (value === null) delete process.env[key];
      else process.env[key] = String(value);
    }
  }
  if (cwd) {
    try {
      process.chdir(String(cwd));
    } catch (err) {
      emit({ type: 'error', ename: 'SetupError', evalue: err.message, traceback: [] });
    }
  }
  emit({ type: 'done' });
}

function protocolError(message) {
  emit({ type: 'error', ename: 'ProtocolError', evalue: message, traceback: [] });
  emit({ type: 'done' });
}

async function handle(line) {
  let request;
  try {
    request = JSON.parse(line);
  } catch (err) {
    protocolError(`bad request: ${err.message}`);
    return;
  }
  const op = request !== null && typeof request === 'object' ? request.op : undefined;
  if (op === 'run') await run(typeof request.code === 'string' ? request.code : '');
  else if (op === 'setup') setup(request);
  else if (op === 'exit') process.exit(0);
  else protocolError(`unknown op: ${JSON.stringify(op)}`);
}

// Requests are handled one at a time, in order; the executor ends at EOF on fd 3.
const queue = [];
let busy = false;
let ended = false;

async function pump() {
  if (busy) return;
  busy = true;
  try {
    while (queue.length) await handle(queue.shift());
  } finally {
    busy = false;
  }
  if (ended) process.exit(0);
}

function readRequests() {
  let input;
  try {
    input = new net.Socket({ fd: REQ_FD, readable: true, writable: false });
  } catch {
    input = fs.createReadStream(null, { fd: REQ_FD, autoClose: false }); // not a pipe
  }
  let partial = [];
  input.on('data', (chunk) => {
    let start = 0;
    let nl;
    while ((nl = chunk.indexOf(10, start)) !== -1) {
      partial.push(chunk.subarray(start, nl));
      const line = Buffer.concat(partial).toString('utf8');
      partial = [];
      if (line.trim()) queue.push(line);
      start = nl + 1;
    }
    if (start < chunk.length) partial.push(Buffer.from(chunk.subarray(start)));
    pump();
  });
  const finish = () => {
    const line = Buffer.concat(partial).toString('utf8');
    partial = [];
    if (line.trim()) queue.push(line);
    ended = true;
    pump();
  };
  input.on('end', finish);
  input.on('error', finish);
}

installProcessHandlers();
if (LANGUAGE === 'typescript') ts = loadTypeScript();
readRequests();
emit({ type: 'ready' });
setImmediate(loadAcorn); // while idle, so that the first run does not wait for it
