// Minimal Node stand-in for the Workers-only module `cloudflare:workers`.
//
// @cloudflare/sandbox (and its dependency @cloudflare/containers) import a few
// names from `cloudflare:workers` at module scope. Only class *definitions*
// that extend them run at load time (e.g. `class Container extends
// DurableObject`, `class TunnelsRpcTarget extends RpcTarget`); none of them is
// instantiated by the route clients (SandboxClient, CommandClient, FileClient,
// UtilityClient, ...), which only use `fetch`. So plain empty base classes are
// enough. `tracing.enterSpan` is called by the RPC control path only; the stub
// runs the callback without a span, like the SDK's own fallback does.
//
// Every name imported anywhere in the installed SDK must be exported here,
// otherwise ESM linking fails with "does not provide an export named ...".

export class DurableObject {
  constructor(ctx, env) {
    this.ctx = ctx;
    this.env = env;
  }
}

export class WorkerEntrypoint {
  constructor(ctx, env) {
    this.ctx = ctx;
    this.env = env;
  }
}

export class WorkflowEntrypoint {
  constructor(ctx, env) {
    this.ctx = ctx;
    this.env = env;
  }
}

export class RpcTarget {}

export class RpcStub {
  constructor(value) {
    return value;
  }
}

export const tracing = {
  enterSpan(_name, fn, ...args) {
    // Real signature: enterSpan(name, callback(span, ...args), ...args).
    const span = { setAttribute() {}, setAttributes() {}, end() {} };
    return fn(span, ...args);
  }
};

export const env = {};

export function waitUntil(promise) {
  Promise.resolve(promise).catch(() => {});
}

export default { DurableObject, WorkerEntrypoint, WorkflowEntrypoint, RpcTarget, RpcStub, tracing, env, waitUntil };
