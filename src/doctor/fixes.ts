/**
 * `cog doctor --fix`: the edits a fix makes, computed from the context as file writes and removals
 * (applied by cli/doctor.ts), never half-done here. A fix that cannot be sure of its edit refuses with
 * a FixRefused naming what to do by hand, as upstream's do.
 *
 * - predict → run: upstream's migration of the starter project (cog.yaml's `predict: predict.py:Predictor`
 *   becomes `run: "run.py:Runner"`, predict.py becomes run.py with Runner/BaseRunner/run()).
 * - removed imports: the import of a name cog removed, and the top-level lines that use it.
 */
import { CogError } from '../errors.js';
import { type Stmt, dottedName, parseModule } from '../schema/pyparse.js';
import type { DoctorContext } from './checks.js';
import { topLevelPredict } from './config-text.js';

export interface FileEdits {
  /** project-relative paths and their new content */
  readonly write: readonly { readonly path: string; readonly content: string; readonly modeFrom?: string }[];
  /** project-relative paths to remove, after the writes */
  readonly remove: readonly string[];
}

/** A fix that will not edit: the message says why and what to do by hand. */
export class FixRefused extends CogError {}

const manual = (what: string) => new FixRefused(`Manual migration required: ${what}`);

/** The statement's text lines: from its first line to the line that closes its brackets. */
function statementEnd(lines: readonly string[], start: number): number {
  let depth = 0;
  for (let i = start; i < lines.length; i++) {
    const code = (lines[i] ?? '').replace(/#.*$/, '');
    for (const ch of code) {
      if ('([{'.includes(ch)) depth++;
      else if (')]}'.includes(ch)) depth--;
    }
    if (depth <= 0 && !code.trimEnd().endsWith('\\')) return i;
  }
  return lines.length - 1;
}

export function fixPredictToRun(ctx: DoctorContext): FileEdits {
  const text = ctx.configText ?? '';
  const predict = topLevelPredict(text);
  if (!predict) throw new FixRefused('nothing to migrate: the config has no predict key');
  if (/^run\s*:/m.test(text)) throw new FixRefused('automatic migration cannot run when run is already set');
  if (predict.value !== 'predict.py:Predictor')
    throw manual('automatic migration only supports predict.py:Predictor');
  if (ctx.readFile('run.py') !== undefined)
    throw new FixRefused('cannot migrate predict.py to run.py because run.py already exists');
  const source = ctx.readFile('predict.py');
  if (source === undefined)
    throw new FixRefused('cannot migrate predict.py to run.py because predict.py was not found');
  const module = parseModule(source);
  const classes = module.filter((s): s is Stmt & { k: 'class' } => s.k === 'class' && s.name === 'Predictor');
  if (classes.length === 0)
    throw new FixRefused(
      'cannot migrate predict.py because no legacy Predictor/BasePredictor/predict() names were found',
    );
  if (classes.length > 1) throw manual('automatic migration only supports a single Predictor class');
  const cls = classes[0] as Stmt & { k: 'class' };

  // BasePredictor must be cog's, imported by that name
  const cogImports = module.filter(
    (s): s is Stmt & { k: 'from' } => s.k === 'from' && (s.module === 'cog' || s.module === 'cog.predictor'),
  );
  const imported = cogImports.flatMap((s) =>
    s.names.filter((n) => n.name === 'BasePredictor').map((n) => ({ s, n })),
  );
  const bases = cls.bases.map((b) => dottedName(b) ?? '');
  if (imported.some(({ n }) => n.alias !== undefined && bases.includes(n.alias)))
    throw manual('automatic migration does not support aliased BasePredictor inheritance');
  if (!bases.includes('BasePredictor') || imported.length === 0)
    throw manual('automatic migration only supports BasePredictor imported from cog');
  if (imported.length > 1)
    throw manual('automatic migration only supports unambiguous BasePredictor imports from cog');

  const methods = cls.body.filter((b): b is Stmt & { k: 'def' } => b.k === 'def');
  const predicts = methods.filter((m) => m.name === 'predict');
  if (predicts.length !== 1 || methods.some((m) => m.name === 'run'))
    throw manual('automatic migration only supports a single Predictor class with a single predict method');

  const lines = source.split('\n');
  const classLine = cls.line - 1;
  if (!/\bclass\s+Predictor\b.*\bBasePredictor\b/.test(lines[classLine] ?? ''))
    throw manual(
      'automatic migration only supports a class line naming its base, e.g. class Predictor(BasePredictor):',
    );
  lines[classLine] = (lines[classLine] ?? '')
    .replace(/\bclass\s+Predictor\b/, 'class Runner')
    .replace(/\bBasePredictor\b/, 'BaseRunner');
  const method = predicts[0] as Stmt & { k: 'def' };
  lines[method.line - 1] = (lines[method.line - 1] ?? '').replace(/\bdef\s+predict\b/, 'def run');

  // the import: BaseRunner instead, or beside it when BasePredictor is still used elsewhere
  const { s: importStmt } = imported[0] as { s: Stmt & { k: 'from' } };
  const first = importStmt.line - 1;
  const last = statementEnd(lines, first);
  const stillUsed = lines.some(
    (l, i) => (i < first || i > last) && /\bBasePredictor\b/.test(l.replace(/#.*$/, '')),
  );
  for (let i = first; i <= last; i++) {
    if (!/\bBasePredictor\b/.test(lines[i] ?? '')) continue;
    lines[i] = stillUsed
      ? (lines[i] ?? '').replace(/\bBasePredictor\b/, 'BasePredictor, BaseRunner')
      : (lines[i] ?? '').replace(/\bBasePredictor\b/, 'BaseRunner');
    break;
  }

  const config = text.split('\n');
  // the line's own comment stays
  const comment = /\s+#.*$/.exec(config[predict.line - 1] ?? '')?.[0] ?? '';
  config[predict.line - 1] = `run: "run.py:Runner"${comment}`;
  return {
    write: [
      { path: 'run.py', content: lines.join('\n'), modeFrom: 'predict.py' },
      { path: ctx.configFile, content: config.join('\n') },
    ],
    remove: ['predict.py'],
  };
}

/**
 * Removes `name`'s import from `module` (the whole statement when it was the only name) and the
 * top-level one-line statements that use it, from every file of the model that imports it.
 */
export function fixRemovedImport(
  ctx: DoctorContext,
  files: readonly string[],
  module: string,
  name: string,
): FileEdits {
  const write: { path: string; content: string }[] = [];
  for (const file of files) {
    const source = ctx.readFile(file);
    if (source === undefined) continue;
    const stmts = parseModule(source);
    const imports = stmts.filter(
      (s): s is Stmt & { k: 'from' } =>
        s.k === 'from' && s.module === module && s.names.some((n) => n.name === name),
    );
    if (imports.length === 0) continue;
    const lines = source.split('\n');
    const drop = new Set<number>();
    for (const stmt of imports) {
      const first = stmt.line - 1;
      const last = statementEnd(lines, first);
      const alias = stmt.names.find((n) => n.name === name)?.alias;
      if (alias !== undefined)
        throw new FixRefused(`remove the import of ${name} as ${alias} from ${module} in ${file} by hand`);
      const kept = stmt.names.filter((n) => n.name !== name);
      for (let i = first; i <= last; i++) drop.add(i);
      if (kept.length > 0) {
        const names = kept.map((n) => (n.alias ? `${n.name} as ${n.alias}` : n.name)).join(', ');
        lines[first] = `from ${module} import ${names}`;
        drop.delete(first);
      }
    }
    // top-level statements that use the name go too (they would fail without it)
    const uses = new RegExp(`\\b${name}\\b`);
    for (const stmt of stmts) {
      if (stmt.k === 'from' && imports.includes(stmt)) continue;
      const first = stmt.line - 1;
      const last = statementEnd(lines, first);
      let mentions = false;
      for (let i = first; i <= last; i++)
        if (uses.test((lines[i] ?? '').replace(/#.*$/, ''))) mentions = true;
      if (!mentions) continue;
      if (stmt.k === 'class' || stmt.k === 'def')
        throw new FixRefused(`${file}:${stmt.line} uses ${name}: remove that use by hand`);
      for (let i = first; i <= last; i++) drop.add(i);
      // between blank lines, the blank line after it goes too (no gap grows)
      const before = first === 0 || (lines[first - 1] ?? '').trim() === '';
      if (before && (lines[last + 1] ?? 'x').trim() === '') drop.add(last + 1);
    }
    // a use left inside a block would fail the same way: that one is for the user
    const left = lines.findIndex((l, i) => !drop.has(i) && uses.test(l.replace(/#.*$/, '')));
    if (left >= 0) throw new FixRefused(`${file}:${left + 1} uses ${name}: remove that use by hand`);
    write.push({ path: file, content: lines.filter((_l, i) => !drop.has(i)).join('\n') });
  }
  return { write, remove: [] };
}
