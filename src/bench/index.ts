/**
 * `npm run bench`: runs the benchmarks in turn, or some of them with BENCH=filesync|build|predict|push.
 *
 *   filesync  our FileSync client against buildctl sending the same large context (filesync-bench.ts)
 *   build     `cog build` against upstream Cog's Dockerfile: cold, no-op, source-only (build-bench.ts)
 *   predict   `cog run IMAGE` on hello, split into resolve, exec start, setup, predict (predict-bench.ts)
 *   push      our registry client against `crane push`, BuildKit's image push and a Go client sending
 *             the same chunks (push-bench.ts)
 */
const benches = {
  filesync: () => import('./filesync-bench.js'),
  build: () => import('./build-bench.js'),
  predict: () => import('./predict-bench.js'),
  push: () => import('./push-bench.js'),
} as const;

type Name = keyof typeof benches;

function isName(name: string): name is Name {
  return Object.hasOwn(benches, name);
}

const selected = (process.env.BENCH ?? 'filesync,build,predict,push')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
for (const name of selected) {
  if (!isName(name)) {
    console.error(`BENCH=${name}: unknown benchmark (one of: ${Object.keys(benches).join(', ')})`);
    process.exit(2);
  }
}
for (const name of selected as Name[]) {
  console.log(`\n=== bench: ${name}`);
  await benches[name]();
}
