/**
 * The push benchmark's child (push-bench.ts): `node push-child.js LAYOUT REF` pushes the only image of the
 * OCI layout LAYOUT to REF with our registry client and prints `{"seconds","peakRssMb"}`: the push's time
 * and this whole process's peak RSS (VmHWM). A process of its own, loading only the registry client, so that the
 * RSS is what a push costs.
 */
import { readFileSync } from 'node:fs';
import { RegistryClient, parseReference, pushFromLayout } from '../registry/index.js';

/**
 * Peak RSS of this process image: VmHWM, not getrusage's maxrss, which on Linux also counts the parent's
 * pages this process had between fork and exec.
 */
function peakRssMb(): number {
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return hwm?.[1] ? Number(hwm[1]) / 1024 : process.resourceUsage().maxRSS / 1024;
}

const [layout, ref] = process.argv.slice(2);
if (!layout || !ref) {
  console.error('usage: push-child.js LAYOUT REF');
  process.exit(2);
}
const client = new RegistryClient();
const start = performance.now();
try {
  await pushFromLayout(client, layout, undefined, parseReference(ref));
} finally {
  await client.close();
}
const seconds = (performance.now() - start) / 1000;
console.log(JSON.stringify({ seconds, peakRssMb: peakRssMb() }));
