// Bundles the CLI: Node 20 loads one file several times faster than ~200 separate modules (measured:
// `cog --version` 0.55 s → 0.30 s), which matters for no-op builds. Three bundles:
//   dist/cog.mjs (+ dist/cog-chunks/): the entry and `cog build`'s up-to-date check, small and ESM; the
//     registry client it may need is split into a chunk loaded only then;
//   dist/cog-main.cjs: the whole CLI, CommonJS so that cli/code-cache.ts can load it with a V8 code
//     cache (Node 20 has none for ES modules); its dynamic imports become lazily run module bodies;
//   dist/cog-source.cjs: `cog build`'s source-only answer (cli/source-entry.ts), tried before the
//     whole CLI is loaded, with its own code cache: no yargs, no BuildKit client.
// Tests keep using the per-module dist/src/.
//
// COG_BUILD_ID, a hash of the compiled code, package.json and the lockfile, tells build records
// (src/build/build-record.ts) which cog-ts made them: a record from another build is never used.
import { createHash } from 'node:crypto';
import { readFile, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';

// `string-width` (yargs and cliui, two versions) compiles Unicode property regexes and an
// Intl.Segmenter when its module is evaluated: ~30 ms of every CLI start, for help and error layout
// that most runs never print. Each import of it gets a stand-in that evaluates the real module (the
// version that importer resolves to, unchanged) on the first call.
const lazyStringWidth = {
  name: 'lazy-string-width',
  setup(b) {
    b.onResolve({ filter: /^string-width$/ }, async (args) => {
      if (args.namespace === 'lazy-string-width') return undefined;
      const real = await b.resolve('string-width', {
        kind: args.kind,
        resolveDir: args.resolveDir,
        namespace: 'lazy-string-width',
      });
      if (real.errors.length > 0) return { errors: real.errors };
      return { path: real.path, namespace: 'lazy-string-width' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-string-width' }, (args) => ({
      resolveDir: dirname(args.path),
      loader: 'js',
      contents: [
        'let real;',
        'export default function stringWidth(text, options) {',
        `  real ??= require(${JSON.stringify(args.path)}).default;`,
        '  return real(text, options);',
        '}',
      ].join('\n'),
    }));
  },
};

async function buildId() {
  const hash = createHash('sha256');
  const files = (await readdir('dist/src', { recursive: true }))
    .filter((f) => f.endsWith('.js'))
    .map((f) => join('dist/src', f))
    .sort();
  for (const file of [...files, 'package.json', 'package-lock.json']) {
    hash.update(`${file}\0`);
    hash.update(await readFile(file));
  }
  return hash.digest('hex').slice(0, 32);
}

const id = await buildId();
await rm('dist/cog-chunks', { recursive: true, force: true });
await build({
  entryPoints: { cog: 'dist/src/cli/entry.js' },
  define: { COG_BUILD_ID: JSON.stringify(id) },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  chunkNames: 'cog-chunks/[name]-[hash]',
  splitting: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  // entry.ts imports main.js by a computed name when unbundled; the bundle loads cog-main.cjs instead
  logOverride: { 'unsupported-dynamic-import': 'silent' },
  // some CommonJS dependencies call require(); give each file of the bundle one
  banner: {
    js: "import { createRequire as __cogRequire } from 'node:module'; const require = __cogRequire(import.meta.url);",
  },
});
// the CommonJS bundles, each loaded with a V8 code cache: the whole CLI, and `cog build`'s source-only
// answer (cli/source-entry.ts), which entry.ts tries before loading the whole CLI
const cjsBundle = (entry, outfile) => ({
  entryPoints: [entry],
  define: { COG_BUILD_ID: JSON.stringify(id), 'import.meta.url': '__cogModuleUrl' },
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // import() of a bundled module becomes a lazily run module body, of a built-in a require()
  supported: { 'dynamic-import': false },
  // a third smaller to read and hash on every start; names stay, so stack traces still say where
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  plugins: [lazyStringWidth],
  banner: { js: "var __cogModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
});
await build(cjsBundle('dist/src/cli/main.js', 'dist/cog-main.cjs'));
await build(cjsBundle('dist/src/cli/source-entry.js', 'dist/cog-source.cjs'));
