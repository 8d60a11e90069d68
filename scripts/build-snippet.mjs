// Builds the browser snippet: static/replayd/*.js + @rrweb/record → static/replayd.js (one minified
// IIFE that sets window.replayd), and static/replayd/worker.js → replayd-worker.js, the snippet's
// worker as a file (for pages whose CSP refuses blob: workers: the `workerUrl` option).
// Also writes replayd.core.js (rrweb stubbed out) when --core is given, to measure our own code.
// Usage: node scripts/build-snippet.mjs [--outdir DIR] [--core]
import { build } from 'esbuild';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const at = args.indexOf('--outdir');
const outdir = at >= 0 ? resolve(args[at + 1]) : join(root, 'static');
mkdirSync(outdir, { recursive: true });

const common = {
  entryPoints: [join(root, 'static/replayd/index.js')],
  bundle: true,
  format: 'iife',
  minify: true,
  target: ['es2019'],
  legalComments: 'none',
  charset: 'utf8',
  logLevel: 'warning',
  absWorkingDir: root,
};

// @rrweb/record replaced by an empty recorder: what is left is our own code.
const stubRrweb = {
  name: 'stub-rrweb',
  setup(b) {
    b.onResolve({ filter: /^@rrweb\/record$/ }, () => ({ path: 'rrweb-stub', namespace: 'stub' }));
    b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({ contents: 'export function record() {}' }));
  },
};

// The worker as a file of its own (the snippet starts its own copy from the same functions).
await build({ ...common, format: 'esm', entryPoints: [join(root, 'static/replayd/worker.js')],
  outfile: join(outdir, 'replayd-worker.js') });

await build({ ...common, outfile: join(outdir, 'replayd.js') });
if (args.includes('--core')) {
  await build({ ...common, outfile: join(outdir, 'replayd.core.js'), plugins: [stubRrweb] });
}
