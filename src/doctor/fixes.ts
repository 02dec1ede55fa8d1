/**
 * `cog doctor --fix`: the edits a fix makes, computed from the context as file writes and removals
 * (applied by cli/doctor.ts), never half-done here. A fix that cannot be sure of its edit refuses with
 * a FixRefused naming what to do by hand, as upstream's do.
 *
 * - predict → run: upstream's migration of the starter project (cog.yaml's `predict: predict.py:Predictor`
 *   becomes `run: "run.py:Runner"`, predict.py becomes run.py with Runner/BaseRunner/run()).
 * - removed imports: the import of a name cog removed, the top-level lines that use it, and the plain
 *   imports only those lines used.
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

/**
 * A source line as code: its comment removed and what its string literals hold blanked (quotes kept),
 * so a `#`, a bracket or a name inside a string is neither a comment, nor a bracket, nor a use. Line by
 * line: a triple-quoted string's later lines read as code, which can only make a fix refuse.
 */
export function codeOf(line: string | undefined): string {
  const text = line ?? '';
  let code = '';
  let quote = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch === '\\') {
        code += '  ';
        i++;
      } else if (ch === quote) {
        code += ch;
        quote = '';
      } else code += ' ';
    } else if (ch === '#') break;
    else {
      if (ch === '"' || ch === "'") quote = ch;
      code += ch;
    }
  }
  return code;
}

/** A line's trailing comment with the space before it ('' when it has none). */
const trailingComment = (line: string | undefined) => /\s+#.*$/.exec(line ?? '')?.[0] ?? '';

/** The statement's text lines: from its first line to the line that closes its brackets. */
function statementEnd(lines: readonly string[], start: number): number {
  let depth = 0;
  for (let i = start; i < lines.length; i++) {
    const code = codeOf(lines[i]);
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

  // what else names predict.py or its Predictor would break once it is gone: that is for the user
  const config = text.split('\n');
  const otherLine = config.findIndex(
    (line, i) => i !== predict.line - 1 && /\bpredict\.py\b/.test(line.replace(/(?:^|\s)#.*$/, '')),
  );
  if (otherLine >= 0)
    throw manual(`${ctx.configFile}:${otherLine + 1} also refers to predict.py, which the migration removes`);
  for (const file of ctx.pythonFiles()) {
    if (file === 'predict.py') continue;
    const importing = (ctx.readFile(file) ?? '')
      .split('\n')
      .findIndex((line) =>
        /^\s*(?:from\s+predict\s+import\b|import\s+(?:.*,\s*)?predict\b)/.test(codeOf(line)),
      );
    if (importing >= 0) throw manual(`${file}:${importing + 1} imports predict, which the migration removes`);
  }

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
  // only those two lines are renamed: a use of Predictor or of its predict method left would fail
  // (another object's predict, `self.model.predict(x)`, is not the method)
  const leftUse = lines.findIndex((line) =>
    /\bPredictor\b|\bself\.predict\b|\bsuper\(\)\.predict\b/.test(codeOf(line)),
  );
  if (leftUse >= 0)
    throw manual(`predict.py:${leftUse + 1} uses Predictor or its predict method beyond their definitions`);

  // the import: BaseRunner instead, or beside it when BasePredictor is still used elsewhere
  const { s: importStmt } = imported[0] as { s: Stmt & { k: 'from' } };
  const first = importStmt.line - 1;
  const last = statementEnd(lines, first);
  const stillUsed = lines.some((l, i) => (i < first || i > last) && /\bBasePredictor\b/.test(codeOf(l)));
  for (let i = first; i <= last; i++) {
    if (!/\bBasePredictor\b/.test(lines[i] ?? '')) continue;
    lines[i] = stillUsed
      ? (lines[i] ?? '').replace(/\bBasePredictor\b/, 'BasePredictor, BaseRunner')
      : (lines[i] ?? '').replace(/\bBasePredictor\b/, 'BaseRunner');
    break;
  }

  // the line's own comment stays
  const comment = trailingComment(config[predict.line - 1]);
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
 * Removes `name`'s import from `module` (the whole statement when it was the only name), the top-level
 * statements that use it and the plain imports only they used, from every file of the model that
 * imports it.
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
    const droppedUses: string[] = [];
    const uses = new RegExp(`\\b${name}\\b`);
    for (const stmt of stmts) {
      if (stmt.k === 'from' && imports.includes(stmt)) continue;
      const first = stmt.line - 1;
      const last = statementEnd(lines, first);
      let mentions = false;
      for (let i = first; i <= last; i++) if (uses.test(codeOf(lines[i]))) mentions = true;
      if (!mentions) continue;
      if (stmt.k === 'class' || stmt.k === 'def')
        throw new FixRefused(`${file}:${stmt.line} uses ${name}: remove that use by hand`);
      for (let i = first; i <= last; i++) {
        drop.add(i);
        droppedUses.push(lines[i] ?? '');
      }
      // between blank lines, the blank line after it goes too (no gap grows)
      const before = first === 0 || (lines[first - 1] ?? '').trim() === '';
      if (before && (lines[last + 1] ?? 'x').trim() === '') drop.add(last + 1);
    }
    // a use left inside a block would fail the same way: that one is for the user
    const left = lines.findIndex((l, i) => !drop.has(i) && uses.test(codeOf(l)));
    if (left >= 0) throw new FixRefused(`${file}:${left + 1} uses ${name}: remove that use by hand`);
    dropOrphanedImports(stmts, lines, drop, droppedUses);
    write.push({ path: file, content: lines.filter((_l, i) => !drop.has(i)).join('\n') });
  }
  return { write, remove: [] };
}

/**
 * Drops the names of top-level `import` statements that only the dropped lines used (`import warnings`
 * once `warnings.filterwarnings(…, category=ExperimentalFeatureWarning)` is gone), as upstream's fix does;
 * an import that was unused before stays (it may be there for its side effects). The whole statement
 * goes when none of its names is left; one spread over several lines or sharing its line is left alone.
 */
function dropOrphanedImports(
  stmts: readonly Stmt[],
  lines: string[],
  drop: Set<number>,
  droppedUses: readonly string[],
): void {
  const imports = stmts.filter((s): s is Stmt & { k: 'import' } => s.k === 'import');
  const importLines = new Set(imports.map((s) => s.line - 1));
  // the lines that stay, the dropped ones blanked (so line numbers still match importLines)
  const kept = lines.map((l, i) => (drop.has(i) ? '' : l));
  type Imported = (typeof imports)[number]['names'][number];
  const orphaned = (n: Imported) => {
    const word = new RegExp(`(?<![\\w.])${n.alias ?? n.module.split('.')[0] ?? ''}\\b`);
    return droppedUses.some((l) => word.test(codeOf(l))) && usesOf(kept, importLines, word) === 0;
  };
  for (const stmt of imports) {
    const at = stmt.line - 1;
    // one line holding only this statement (`import a; x = 1` keeps its line)
    if (drop.has(at) || statementEnd(lines, at) !== at || codeOf(lines[at]).includes(';')) continue;
    const names = stmt.names.filter((n) => !orphaned(n));
    if (names.length === stmt.names.length) continue;
    if (names.length === 0) {
      drop.add(at);
      continue;
    }
    const indent = /^\s*/.exec(lines[at] ?? '')?.[0] ?? '';
    const listed = names.map((n) => (n.alias ? `${n.module} as ${n.alias}` : n.module)).join(', ');
    lines[at] = `${indent}import ${listed}${trailingComment(lines[at])}`;
  }
}

/** A class line's base names as written, and where the pydantic base is named on it. */
function replaceOnLine(line: string, from: string, to: string): string | undefined {
  const pattern = new RegExp(`(?<![\\w.])${from.replace('.', '\\.')}(?![\\w])`);
  return pattern.test(line) ? line.replace(pattern, to) : undefined;
}

/** Lines (0-based) of the module that are not import statements and still name `word`. */
function usesOf(lines: readonly string[], importLines: ReadonlySet<number>, word: RegExp): number {
  return lines.filter((l, i) => !importLines.has(i) && word.test(codeOf(l))).length;
}

/**
 * cog.BaseModel in place of pydantic.BaseModel with `arbitrary_types_allowed`: the base renamed, the
 * setting removed (the whole model_config when it held nothing else), pydantic's imports dropped when
 * unused, cog's BaseModel imported (as CogBaseModel when another class still uses pydantic's).
 */
export function fixPydanticBaseModel(
  ctx: DoctorContext,
  file: string,
  classNames: readonly string[],
): FileEdits {
  const source = ctx.readFile(file);
  if (source === undefined) throw new FixRefused(`${file} was not found`);
  const module = parseModule(source);
  const lines = source.split('\n');
  const pydanticFrom = module.filter(
    (s): s is Stmt & { k: 'from' } => s.k === 'from' && s.module === 'pydantic',
  );
  const baseNames = pydanticFrom.flatMap((s) =>
    s.names.filter((n) => n.name === 'BaseModel').map((n) => n.alias ?? n.name),
  );
  const moduleNames = module.flatMap((s) =>
    s.k === 'import' ? s.names.filter((n) => n.module === 'pydantic').map((n) => n.alias ?? n.module) : [],
  );
  const importLines = new Set<number>();
  for (const s of module)
    if (s.k === 'import' || s.k === 'from')
      for (let i = s.line - 1; i <= statementEnd(lines, s.line - 1); i++) importLines.add(i);

  // does anything besides the classes being fixed keep using pydantic's BaseModel by the name BaseModel?
  const fixing = module.filter(
    (s): s is Stmt & { k: 'class' } => s.k === 'class' && classNames.includes(s.name),
  );
  const classLines = new Set(fixing.map((c) => c.line - 1));
  const keepsPlainName =
    baseNames.includes('BaseModel') &&
    lines.some(
      (l, i) => !importLines.has(i) && !classLines.has(i) && /(?<![\w.])BaseModel\b/.test(codeOf(l)),
    );
  const target = keepsPlainName ? 'CogBaseModel' : 'BaseModel';

  const drop = new Set<number>();
  for (const cls of fixing) {
    const index = cls.line - 1;
    let line: string | undefined;
    for (const name of [...baseNames, ...moduleNames.map((m) => `${m}.BaseModel`)]) {
      line = replaceOnLine(lines[index] ?? '', name, target);
      if (line !== undefined) break;
    }
    if (line === undefined)
      throw new FixRefused(
        `${file}:${cls.line}: name the base on the class line to have it fixed, or replace it by hand`,
      );
    lines[index] = line;
    for (const b of cls.body) {
      if (b.k !== 'assign' || dottedName(b.target) !== 'model_config') continue;
      const at = b.line - 1;
      if (statementEnd(lines, at) !== at)
        throw new FixRefused(
          `${file}:${b.line}: remove arbitrary_types_allowed=True from model_config by hand`,
        );
      const text = lines[at] ?? '';
      const only = /ConfigDict\(\s*arbitrary_types_allowed\s*=\s*True\s*,?\s*\)/.test(text);
      if (only) drop.add(at);
      else
        lines[at] = text
          .replace(/,\s*arbitrary_types_allowed\s*=\s*True/, '')
          .replace(/arbitrary_types_allowed\s*=\s*True\s*,\s*/, '');
    }
  }

  // pydantic's imports that nothing uses any more
  const kept = lines.map((l, i) => (drop.has(i) ? '' : l));
  for (const stmt of pydanticFrom) {
    const at = stmt.line - 1;
    if (statementEnd(lines, at) !== at) continue; // a multi-line import stays as it is
    const still = stmt.names.filter((n) => {
      if (n.name !== 'BaseModel' && n.name !== 'ConfigDict') return true;
      const local = n.alias ?? n.name;
      const word = new RegExp(`(?<![\\w.])${local}\\b`);
      // the classes now name cog's BaseModel by the same word: count only what is left of pydantic's
      const uses =
        usesOf(kept, importLines, word) - (local === target && n.name === 'BaseModel' ? fixing.length : 0);
      return uses > 0;
    });
    if (still.length === stmt.names.length) continue;
    if (still.length === 0) drop.add(at);
    else
      lines[at] =
        `from pydantic import ${still.map((n) => (n.alias ? `${n.name} as ${n.alias}` : n.name)).join(', ')}`;
  }
  for (const s of module) {
    if (s.k !== 'import' || s.names.length !== 1 || s.names[0]?.module !== 'pydantic') continue;
    const local = s.names[0].alias ?? 'pydantic';
    if (usesOf(kept, importLines, new RegExp(`(?<![\\w.])${local}\\.`)) === 0) drop.add(s.line - 1);
  }

  // cog's BaseModel: beside an existing one-line `from cog import`, else a line of its own
  const wanted = target === 'BaseModel' ? 'BaseModel' : 'BaseModel as CogBaseModel';
  const cogFrom = module.find(
    (s): s is Stmt & { k: 'from' } =>
      s.k === 'from' && s.module === 'cog' && statementEnd(lines, s.line - 1) === s.line - 1,
  );
  const alreadyImported = cogFrom?.names.some(
    (n) => n.name === 'BaseModel' && (n.alias ?? 'BaseModel') === target,
  );
  let insertAt: number | undefined;
  if (cogFrom && !alreadyImported)
    lines[cogFrom.line - 1] = `${(lines[cogFrom.line - 1] ?? '').replace(/\s*(#.*)?$/, '')}, ${wanted}`;
  else if (!cogFrom) {
    const imports = module.filter((s) => s.k === 'import' || s.k === 'from');
    const future = imports.filter((s) => s.k === 'from' && s.module === '__future__').at(-1);
    insertAt = future ? statementEnd(lines, future.line - 1) + 1 : (imports[0]?.line ?? 1) - 1;
  }
  const out: string[] = [];
  for (const [i, line] of lines.entries()) {
    if (i === insertAt) out.push(`from cog import ${wanted}`);
    if (!drop.has(i)) out.push(line);
  }
  return { write: [{ path: file, content: out.join('\n') }], remove: [] };
}
