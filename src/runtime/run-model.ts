/**
 * Runs a model once without Docker: a BuildKit exec on the image starts the Cog server, waits for
 * READY, POSTs one request read from a client directory (so inputs of any size stream over the
 * session), and leaves the server's answers in a small filesystem the caller reads back.
 */
import type { Gateway, OciImageConfig } from '../buildkit/gateway.js';
import { CogError } from '../errors.js';
import { type State, image, local, normalizeImageRef } from '../llb/index.js';
import { type SmokeReport, smokeTest } from './smoke.js';

/** The name under which the session serves the directory holding request.json. */
export const inputDirName = 'cog-input';

export interface RunOnceOptions {
  readonly mode: 'predict' | 'train';
  /** seconds to wait for setup */
  readonly setupTimeout: number;
  /** `-e NAME=VALUE` */
  readonly env: Readonly<Record<string, string>>;
  readonly platform?: { readonly OS: string; readonly Architecture: string };
}

export async function runOnce(
  gw: Gateway,
  model: State,
  options: RunOnceOptions,
): Promise<{ report: SmokeReport; ref: string }> {
  const probe = smokeTest(model, {
    mode: options.mode,
    setupTimeout: options.setupTimeout,
    env: options.env,
    inputFrom: local(inputDirName, { name: 'load the inputs' }),
    name: options.mode === 'train' ? 'run the model: /trainings' : 'run the model: /predictions',
  });
  const id = await gw.solve(
    probe.marshal(options.platform ? { platform: options.platform } : {}).definition,
    { evaluate: true },
  );
  const report = JSON.parse((await gw.readFile(id, '/smoke.json')).toString('utf8')) as SmokeReport;
  return { report, ref: id };
}

export interface ResolvedModelImage {
  readonly state: State;
  readonly config: OciImageConfig;
  /** the OpenAPI schema from the run.cog.openapi_schema label, when the image has one */
  readonly schema: unknown;
}

/** An image by reference, resolved through the daemon (its mirrors and the session's credentials). */
export async function resolveModelImage(gw: Gateway, ref: string): Promise<ResolvedModelImage> {
  const normalized = normalizeImageRef(ref);
  const resolved = await gw.resolveImageConfig(normalized);
  const labels = resolved.config.config?.Labels ?? {};
  if (!labels['run.cog.config'] && !labels['org.cogmodel.config']) {
    throw new CogError(`${ref} does not appear to be a Cog model (it has no run.cog.config label)`, {
      hint: 'build it with `cog build`, or run a model image',
    });
  }
  let schema: unknown;
  if (labels['run.cog.openapi_schema']) {
    try {
      schema = JSON.parse(labels['run.cog.openapi_schema']);
    } catch {
      schema = undefined;
    }
  }
  const state = image(`${normalized}@${resolved.digest}`, { config: resolved.config.config ?? {} }).withCwd(
    resolved.config.config?.WorkingDir || '/src',
  );
  return { state, config: resolved.config, schema };
}

/** Why a run did not produce an answer, as a user-facing error; undefined when it did. */
export function runFailure(report: SmokeReport): CogError | undefined {
  const status = report.health?.status;
  if (status === 'SETUP_FAILED') {
    return new CogError('Model setup failed', {
      hint: report.health?.setup?.logs?.trim() || 'the model’s setup() raised an error',
    });
  }
  if (status !== 'READY') {
    return new CogError(
      `the model did not become ready (${report.error ?? `status ${status ?? 'unknown'}`})`,
      { hint: report.health?.setup?.logs?.trim() || 'see the server output above' },
    );
  }
  if (!report.prediction) return new CogError('the model server gave no answer to the request');
  return undefined;
}
