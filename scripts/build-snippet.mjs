// Builds the browser snippet: static/replayd/*.js + @rrweb/record → static/replayd.js (one minified
// IIFE that sets window.replayd). The compression worker (static/replayd/worker.js) is built first:
// its minified source is inlined in the snippet (started from a blob: URL) and written as
// replayd-worker.js too (for pages whose CSP refuses blob: workers: the `workerUrl` option).
// Also writes replayd.core.js (rrweb stubbed out) when --core is given, to measure our own code.
// Usage: node scripts/build-snippet.mjs [--outdir DIR] [--core]
import { build } from 'esbuild';
import { mkdirSync, writeFileSync } from 'node:fs';
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

const worker = await build({ ...common, entryPoints: [join(root, 'static/replayd/worker.js')], write: false,
  outfile: join(outdir, 'replayd-worker.js') });
const workerCode = worker.outputFiles[0].text;
writeFileSync(join(outdir, 'replayd-worker.js'), workerCode);

// `import code from 'replayd-worker-code'`: the worker's source as a string.
const inlineWorker = {
  name: 'inline-worker',
  setup(b) {
    b.onResolve({ filter: /^replayd-worker-code$/ }, () => ({ path: 'worker-code', namespace: 'worker' }));
    b.onLoad({ filter: /.*/, namespace: 'worker' }, () => ({ contents: `export default ${JSON.stringify(workerCode.trim())}` }));
  },
};

await build({ ...common, outfile: join(outdir, 'replayd.js'), plugins: [inlineWorker] });
if (args.includes('--core')) {
  await build({ ...common, outfile: join(outdir, 'replayd.core.js'), plugins: [inlineWorker, stubRrweb] });
}
