// Node ESM loader hooks (registered by register.mjs through node:module's
// register()) that let the published @cloudflare/sandbox load under Node:
//
// 1. `cloudflare:workers` (a Workers runtime built-in) resolves to
//    ./cloudflare-workers-stub.mjs.
// 2. @cloudflare/containers ships ESM with extensionless relative imports
//    (`from './helpers'`) and no "type": "module" in its package.json — fine
//    for bundlers/wrangler, not for Node. A relative specifier without an
//    extension that Node cannot find is retried with `.js`, and .js files of
//    that package are loaded as ES modules.

const STUB_URL = new URL('./cloudflare-workers-stub.mjs', import.meta.url).href;
const CONTAINERS_DIR = '/node_modules/@cloudflare/containers/';

export async function resolve(specifier, context, nextResolve) {
  if (specifier === 'cloudflare:workers') {
    return { url: STUB_URL, format: 'module', shortCircuit: true };
  }
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    const relative = specifier.startsWith('./') || specifier.startsWith('../');
    const lastSegment = specifier.split('/').pop();
    if (
      error?.code === 'ERR_MODULE_NOT_FOUND' &&
      relative &&
      !lastSegment.includes('.') &&
      context.parentURL?.includes('/node_modules/')
    ) {
      return nextResolve(`${specifier}.js`, context);
    }
    throw error;
  }
}

export async function load(url, context, nextLoad) {
  if (url.startsWith('file:') && url.includes(CONTAINERS_DIR) && url.endsWith('.js')) {
    return nextLoad(url, { ...context, format: 'module' });
  }
  return nextLoad(url, context);
}
