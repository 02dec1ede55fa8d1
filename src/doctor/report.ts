/**
 * Running doctor's checks and printing what they found, in upstream's layout: a group header when the
 * group changes, one line per check (✔ passed, ⚠ warning, ✗ error), its findings indented under it,
 * and a summary. Colours only when colour is on; unlike upstream, the symbols stay without them.
 */
import type { Check, CheckResult, DoctorContext, Finding, Severity } from './checks.js';
import type { FileEdits } from './fixes.js';

export interface CheckOutcome {
  readonly check: Check;
  readonly result?: CheckResult;
  /** the check itself failed, or its fix refused (not a finding) */
  readonly error?: string;
  /** --fix applied this check's fix: its findings are resolved */
  readonly fixed?: boolean;
}

export interface RunOptions {
  /** --fix: apply the fixes of checks with findings */
  readonly fix?: boolean;
  /** writes a fix's edits to the project */
  readonly apply?: (edits: FileEdits) => Promise<void>;
}

/**
 * Runs the checks in order; a check that throws is an outcome with its error, the rest still run. With
 * --fix, a check with findings and a fix has it applied, and the checks after it see the project as
 * fixed (the context is made again).
 */
export async function runChecks(
  checks: readonly Check[],
  makeContext: () => DoctorContext,
  options: RunOptions = {},
): Promise<CheckOutcome[]> {
  const outcomes: CheckOutcome[] = [];
  let context = makeContext();
  for (const check of checks) {
    let result: CheckResult;
    try {
      result = await check.run(context);
    } catch (err) {
      outcomes.push({ check, error: err instanceof Error ? err.message : String(err) });
      continue;
    }
    if (options.fix && options.apply && check.fix && result.findings.length > 0) {
      try {
        await options.apply(check.fix(context, result.findings));
      } catch (err) {
        outcomes.push({ check, result, error: err instanceof Error ? err.message : String(err) });
        continue;
      }
      outcomes.push({ check, result, fixed: true });
      context = makeContext();
      continue;
    }
    outcomes.push({ check, result });
  }
  return outcomes;
}

const rank: Record<Severity, number> = { info: 0, warning: 1, error: 2 };

function worst(findings: readonly Finding[]): Severity | undefined {
  let found: Severity | undefined;
  for (const f of findings) if (found === undefined || rank[f.severity] > rank[found]) found = f.severity;
  return found;
}

export interface Tally {
  readonly errors: number;
  readonly warnings: number;
}

/** Errors and warnings found (a check that failed counts as one error). */
export function tally(outcomes: readonly CheckOutcome[]): Tally & { readonly fixed: number } {
  let errors = 0;
  let warnings = 0;
  let fixed = 0;
  for (const o of outcomes) {
    if (o.fixed) {
      fixed += (o.result?.findings ?? []).filter((f) => f.severity !== 'info').length;
      continue;
    }
    if (o.error !== undefined) {
      errors += 1;
      continue;
    }
    for (const f of o.result?.findings ?? []) {
      if (f.severity === 'error') errors += 1;
      else if (f.severity === 'warning') warnings += 1;
    }
  }
  return { errors, warnings, fixed };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export function findingLine(f: Finding): string {
  const where = f.file ? `${f.file}${f.line !== undefined ? `:${f.line}` : ''} — ` : '';
  return `  ${where}${f.message}`;
}

/** The report's text. `color`: ANSI colours as upstream; `fix`: the run was `--fix`. */
export function formatReport(outcomes: readonly CheckOutcome[], color: boolean, fix = false): string {
  // the symbols stay without colour: a CI log still tells a pass from a failure
  const paint = (code: string, symbol: string, text: string) =>
    color ? `\u001b[${code}m${symbol}\u001b[0m ${text}` : `${symbol} ${text}`;
  const line = {
    success: (t: string) => paint('1;32', ' ✔', t),
    warning: (t: string) => paint('1;33', ' ⚠', t),
    error: (t: string) => paint('1;31', ' ✗', t),
    info: (t: string) => (color ? `\u001b[2m${t}\u001b[0m` : t),
  };
  const out: string[] = [fix ? 'Running cog doctor --fix...' : 'Running cog doctor...', ''];
  let group: string | undefined;
  for (const o of outcomes) {
    const { check, result, error } = o;
    if (check.group !== group) {
      if (group !== undefined) out.push('');
      out.push(color ? `\u001b[1m${check.group}\u001b[0m` : check.group);
      group = check.group;
    }
    if (error !== undefined) {
      out.push(line.error(`${check.description}: ${error}`));
      continue;
    }
    const findings = result?.findings ?? [];
    if (o.fixed) {
      out.push(line.success(`Fixed: ${check.description}`));
      for (const f of findings) out.push(line.info(findingLine(f)));
      continue;
    }
    const severity = worst(findings);
    if (severity === undefined) {
      const note = result?.skipped
        ? ` (skipped: ${result.skipped})`
        : result?.detail
          ? ` (${result.detail})`
          : '';
      out.push(line.success(`${check.description}${note}`));
      continue;
    }
    // notes only: the check passed, the notes follow
    out.push(severity === 'info' ? line.success(check.description) : line[severity](check.description));
    for (const f of findings) {
      out.push(line.info(findingLine(f)));
      if (f.remediation) out.push(line.info(`    Remediation: ${f.remediation}`));
      if (fix && f.remediation && !check.fix) out.push(line.info('    (no auto-fix available)'));
    }
  }
  const { errors, warnings, fixed } = tally(outcomes);
  out.push('');
  if (fixed > 0) {
    const left = [
      ...(warnings > 0 ? [`${plural(warnings, 'warning')} remaining`] : []),
      ...(errors > 0 ? [`${plural(errors, 'unfixed error')}`] : []),
    ];
    out.push(line.success(`Fixed ${plural(fixed, 'issue')}${left.map((l) => `. ${l}`).join('')}.`));
  } else if (errors + warnings === 0) out.push(line.success('no issues found'));
  else
    out.push(
      `Found ${plural(errors, 'error')}, ${plural(warnings, 'warning')}.${!fix && outcomes.some((o) => o.check.fix && (o.result?.findings.length ?? 0) > 0) ? ' Run "cog doctor --fix" to auto-fix.' : ''}`,
    );
  return `${out.join('\n')}\n`;
}
