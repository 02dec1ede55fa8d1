// Problems found in cog.yaml (or a file it points at), as data. Validation collects every issue;
// the loader turns the errors into one ConfigError and passes the warnings on.
import { CogError } from '../errors.js';

/** A key or list index on the way from the document root to a value: ['build', 'run', 0, 'command']. */
export type FieldPath = readonly (string | number)[];

export interface SourceLocation {
  /** file name as shown to the user (relative to the working directory when it is inside it) */
  file: string;
  /** 1-based */
  line: number;
  /** 1-based; absent for whole-line locations (requirements files) */
  column?: number;
}

export interface ConfigIssue {
  /** dotted field name, e.g. "build.python_version" or "weights[0].target"; "cog.yaml" for the root */
  field: string;
  message: string;
  /** the offending value, quoted in the message when present */
  value?: string;
  location?: SourceLocation;
}

/** An issue not yet tied to a file position: the loader locates `path` in the YAML. */
export interface PathIssue {
  path: FieldPath;
  message: string;
  value?: string;
  /** already known (e.g. a requirements file line); wins over locating `path` */
  location?: SourceLocation;
}

/** Render a path as people write it: build.run[0].command. */
export function fieldName(path: FieldPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out;
}

export function formatLocation(loc: SourceLocation): string {
  return loc.column === undefined ? `${loc.file}:${loc.line}` : `${loc.file}:${loc.line}:${loc.column}`;
}

/** "cog.yaml:3:19: invalid build.python_version "3.9": minimum supported Python version is 3.10" */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.location === undefined ? '' : `${formatLocation(issue.location)}: `;
  let what: string;
  if (issue.value !== undefined)
    what = `invalid ${issue.field} ${JSON.stringify(issue.value)}: ${issue.message}`;
  else if (issue.message.includes(`"${issue.field}"`) || issue.field === issue.location?.file)
    what = issue.message;
  else what = `${issue.field}: ${issue.message}`;
  return where + what;
}

/**
 * One or more errors in the configuration. `issues` holds each one, in document order where known.
 * `notes`: warnings that may explain them (an unknown key whose "did you mean" names a required one),
 * shown after the errors, since the warnings are not printed when loading fails.
 */
export class ConfigError extends CogError {
  readonly issues: readonly ConfigIssue[];
  readonly notes: readonly ConfigIssue[];

  constructor(
    issues: readonly ConfigIssue[],
    options: { hint?: string; heading?: string; notes?: readonly ConfigIssue[] } = {},
  ) {
    const lines = issues.map(formatIssue);
    const notes = options.notes ?? [];
    const message =
      lines.length === 1 && options.heading === undefined && notes.length === 0
        ? (lines[0] ?? '')
        : `${options.heading ?? `${issues.length} problems in the configuration`}:\n${lines.map((l) => `  - ${l}`).join('\n')}` +
          notes.map((n) => `\n  note: ${formatIssue(n)}`).join('');
    super(message, { hint: options.hint ?? 'fix the fields named above; see https://cog.run/yaml' });
    this.issues = issues;
    this.notes = notes;
  }
}
