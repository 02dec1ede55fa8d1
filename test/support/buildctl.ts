import { copyFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execOk } from './exec.js';
import type { Testbed } from './testbed.js';

export interface DockerfileBuild {
  /** Dockerfile text; the line `#CA` is replaced by steps that trust the host's CA, if it has one */
  readonly dockerfile: string;
  /** a buildctl --output value */
  readonly output: string;
  /** the Dockerfile stage to build (default: the last one) */
  readonly target?: string;
}

export interface BuildResult {
  readonly progress: string;
  readonly metadata: Record<string, unknown>;
}

/**
 * Steps that make a Debian-based image trust the host's TLS-intercepting proxy (if any), so that
 * `pip install` can reach PyPI from inside a build on such a machine. Empty when there is no such CA.
 */
function caSteps(tb: Testbed): string {
  if (!tb.caCert) return '';
  return [
    'COPY host-ca.crt /usr/local/share/ca-certificates/testbed-host-ca.crt',
    'RUN cat /usr/local/share/ca-certificates/testbed-host-ca.crt >> /etc/ssl/certs/ca-certificates.crt',
    'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt',
  ].join('\n');
}

/** Builds a Dockerfile with `buildctl` and BuildKit's Dockerfile frontend on the test bed. */
export async function buildctlDockerfile(tb: Testbed, build: DockerfileBuild): Promise<BuildResult> {
  const context = await mkdtemp(join(tmpdir(), 'cogts-buildctl-'));
  await writeFile(join(context, 'Dockerfile'), build.dockerfile.replace(/^#CA$/m, caSteps(tb)));
  if (tb.caCert) await copyFile(tb.caCert, join(context, 'host-ca.crt'));
  const metadataFile = join(await mkdtemp(join(tmpdir(), 'cogts-buildctl-meta-')), 'metadata.json');
  const result = await execOk(
    'buildctl',
    [
      'build',
      '--progress=plain',
      '--frontend=dockerfile.v0',
      `--local=context=${context}`,
      `--local=dockerfile=${context}`,
      ...(build.target ? ['--opt', `target=${build.target}`] : []),
      '--output',
      build.output,
      '--metadata-file',
      metadataFile,
    ],
    { env: tb.env },
  );
  // buildctl writes the metadata file only when the exporter reports something (not for type=local)
  const metadataText = await readFile(metadataFile, 'utf8').catch(() => '{}');
  const metadata = JSON.parse(metadataText) as Record<string, unknown>;
  return { progress: result.stderr, metadata };
}
