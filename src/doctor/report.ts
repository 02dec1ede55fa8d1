/**
 * Running doctor's checks and printing what they found, in upstream's layout: a group header when the
 * group changes, one line per check (✔ passed, ⚠ warning, ✗ error), its findings indented under it,
 * and a summary. Colours only when colour is on; unlike upstream, the symbols stay without them.
 */
import type { Check, CheckResult, DoctorContext, Finding, Severity } from './checks.js';

export interface CheckOutcome {
  readonly check: Check;
  readonly result?: CheckResult;
  /** the check itself failed (not a finding) */
  readonly error?: string;
}

/** Runs the checks in order; a check that throws is an outcome with its error, the rest still run. */
export async function runChecks(checks: readonly Check[], context: DoctorContext): Promise<CheckOutcome[]> {
  const outcomes: CheckOutcome[] = [];
  for (const check of checks) {
    try {
      outcomes.push({ check, result: await check.run(context) });
    } catch (err) {
      outcomes.push({ check, error: err instanceof Error ? err.message : String(err) });
    }
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
export function tally(outcomes: readonly CheckOutcome[]): Tally {
  let errors = 0;
  let warnings = 0;
  for (const o of outcomes) {
    if (o.error !== undefined) errors += 1;
    for (const f of o.result?.findings ?? []) {
      if (f.severity === 'error') errors += 1;
      else if (f.severity === 'warning') warnings += 1;
    }
  }
  return { errors, warnings };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export function findingLine(f: Finding): string {
  const where = f.file ? `${f.file}${f.line !== undefined ? `:${f.line}` : ''} — ` : '';
  return `  ${where}${f.message}`;
}

/** The report's text. `color`: ANSI symbols and colours as upstream; without, plain lines. */
export function formatReport(outcomes: readonly CheckOutcome[], color: boolean): string {
  // the symbols stay without colour: a CI log still tells a pass from a failure
  const paint = (code: string, symbol: string, text: string) =>
    color ? `\u001b[${code}m${symbol}\u001b[0m ${text}` : `${symbol} ${text}`;
  const line = {
    success: (t: string) => paint('1;32', ' ✔', t),
    warning: (t: string) => paint('1;33', ' ⚠', t),
    error: (t: string) => paint('1;31', ' ✗', t),
    info: (t: string) => (color ? `\u001b[2m${t}\u001b[0m` : t),
  };
  const out: string[] = ['Running cog doctor...', ''];
  let group: string | undefined;
  for (const { check, result, error } of outcomes) {
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
    out.push(line[severity](check.description));
    for (const f of findings) {
      out.push(line.info(findingLine(f)));
      if (f.remediation) out.push(line.info(`    Remediation: ${f.remediation}`));
    }
  }
  const { errors, warnings } = tally(outcomes);
  out.push('');
  if (errors + warnings === 0) out.push(line.success('no issues found'));
  else out.push(`Found ${plural(errors, 'error')}, ${plural(warnings, 'warning')}.`);
  return `${out.join('\n')}\n`;
}
