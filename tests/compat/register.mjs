// Installs ./loader-hooks.mjs. Use either
//   node --import ./register.mjs some-script.mjs
// or `await import('./register.mjs')` before dynamically importing
// '@cloudflare/sandbox' (run.mjs does the latter).
import { register } from 'node:module';

register('./loader-hooks.mjs', import.meta.url);
