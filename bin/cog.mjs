// What bin/cog runs with Node: the built CLI. `npm run build` (or `npm test`) produces dist/: the bundle
// dist/cog.mjs (fast to load), else the per-module output.
import { existsSync } from 'node:fs';
import process from 'node:process';
import { URL, fileURLToPath } from 'node:url';

const bundle = fileURLToPath(new URL('../dist/cog.mjs', import.meta.url));
const modules = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const entry = existsSync(bundle) ? bundle : modules;
if (!existsSync(entry)) {
  process.stderr.write(
    `cog: the CLI is not built (${modules} is missing)\nhint: run \`npm ci && npm run build\` in the cog-ts checkout\n`,
  );
  process.exit(1);
}
// bin/cog held NODE_EXTRA_CA_CERTS back from Node's start-up (see there); the processes cog starts
// (credential helpers, git, …) get it as it was set
const heldBack = process.env.COG_NODE_EXTRA_CA_CERTS;
if (heldBack && !process.env.NODE_EXTRA_CA_CERTS) process.env.NODE_EXTRA_CA_CERTS = heldBack;
// output piped into a command that stops reading (`cog image ls | head -1`): end quietly, not with an
// unhandled EPIPE, and with the status of a process SIGPIPE ended (128 + 13), as Go's docker, crane and
// buildx end: whatever the command was doing is not done (`cog push 2>&1 | head -1` pushed nothing and
// exited 0), and under `set -o pipefail` a script sees it
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode || 141);
    // output that cannot be written (`> /dev/full`, a full disk): said once on stderr, exit 1, no stack
    const name = stream === process.stdout ? 'standard output' : 'standard error';
    if (stream !== process.stderr)
      process.stderr.write(`cog: error: cannot write to ${name}: ${err.message}\n`);
    process.exit(1);
  });
const { main } = await import(entry);
process.exitCode = await main(process.argv.slice(2));
