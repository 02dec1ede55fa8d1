/**
 * Reads a predictor module statically: finds the target class/function and its run()/predict()/
 * train() signature, resolves Input(...) metadata and type annotations, and resolves the output
 * type (including BaseModel output classes, also from project files the module imports).
 */
import { SchemaError } from './errors.js';
import {
  dottedName,
  exprText,
  parseExpression,
  parseModule,
  PythonSyntaxError,
  type Expr,
  type Param,
  type Stmt,
} from './pyparse.js';
import {
  primitiveNames,
  type FieldType,
  type InputType,
  type ObjectField,
  type Primitive,
  type PyValue,
  type SchemaType,
} from './types.js';

export type Mode = 'predict' | 'train';

/** Loads a project file by its path relative to the project root; undefined when it does not exist. */
export type FileLoader = (relativePath: string) => string | undefined;

export interface InputField {
  readonly name: string;
  readonly order: number;
  readonly fieldType: FieldType;
  readonly inputType: InputType;
  readonly default: PyValue | undefined;
  readonly description: string | undefined;
  readonly ge: number | undefined;
  readonly le: number | undefined;
  readonly minLength: number | undefined;
  readonly maxLength: number | undefined;
  readonly regex: string | undefined;
  readonly choices: readonly PyValue[] | undefined;
  readonly deprecated: boolean | undefined;
  readonly accept: string | undefined;
}

export interface PredictorInfo {
  readonly mode: Mode;
  readonly inputs: readonly InputField[];
  readonly output: SchemaType;
  /** the target carries the @cog.streaming decorator */
  readonly streaming: boolean;
}

// ---------------------------------------------------------------------------------------------
// Type annotations
// ---------------------------------------------------------------------------------------------

type TypeAnn =
  | { readonly kind: 'simple'; readonly name: string }
  | { readonly kind: 'generic'; readonly name: string; readonly args: readonly TypeAnn[] }
  | { readonly kind: 'union'; readonly args: readonly TypeAnn[] };

interface ImportEntry {
  readonly module: string;
  readonly original: string;
}

interface ModelField {
  readonly name: string;
  readonly type: TypeAnn;
  readonly hasDefault: boolean;
  readonly line: number;
}

interface ModelClass {
  readonly fields: readonly ModelField[];
  readonly typedDict: boolean;
}

interface InputCallInfo {
  default: PyValue | undefined;
  defaultUnresolved: boolean;
  description: string | undefined;
  ge: number | undefined;
  le: number | undefined;
  minLength: number | undefined;
  maxLength: number | undefined;
  regex: string | undefined;
  choices: readonly PyValue[] | undefined;
  deprecated: boolean | undefined;
  accept: string | undefined;
}

/** Everything known about one parsed file. */
class ModuleContext {
  readonly imports = new Map<string, ImportEntry>();
  readonly scope = new Map<string, PyValue>();
  readonly classes = new Map<string, Extract<Stmt, { k: 'class' }>>();
  readonly functions = new Map<string, Extract<Stmt, { k: 'def' }>>();
  readonly models = new Map<string, ModelClass>();
  readonly inputAttributes = new Map<string, InputCallInfo>();
  readonly inputMethods = new Map<string, { params: string[]; info: InputCallInfo }>();

  constructor(
    readonly file: string,
    readonly body: readonly Stmt[],
  ) {}

  error(
    kind: ConstructorParameters<typeof SchemaError>[0],
    message: string,
    line?: number,
    hint?: string,
  ): SchemaError {
    return new SchemaError(kind, message, {
      file: this.file,
      ...(line === undefined ? {} : { line }),
      ...(hint === undefined ? {} : { hint }),
    });
  }
}

const knownExternal = new Set([
  'builtins',
  'typing',
  'typing_extensions',
  'collections',
  'abc',
  'enum',
  'dataclasses',
  'os',
  'sys',
  'io',
  'json',
  're',
  'math',
  'pathlib',
  'functools',
  'itertools',
  'contextlib',
  'concurrent',
  'asyncio',
  'multiprocessing',
  'threading',
  'logging',
  'warnings',
  'unittest',
  'pytest',
  'numpy',
  'torch',
  'tensorflow',
  'jax',
  'scipy',
  'sklearn',
  'transformers',
  'diffusers',
  'accelerate',
  'safetensors',
  'PIL',
  'cv2',
  'skimage',
  'requests',
  'httpx',
  'aiohttp',
  'fastapi',
  'flask',
  'pydantic',
  'cog',
  'coglet',
  '__future__',
]);

/**
 * The project file (relative to the project root) a module imported by `fromFile` names:
 * `types` / `models.output` → `types.py` / `models/output.py`; a relative `.types` / `..base` is
 * found from `fromFile`'s own package as Python does (`.types` in pkg/mod.py → pkg/types.py,
 * `..base` → base.py; as upstream, one above the project root stays at the root). Undefined for a
 * well-known external package and for `from . import x`.
 */
function moduleToPath(module: string, fromFile: string): string | undefined {
  const clean = module.replace(/^\.+/, '');
  if (clean === '') return undefined;
  const parts = clean.split('.');
  const level = module.length - clean.length;
  if (level === 0) return knownExternal.has(parts[0] ?? '') ? undefined : `${parts.join('/')}.py`;
  // the importing file's package is its directory; each dot past the first goes one package up
  const dirs = fromFile.split('/').slice(0, -1);
  return `${[...dirs.slice(0, Math.max(0, dirs.length - (level - 1))), ...parts].join('/')}.py`;
}

export class Analyzer {
  private readonly cache = new Map<string, ModuleContext | null>();
  private readonly loading = new Set<string>();

  constructor(private readonly load: FileLoader) {}

  /** Parses a file (cached). Syntax errors in the main file are fatal; in imported files they are ignored. */
  module(file: string, source?: string): ModuleContext | undefined {
    const cached = this.cache.get(file);
    if (cached !== undefined) return cached ?? undefined;
    if (this.loading.has(file)) return undefined;
    const text = source ?? this.load(file);
    if (text === undefined) {
      this.cache.set(file, null);
      return undefined;
    }
    let body: Stmt[];
    try {
      body = parseModule(text);
    } catch (e) {
      if (e instanceof PythonSyntaxError) {
        if (source !== undefined)
          throw new SchemaError('parse', `invalid Python syntax: ${e.message}`, { file, line: e.line });
        this.cache.set(file, null);
        return undefined;
      }
      throw e;
    }
    this.loading.add(file);
    try {
      const ctx = new ModuleContext(file, body);
      collectFacts(ctx);
      this.collectModels(ctx);
      collectInputRegistry(ctx);
      this.cache.set(file, ctx);
      return ctx;
    } finally {
      this.loading.delete(file);
    }
  }

  private collectModels(ctx: ModuleContext): void {
    // models imported from project files (from .types import Output [as Alias]) first: a class
    // here may derive from one (class Out(Base) with Base imported)
    for (const [local, entry] of ctx.imports) {
      if (ctx.classes.has(local)) continue;
      const path = moduleToPath(entry.module, ctx.file);
      if (path === undefined) continue;
      const other = this.module(path);
      const model = other?.models.get(entry.original);
      if (model !== undefined) ctx.models.set(local, model);
    }
    for (const [name, cls] of ctx.classes) {
      const kind = this.modelKind(ctx, cls);
      if (kind === undefined) continue;
      const inherited: ModelField[] = [];
      for (const base of cls.bases) {
        const baseName = dottedName(base);
        const parent = baseName === undefined ? undefined : ctx.models.get(baseName);
        if (parent !== undefined) inherited.push(...parent.fields);
      }
      const own = classFields(cls, ctx);
      const fields = [...inherited.filter((f) => !own.some((o) => o.name === f.name)), ...own];
      ctx.models.set(name, { fields, typedDict: kind === 'typeddict' });
    }
  }

  private modelKind(
    ctx: ModuleContext,
    cls: Extract<Stmt, { k: 'class' }>,
  ): 'model' | 'typeddict' | undefined {
    for (const base of cls.bases) {
      const name = dottedName(base);
      if (name === undefined) continue;
      const entry = ctx.imports.get(name);
      if (name === 'BaseModel' || name.endsWith('.BaseModel')) return 'model';
      if (
        entry !== undefined &&
        ['cog', 'pydantic', 'pydantic.v1'].includes(entry.module) &&
        entry.original === 'BaseModel'
      )
        return 'model';
      if (name === 'TypedDict' || name.endsWith('.TypedDict')) return 'typeddict';
      if (entry !== undefined && entry.original === 'TypedDict') return 'typeddict';
      const parent = ctx.models.get(name);
      if (parent !== undefined) return parent.typedDict ? 'typeddict' : 'model';
    }
    return undefined;
  }

  /** Finds a class by name in a module or, through its imports, in another project file. */
  resolveClass(
    ctx: ModuleContext,
    name: string,
  ): { ctx: ModuleContext; cls: Extract<Stmt, { k: 'class' }> } | undefined {
    const local = ctx.classes.get(name);
    if (local !== undefined) return { ctx, cls: local };
    let module: string | undefined;
    let className: string | undefined;
    const dot = name.indexOf('.');
    if (dot > 0) {
      module = ctx.imports.get(name.slice(0, dot))?.module;
      className = name.slice(dot + 1);
    } else {
      const entry = ctx.imports.get(name);
      module = entry?.module;
      className = entry?.original;
    }
    if (module === undefined || className === undefined) return undefined;
    const path = moduleToPath(module, ctx.file);
    const other = path === undefined ? undefined : this.module(path);
    const cls = other?.classes.get(className);
    return other !== undefined && cls !== undefined ? { ctx: other, cls } : undefined;
  }
}

function collectFacts(ctx: ModuleContext): void {
  for (const b of ['str', 'int', 'float', 'bool', 'list', 'dict', 'set', 'None']) {
    ctx.imports.set(b, { module: 'builtins', original: b });
  }
  for (const stmt of ctx.body) {
    switch (stmt.k) {
      case 'from':
        for (const n of stmt.names) {
          if (n.name !== '*') ctx.imports.set(n.alias ?? n.name, { module: stmt.module, original: n.name });
        }
        break;
      case 'import':
        for (const n of stmt.names) {
          const local = n.alias ?? n.module.split('.')[0] ?? n.module;
          const module = n.alias === undefined ? local : n.module;
          ctx.imports.set(local, { module, original: module });
        }
        break;
      case 'class':
        ctx.classes.set(stmt.name, stmt);
        break;
      case 'def':
        ctx.functions.set(stmt.name, stmt);
        break;
      case 'assign': {
        if (stmt.target.k !== 'name' || stmt.value === undefined) break;
        const v = literal(stmt.value, undefined);
        if (v !== undefined) ctx.scope.set(stmt.target.id, v);
        else ctx.scope.delete(stmt.target.id);
        break;
      }
      default:
        break;
    }
  }
}

function classFields(cls: Extract<Stmt, { k: 'class' }>, ctx: ModuleContext): ModelField[] {
  const fields: ModelField[] = [];
  for (const stmt of cls.body) {
    if (stmt.k !== 'assign' || stmt.annotation === undefined || stmt.target.k !== 'name') continue;
    const ann =
      stmt.annotation.k === 'name' && stmt.annotation.id === 'ClassVar'
        ? undefined
        : toTypeAnn(stmt.annotation, ctx, false);
    if (ann === undefined) continue;
    if (ann.kind === 'generic' && resolveQualified(ann.name) === 'ClassVar') continue;
    fields.push({
      name: stmt.target.id,
      type: ann,
      hasDefault: stmt.value !== undefined && literal(stmt.value, undefined) !== undefined,
      line: stmt.line,
    });
  }
  return fields;
}

// ---------------------------------------------------------------------------------------------
// Literals
// ---------------------------------------------------------------------------------------------

/** Evaluates a literal expression (optionally resolving module-level constant names). */
function literal(e: Expr, scope: ReadonlyMap<string, PyValue> | undefined): PyValue | undefined {
  switch (e.k) {
    case 'none':
      return { kind: 'none' };
    case 'bool':
      return { kind: 'bool', value: e.value };
    case 'num':
      return parseNumber(e.text);
    case 'str':
      return e.fstring || e.bytes ? undefined : { kind: 'str', value: e.value };
    case 'unary': {
      if (e.op !== '-' && e.op !== '+') return undefined;
      const inner = e.operand.k === 'num' ? parseNumber(e.operand.text) : undefined;
      if (inner === undefined || (inner.kind !== 'int' && inner.kind !== 'float')) return undefined;
      return { kind: inner.kind, value: e.op === '-' ? -inner.value : inner.value };
    }
    case 'list':
    case 'tuple':
    case 'set': {
      const items: PyValue[] = [];
      for (const el of e.elts) {
        const v = literal(el, scope);
        if (v === undefined) return undefined;
        items.push(v);
      }
      return { kind: e.k === 'set' ? 'set' : 'list', items };
    }
    case 'dict': {
      const keys: PyValue[] = [];
      const values: PyValue[] = [];
      for (let i = 0; i < e.keys.length; i++) {
        const k = e.keys[i];
        const v = e.values[i];
        if (k === undefined || v === undefined) return undefined;
        const kv = literal(k, scope);
        const vv = literal(v, scope);
        if (kv === undefined || vv === undefined) return undefined;
        keys.push(kv);
        values.push(vv);
      }
      return { kind: 'dict', keys, values };
    }
    case 'name':
      return scope?.get(e.id);
    default:
      return undefined;
  }
}

function parseNumber(text: string): PyValue | undefined {
  const t = text.replace(/_/g, '');
  if (/[jJ]$/.test(t)) return undefined;
  if (/^0[xX]/.test(t)) return { kind: 'int', value: parseInt(t.slice(2), 16) };
  if (/^0[oO]/.test(t)) return { kind: 'int', value: parseInt(t.slice(2), 8) };
  if (/^0[bB]/.test(t)) return { kind: 'int', value: parseInt(t.slice(2), 2) };
  if (/^\d+$/.test(t)) return { kind: 'int', value: Number(t) };
  const f = Number(t);
  return Number.isFinite(f) ? { kind: 'float', value: f } : undefined;
}

function numberValue(e: Expr, scope: ReadonlyMap<string, PyValue>): number | undefined {
  const v = literal(e, scope);
  if (v === undefined) return undefined;
  if (v.kind === 'int' || v.kind === 'float') return v.value;
  return undefined;
}

function stringValue(e: Expr, scope: ReadonlyMap<string, PyValue>): string | undefined {
  if (e.k === 'bin' && e.op === '+') {
    const l = stringValue(e.left, scope);
    const r = stringValue(e.right, scope);
    return l === undefined || r === undefined ? undefined : l + r;
  }
  const v = literal(e, scope);
  return v?.kind === 'str' ? v.value : undefined;
}

function choicesValue(e: Expr, scope: ReadonlyMap<string, PyValue>): PyValue[] | undefined {
  if (e.k === 'bin' && e.op === '+') {
    const l = choicesValue(e.left, scope);
    const r = choicesValue(e.right, scope);
    return l === undefined || r === undefined ? undefined : [...l, ...r];
  }
  // list(X.keys()) / list(X.values()) over a module-level dict
  if (e.k === 'call' && e.func.k === 'name' && e.func.id === 'list' && e.args.length === 1) {
    const arg = e.args[0];
    if (arg?.k === 'call' && arg.func.k === 'attr' && arg.func.value.k === 'name' && arg.args.length === 0) {
      const d = scope.get(arg.func.value.id);
      if (d?.kind === 'dict' && arg.func.attr === 'keys') return [...d.keys];
      if (d?.kind === 'dict' && arg.func.attr === 'values') return [...d.values];
    }
    return undefined;
  }
  const v = literal(e, scope);
  if (v?.kind === 'list') return [...v.items];
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Input() calls
// ---------------------------------------------------------------------------------------------

function isInputCall(e: Expr, ctx: ModuleContext): e is Extract<Expr, { k: 'call' }> {
  if (e.k !== 'call') return false;
  const name = dottedName(e.func);
  if (name === undefined) return false;
  if (name === 'Input' || name === 'cog.Input') return true;
  const entry = ctx.imports.get(name);
  return entry !== undefined && entry.module === 'cog' && entry.original === 'Input';
}

function emptyInfo(): InputCallInfo {
  return {
    default: undefined,
    defaultUnresolved: false,
    description: undefined,
    ge: undefined,
    le: undefined,
    minLength: undefined,
    maxLength: undefined,
    regex: undefined,
    choices: undefined,
    deprecated: undefined,
    accept: undefined,
  };
}

function applyInputArg(
  info: InputCallInfo,
  key: string,
  value: Expr,
  ctx: ModuleContext,
  param: string,
): void {
  const scope = ctx.scope;
  switch (key) {
    case 'default': {
      const v = literal(value, scope);
      info.default = v ?? { kind: 'none' };
      info.defaultUnresolved = v === undefined;
      break;
    }
    case 'default_factory':
      throw ctx.error(
        'default-factory',
        `parameter '${param}': default_factory is not supported in static schema generation`,
        value.line,
      );
    case 'description':
      info.description = stringValue(value, scope);
      break;
    case 'ge':
      info.ge = numberValue(value, scope);
      break;
    case 'le':
      info.le = numberValue(value, scope);
      break;
    case 'min_length': {
      const n = numberValue(value, scope);
      info.minLength = n === undefined ? undefined : Math.trunc(n);
      break;
    }
    case 'max_length': {
      const n = numberValue(value, scope);
      info.maxLength = n === undefined ? undefined : Math.trunc(n);
      break;
    }
    case 'regex':
      info.regex = stringValue(value, scope);
      break;
    case 'choices': {
      const c = choicesValue(value, scope);
      if (c === undefined) {
        throw ctx.error(
          'choices-not-resolvable',
          `parameter '${param}': choices expression cannot be statically resolved`,
          value.line,
        );
      }
      info.choices = c;
      break;
    }
    case 'deprecated': {
      const v = literal(value, scope);
      if (v?.kind === 'bool') info.deprecated = v.value;
      break;
    }
    case 'accept':
      info.accept = stringValue(value, scope);
      break;
    default:
      break;
  }
}

function parseInputCall(
  call: Extract<Expr, { k: 'call' }>,
  ctx: ModuleContext,
  param: string,
): InputCallInfo {
  const info = emptyInfo();
  // Input(default=None, *, ...): the only positional parameter is the default
  const positional = call.args[0];
  if (positional !== undefined) applyInputArg(info, 'default', positional, ctx, param);
  for (const kw of call.kwargs) {
    if (kw.name !== undefined) applyInputArg(info, kw.name, kw.value, ctx, param);
  }
  return info;
}

/** Input() calls bound to class attributes (`Inputs.prompt`) and helper methods returning Input(...). */
function collectInputRegistry(ctx: ModuleContext): void {
  for (const [className, cls] of ctx.classes) {
    for (const stmt of cls.body) {
      if (
        stmt.k === 'assign' &&
        stmt.target.k === 'name' &&
        stmt.value !== undefined &&
        isInputCall(stmt.value, ctx)
      ) {
        try {
          ctx.inputAttributes.set(
            `${className}.${stmt.target.id}`,
            parseInputCall(stmt.value, ctx, stmt.target.id),
          );
        } catch {
          // an unusable helper only matters if it is referenced
        }
      }
      if (stmt.k === 'def') {
        const ret = stmt.body.find(
          (s): s is Extract<Stmt, { k: 'return' }> =>
            s.k === 'return' && s.value !== undefined && isInputCall(s.value, ctx),
        );
        if (ret?.value === undefined || ret.value.k !== 'call') continue;
        try {
          ctx.inputMethods.set(`${className}.${stmt.name}`, {
            params: stmt.params.filter((p) => p.name !== 'self' && p.name !== 'cls').map((p) => p.name),
            info: parseInputCall(ret.value, ctx, stmt.name),
          });
        } catch {
          // as above
        }
      }
    }
  }
}

function resolveInputReference(e: Expr, ctx: ModuleContext): InputCallInfo | undefined {
  if (e.k === 'attr') {
    const key = dottedName(e);
    return key === undefined ? undefined : ctx.inputAttributes.get(key);
  }
  if (e.k === 'call' && e.func.k === 'attr') {
    const key = dottedName(e.func);
    const method = key === undefined ? undefined : ctx.inputMethods.get(key);
    if (method === undefined) return undefined;
    const info: InputCallInfo = { ...method.info };
    const args = new Map<string, Expr>();
    e.args.forEach((a, i) => {
      const p = method.params[i];
      if (p !== undefined) args.set(p, a);
    });
    for (const kw of e.kwargs) if (kw.name !== undefined) args.set(kw.name, kw.value);
    for (const [name, value] of args) {
      if (name === 'default') {
        const v = literal(value, ctx.scope);
        info.default = v ?? { kind: 'none' };
        info.defaultUnresolved = v === undefined;
      } else if (name === 'description') {
        const s = stringValue(value, ctx.scope);
        if (s !== undefined) info.description = s;
      } else if (name === 'ge' || name === 'le') {
        const n = numberValue(value, ctx.scope);
        if (n !== undefined) info[name] = n;
      }
    }
    return info;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Annotations → types
// ---------------------------------------------------------------------------------------------

function toTypeAnn(e: Expr, ctx: ModuleContext, strict: true): TypeAnn;
function toTypeAnn(e: Expr, ctx: ModuleContext, strict: false): TypeAnn | undefined;
function toTypeAnn(e: Expr, ctx: ModuleContext, strict: boolean): TypeAnn | undefined {
  const fail = (what: string): undefined => {
    if (strict) throw ctx.error('unsupported-type', `unsupported type annotation: ${what}`, e.line);
    return undefined;
  };
  switch (e.k) {
    case 'name':
    case 'attr': {
      const name = dottedName(e);
      return name === undefined ? fail('expression') : { kind: 'simple', name };
    }
    case 'none':
      return { kind: 'simple', name: 'None' };
    case 'sub': {
      const name = dottedName(e.value);
      if (name === undefined) return fail('subscript of a non-name');
      if (resolveQualified(name) === 'Literal') {
        if (strict) {
          throw ctx.error(
            'unsupported-type',
            'unsupported type: Literal[...] is not supported by Cog',
            e.line,
            'use `x: str = Input(choices=[...])` instead of Literal',
          );
        }
        return undefined;
      }
      const args: TypeAnn[] = [];
      for (const a of e.index) {
        if (a.k === 'tuple' && a.elts.length === 0) continue;
        const t = strict ? toTypeAnn(a, ctx, true) : toTypeAnn(a, ctx, false);
        if (t === undefined) return undefined;
        args.push(t);
      }
      return args.length === 0 ? { kind: 'simple', name } : { kind: 'generic', name, args };
    }
    case 'bin': {
      if (e.op !== '|') return fail(`operator ${e.op}`);
      const l = strict ? toTypeAnn(e.left, ctx, true) : toTypeAnn(e.left, ctx, false);
      const r = strict ? toTypeAnn(e.right, ctx, true) : toTypeAnn(e.right, ctx, false);
      if (l === undefined || r === undefined) return undefined;
      return {
        kind: 'union',
        args: [...(l.kind === 'union' ? l.args : [l]), ...(r.kind === 'union' ? r.args : [r])],
      };
    }
    case 'str': {
      const inner = parseExpression(e.value, e.line);
      if (inner === undefined) return fail(`string annotation ${JSON.stringify(e.value)}`);
      return strict ? toTypeAnn(inner, ctx, true) : toTypeAnn(inner, ctx, false);
    }
    case 'opaque':
      return fail(e.text);
    default:
      return fail(e.k);
  }
}

/** `typing.List` → `List`, `cog.Path` → `Path` (like upstream: the part after the first dot). */
function resolveQualified(name: string): string {
  const dot = name.indexOf('.');
  return dot < 0 ? name : name.slice(dot + 1);
}

function isAnnotated(name: string, ctx: ModuleContext): boolean {
  const base = resolveQualified(name);
  const entry = ctx.imports.get(name);
  return base === 'Annotated' || entry?.original === 'Annotated';
}

function isOpaqueMarker(t: TypeAnn, ctx: ModuleContext): boolean {
  if (t.kind !== 'simple') return false;
  if (t.name === 'cog.Opaque') return true;
  const entry = ctx.imports.get(t.name);
  return entry !== undefined && entry.module === 'cog' && entry.original === 'Opaque';
}

function unwrapOptional(t: TypeAnn): TypeAnn | undefined {
  if (t.kind === 'generic' && resolveQualified(t.name) === 'Optional' && t.args.length === 1)
    return t.args[0];
  const union = t.kind === 'union' || (t.kind === 'generic' && resolveQualified(t.name) === 'Union');
  if (union && t.args.length === 2) {
    const [a, b] = t.args;
    if (a?.kind === 'simple' && a.name === 'None') return b;
    if (b?.kind === 'simple' && b.name === 'None') return a;
  }
  return undefined;
}

function describe(t: TypeAnn): string {
  switch (t.kind) {
    case 'simple':
      return t.name;
    case 'generic':
      return `${t.name}[${t.args.map(describe).join(', ')}]`;
    case 'union':
      return t.args.map(describe).join(' | ');
  }
}

interface ResolvedInput {
  readonly fieldType: FieldType;
  readonly inputType: InputType;
}

function resolveInputAnn(t: TypeAnn, ctx: ModuleContext, line: number): ResolvedInput {
  const unsupported = (msg: string): SchemaError =>
    ctx.error('unsupported-type', `unsupported type: ${msg}`, line);
  const single = (primitive: Primitive, repetition: FieldType['repetition']): ResolvedInput => {
    const nullable = repetition === 'optional' || repetition === 'optional-repeated';
    const inputType: InputType =
      repetition === 'repeated' || repetition === 'optional-repeated'
        ? { kind: 'array', elem: primitive, nullable }
        : { kind: 'primitive', primitive, nullable };
    return { fieldType: { primitive, repetition }, inputType };
  };
  const optional = (inner: ResolvedInput): ResolvedInput => {
    if (inner.inputType.kind === 'union')
      return { ...inner, inputType: { ...inner.inputType, nullable: true } };
    const rep = inner.fieldType.repetition === 'repeated' ? 'optional-repeated' : 'optional';
    if (inner.fieldType.repetition !== 'required' && inner.fieldType.repetition !== 'repeated') return inner;
    return single(inner.fieldType.primitive, rep);
  };

  if (t.kind === 'generic' && isAnnotated(t.name, ctx)) {
    const [inner, ...meta] = t.args;
    if (inner === undefined) throw unsupported('Annotated expects at least 1 type argument');
    if (meta.some((m) => isOpaqueMarker(m, ctx))) {
      const opt = unwrapOptional(inner);
      const shape = opt ?? inner;
      const isList =
        (shape.kind === 'simple' || shape.kind === 'generic') &&
        ['list', 'List'].includes(resolveQualified(shape.name));
      const rep = isList ? (opt ? 'optional-repeated' : 'repeated') : opt ? 'optional' : 'required';
      return single('Any', rep);
    }
    return resolveInputAnn(inner, ctx, line);
  }

  if (t.kind === 'simple') {
    const name = resolveQualified(t.name);
    const model = ctx.models.get(t.name) ?? ctx.models.get(name);
    if (model?.typedDict === true) return single('Any', 'required');
    if (name === 'dict' || name === 'Dict') return single('Any', 'required');
    if (name === 'list' || name === 'List') return single('Any', 'repeated');
    const prim = primitiveNames.get(name);
    if (prim !== undefined) return single(prim, 'required');
    if (model !== undefined) {
      throw ctx.error(
        'unsupported-type',
        `unsupported input type: ${t.name} (BaseModel classes can only be outputs)`,
        line,
        'use dict for structured JSON inputs',
      );
    }
    const entry = ctx.imports.get(t.name) ?? ctx.imports.get(t.name.split('.')[0] ?? '');
    if (entry !== undefined && entry.module !== 'builtins') {
      throw unsupported(`${t.name} (imported from '${entry.module}') is not a supported input type`);
    }
    throw unsupported(`${t.name} is not a supported input type`);
  }

  if (t.kind === 'generic') {
    const outer = resolveQualified(t.name);
    if (outer === 'dict' || outer === 'Dict') return single('Any', 'required');
    if (outer === 'Optional') {
      const [inner] = t.args;
      if (inner === undefined || t.args.length !== 1)
        throw unsupported(`Optional expects exactly 1 type argument, got ${t.args.length}`);
      return optional(resolveInputAnn(inner, ctx, line));
    }
    if (outer === 'Union') return resolveInputAnn({ kind: 'union', args: t.args }, ctx, line);
    if (outer === 'List' || outer === 'list') {
      const [inner] = t.args;
      if (inner === undefined || t.args.length !== 1)
        throw unsupported(`List expects exactly 1 type argument, got ${t.args.length}`);
      const r = resolveInputAnn(inner, ctx, line);
      if (r.fieldType.repetition !== 'required' || r.inputType.kind !== 'primitive') {
        throw unsupported('nested generics like List[Optional[X]] are not supported');
      }
      return single(r.fieldType.primitive, 'repeated');
    }
    throw unsupported(`${outer}[...] is not a supported input type`);
  }

  // union
  const inner = unwrapOptional(t);
  if (inner !== undefined) return optional(resolveInputAnn(inner, ctx, line));
  const nonNone = t.args.filter((a) => !(a.kind === 'simple' && a.name === 'None'));
  const nullable = nonNone.length !== t.args.length;
  const first = nonNone[0];
  if (nonNone.length === 1 && first !== undefined) {
    const r = resolveInputAnn(first, ctx, line);
    return nullable ? optional(r) : r;
  }
  const variants: InputType[] = [];
  for (const member of nonNone) {
    const r = resolveInputAnn(member, ctx, line);
    const prim = r.fieldType.primitive;
    if (
      r.inputType.kind === 'union' ||
      ['Path', 'File', 'Secret'].includes(prim) ||
      (r.fieldType.repetition !== 'required' && r.fieldType.repetition !== 'repeated')
    ) {
      throw unsupported(`unsupported union member ${describe(member)} in union ${describe(t)}`);
    }
    variants.push(r.inputType);
  }
  return {
    fieldType: { primitive: 'Any', repetition: nullable ? 'optional' : 'required' },
    inputType: { kind: 'union', variants, nullable },
  };
}

function resolveOutputAnn(t: TypeAnn, ctx: ModuleContext, line: number, seen: Set<string>): SchemaType {
  const unsupported = (msg: string): SchemaError =>
    ctx.error('unsupported-type', `unsupported type: ${msg}`, line);
  const optionalOutput = (): SchemaError =>
    ctx.error('optional-output', 'unsupported output type: Optional is not allowed as a return type', line);

  if (t.kind === 'generic' && isAnnotated(t.name, ctx)) {
    const [inner, ...meta] = t.args;
    if (inner === undefined) throw unsupported('Annotated expects at least 1 type argument');
    if (meta.some((m) => isOpaqueMarker(m, ctx))) {
      if (unwrapOptional(inner) !== undefined) throw optionalOutput();
      const isList =
        (inner.kind === 'simple' || inner.kind === 'generic') &&
        ['list', 'List'].includes(resolveQualified(inner.name));
      return isList
        ? { kind: 'array', items: { kind: 'primitive', primitive: 'Any' } }
        : { kind: 'primitive', primitive: 'Any' };
    }
    return resolveOutputAnn(inner, ctx, line, seen);
  }

  if (t.kind === 'simple') {
    const model = ctx.models.get(t.name) ?? ctx.models.get(resolveQualified(t.name));
    if (model !== undefined) {
      if (seen.has(t.name)) return { kind: 'any' };
      seen.add(t.name);
      try {
        return resolveModel(model, ctx, seen);
      } finally {
        seen.delete(t.name);
      }
    }
    const name = resolveQualified(t.name);
    if (name === 'Any' || name === 'dict' || name === 'Dict') return { kind: 'any' };
    if (name === 'list' || name === 'List') return { kind: 'array', items: { kind: 'any' } };
    const prim = primitiveNames.get(name);
    if (prim !== undefined) return { kind: 'primitive', primitive: prim };
    if (t.name === 'None') {
      throw ctx.error(
        'unresolvable-type',
        'output type None is not supported: the method must return a value',
        line,
        'annotate what the method returns, e.g. `-> str` or `-> Path`',
      );
    }
    const entry = ctx.imports.get(t.name) ?? ctx.imports.get(t.name.split('.')[0] ?? '');
    if (entry !== undefined && entry.module !== 'builtins') {
      throw ctx.error(
        'unresolvable-type',
        `cannot resolve output type '${name}' (imported from '${entry.module}') — external types cannot be statically analyzed`,
        line,
      );
    }
    throw ctx.error(
      'unresolvable-type',
      `cannot resolve output type '${name}' — it is not a primitive type (str, int, float, bool, Path) and no BaseModel definition was found`,
      line,
    );
  }

  if (t.kind === 'generic') {
    const outer = resolveQualified(t.name);
    const [first] = t.args;
    if (outer === 'dict' || outer === 'Dict') {
      const value = t.args[1];
      if (t.args.length === 2 && value !== undefined)
        return { kind: 'dict', value: resolveOutputAnn(value, ctx, line, seen) };
      throw unsupported('dict expects 0 or 2 type arguments');
    }
    if (outer === 'Optional') throw optionalOutput();
    if (outer === 'Union') return resolveOutputAnn({ kind: 'union', args: t.args }, ctx, line, seen);
    if (first === undefined || t.args.length !== 1)
      throw unsupported(`${outer} expects exactly 1 type argument`);
    if (outer === 'list' || outer === 'List')
      return { kind: 'array', items: resolveOutputAnn(first, ctx, line, seen) };
    if (outer === 'Iterator' || outer === 'AsyncIterator')
      return { kind: 'iterator', elem: resolveOutputAnn(first, ctx, line, seen) };
    if (outer === 'ConcatenateIterator' || outer === 'AsyncConcatenateIterator') {
      if (first.kind !== 'simple' || primitiveNames.get(resolveQualified(first.name)) !== 'str') {
        throw ctx.error(
          'concat-iterator-not-str',
          `ConcatenateIterator element type must be str, got ${describe(first)}`,
          line,
        );
      }
      return { kind: 'concat-iterator' };
    }
    throw unsupported(`${outer}[...] is not a supported output type`);
  }

  if (unwrapOptional(t) !== undefined || t.args.some((a) => a.kind === 'simple' && a.name === 'None'))
    throw optionalOutput();
  throw unsupported('union types are not supported as output');
}

function resolveModel(model: ModelClass, ctx: ModuleContext, seen: Set<string>): SchemaType {
  const fields: ObjectField[] = [];
  for (const f of model.fields) {
    let type = f.type;
    let required = !f.hasDefault;
    if (
      model.typedDict &&
      type.kind === 'generic' &&
      ['NotRequired', 'Required'].includes(resolveQualified(type.name)) &&
      type.args[0] !== undefined
    ) {
      required = resolveQualified(type.name) === 'Required';
      type = type.args[0];
    }
    if (
      type.kind === 'generic' &&
      isAnnotated(type.name, ctx) &&
      type.args[0] !== undefined &&
      !type.args.slice(1).some((m) => isOpaqueMarker(m, ctx))
    ) {
      type = type.args[0];
    }
    const inner = unwrapOptional(type);
    if (inner !== undefined) {
      const st = resolveOutputAnn(inner, ctx, f.line, seen);
      fields.push({ name: f.name, type: { ...st, nullable: true }, required: false });
      continue;
    }
    let st: SchemaType;
    try {
      st = resolveOutputAnn(type, ctx, f.line, seen);
    } catch (e) {
      if (e instanceof SchemaError) {
        throw new SchemaError(e.kind, `field '${f.name}': ${e.detail}`, {
          ...(e.file === undefined ? {} : { file: e.file }),
          ...(e.line === undefined ? {} : { line: e.line }),
          ...(e.hint === undefined ? {} : { hint: e.hint }),
        });
      }
      throw e;
    }
    fields.push({ name: f.name, type: st, required });
  }
  return { kind: 'object', fields };
}

// ---------------------------------------------------------------------------------------------
// The target
// ---------------------------------------------------------------------------------------------

type FuncDef = Extract<Stmt, { k: 'def' }>;

function findMethods(
  analyzer: Analyzer,
  ctx: ModuleContext,
  cls: Extract<Stmt, { k: 'class' }>,
  names: readonly string[],
  seen: Set<string>,
): Map<string, { fn: FuncDef; ctx: ModuleContext }> {
  const found = new Map<string, { fn: FuncDef; ctx: ModuleContext }>();
  const key = `${ctx.file}:${cls.name}`;
  if (seen.has(key)) return found;
  seen.add(key);
  for (const stmt of cls.body) {
    if (stmt.k === 'def' && names.includes(stmt.name) && !found.has(stmt.name))
      found.set(stmt.name, { fn: stmt, ctx });
  }
  for (const base of cls.bases) {
    const name = dottedName(base);
    if (name === undefined) continue;
    const parent = analyzer.resolveClass(ctx, name);
    if (parent === undefined) continue;
    for (const [n, m] of findMethods(analyzer, parent.ctx, parent.cls, names, seen))
      if (!found.has(n)) found.set(n, m);
  }
  return found;
}

function hasDecorator(fn: FuncDef, name: string): boolean {
  return fn.decorators.some((d) => {
    const target = d.k === 'call' ? d.func : d;
    const n = dottedName(target);
    return n === name || n?.endsWith(`.${name}`) === true;
  });
}

/** The callable a reference names: a class's run()/predict()/train(), or a module-level function. */
interface Target {
  readonly fn: FuncDef;
  /** the module the callable is defined in (a base class's may be another project file) */
  readonly ctx: ModuleContext;
  readonly isMethod: boolean;
  /** 'Predictor.predict', or the function's name */
  readonly label: string;
}

function findTarget(
  analyzer: Analyzer,
  ctx: ModuleContext,
  file: string,
  target: string,
  mode: Mode,
): Target {
  const cls = ctx.classes.get(target);
  if (cls !== undefined) {
    const wanted = mode === 'train' ? ['train'] : ['run', 'predict'];
    const methods = findMethods(analyzer, ctx, cls, wanted, new Set());
    const run = methods.get('run');
    const predict = methods.get('predict');
    const train = methods.get('train');
    if (mode === 'predict' && run !== undefined && predict !== undefined) {
      throw ctx.error(
        'method-not-found',
        `${target} must define either run() or predict(), not both`,
        cls.line,
        'remove predict() (deprecated) and keep run()',
      );
    }
    const chosen = mode === 'train' ? train : (run ?? predict);
    if (chosen === undefined) {
      throw ctx.error(
        'method-not-found',
        mode === 'train' ? `${target}.train not found` : `${target} must define run() or predict()`,
        cls.line,
      );
    }
    return { fn: chosen.fn, ctx: chosen.ctx, isMethod: true, label: `${target}.${chosen.fn.name}` };
  }
  const f = ctx.functions.get(target);
  if (f === undefined) {
    const known = [...ctx.classes.keys(), ...ctx.functions.keys()];
    throw ctx.error(
      'predictor-not-found',
      `predictor not found: no class or function named '${target}'`,
      undefined,
      known.length > 0 ? `${file} defines: ${known.join(', ')}` : undefined,
    );
  }
  return { fn: f, ctx, isMethod: false, label: f.name };
}

/** What a build reads from the predictor besides its schema: async-ness and @cog.concurrent(max=N). */
export interface PredictorMetadata {
  readonly mode: Mode;
  /** the file the callable is defined in, as error messages name it */
  readonly file: string;
  /** 'Predictor.predict', or a module-level function's name */
  readonly method: string;
  readonly line: number;
  readonly isAsync: boolean;
  /** the @cog.concurrent decorator's max (1 when given without one); undefined without the decorator */
  readonly concurrencyMax: number | undefined;
}

/** `@cog.concurrent` (cog imported as a module) or `@concurrent` (imported from cog), as upstream accepts. */
function isConcurrentDecorator(e: Expr, ctx: ModuleContext): boolean {
  if (e.k === 'attr') {
    if (e.attr !== 'concurrent' || e.value.k !== 'name') return false;
    const entry = ctx.imports.get(e.value.id);
    return entry?.module === 'cog' && entry.original === 'cog';
  }
  if (e.k === 'name') {
    const entry = ctx.imports.get(e.id);
    return entry?.module === 'cog' && entry.original === 'concurrent';
  }
  return false;
}

/** The max of the target's @cog.concurrent decorator; undefined without one. */
function concurrentMax(fn: FuncDef, ctx: ModuleContext): number | undefined {
  for (const d of fn.decorators) {
    if (!isConcurrentDecorator(d.k === 'call' ? d.func : d, ctx)) continue;
    if (d.k !== 'call' || (d.args.length === 0 && d.kwargs.length === 0)) return 1;
    const hint = 'write the number itself, e.g. @cog.concurrent(max=4): cog reads it without running Python';
    const [kw] = d.kwargs;
    if (d.args.length > 0 || d.kwargs.length !== 1 || kw?.name !== 'max')
      throw ctx.error(
        'invalid-decorator',
        '@concurrent only supports a literal integer max=... argument',
        d.line,
        hint,
      );
    const v = literal(kw.value, undefined);
    if (v?.kind !== 'int')
      throw ctx.error(
        'invalid-decorator',
        `@concurrent max must be an integer literal, not \`${exprText(kw.value)}\``,
        d.line,
        hint,
      );
    if (v.value < 1)
      throw ctx.error('invalid-decorator', `@concurrent max must be at least 1, not ${v.value}`, d.line);
    return v.value;
  }
  return undefined;
}

/** Reads the target's metadata; @cog.concurrent(max > 1) on a method that is not async is an error. */
function targetMetadata(t: Target, mode: Mode): PredictorMetadata {
  const concurrencyMax = concurrentMax(t.fn, t.ctx);
  if (concurrencyMax !== undefined && concurrencyMax > 1 && !t.fn.async) {
    throw t.ctx.error(
      'invalid-decorator',
      `${t.label}() is not async: @concurrent(max=${concurrencyMax}) requires an async ${mode === 'train' ? 'train()' : 'run() or predict()'} method`,
      t.fn.line,
      `declare it \`async def ${t.fn.name}(...)\`, or drop @concurrent to take one prediction at a time`,
    );
  }
  return {
    mode,
    file: t.ctx.file,
    method: t.label,
    line: t.fn.line,
    isAsync: t.fn.async,
    concurrencyMax,
  };
}

function mainModule(analyzer: Analyzer, source: string, file: string): ModuleContext {
  const ctx = analyzer.module(file, source);
  if (ctx === undefined) throw new SchemaError('file-not-found', `cannot read ${file}`, { file });
  return ctx;
}

/** Finds the target and reads only its metadata (not its inputs and output). */
export function analyzeMetadata(
  analyzer: Analyzer,
  source: string,
  file: string,
  target: string,
  mode: Mode,
): PredictorMetadata {
  const ctx = mainModule(analyzer, source, file);
  return targetMetadata(findTarget(analyzer, ctx, file, target, mode), mode);
}

/** Extracts the predictor signature from a module's source. */
export function analyzePredictor(
  analyzer: Analyzer,
  source: string,
  file: string,
  target: string,
  mode: Mode,
): PredictorInfo {
  const ctx = mainModule(analyzer, source, file);
  const t = findTarget(analyzer, ctx, file, target, mode);
  targetMetadata(t, mode);
  const { fn, ctx: fnCtx, isMethod, label: methodLabel } = t;

  const params = [...fn.params];
  if (isMethod) {
    const first = params[0];
    if (first === undefined || first.kind !== 'normal' || first.name !== 'self') {
      throw fnCtx.error(
        'invalid-signature',
        `${methodLabel}() must have 'self' as first argument`,
        fn.line,
        `define it as \`def ${fn.name}(self, ...)\`: cog calls it on an instance of the class`,
      );
    }
    params.shift();
  }

  const inputs: InputField[] = [];
  let order = 0;
  for (const p of params) {
    inputs.push(inputField(p, order++, fnCtx, methodLabel));
  }

  if (fn.returns === undefined) {
    throw fnCtx.error('missing-return-type', `${methodLabel}() must have a return type annotation`, fn.line);
  }
  if (fn.returns.k === 'none') {
    throw fnCtx.error(
      'missing-return-type',
      `${methodLabel}() is annotated to return None: a model returns an output (e.g. -> str, -> Path)`,
      fn.line,
    );
  }
  const returnAnn = toTypeAnn(fn.returns, fnCtx, true);
  const output = resolveOutputAnn(returnAnn, fnCtx, fn.returns.line, new Set());
  return { mode, inputs, output, streaming: mode === 'predict' && hasDecorator(fn, 'streaming') };
}

function inputField(p: Param, order: number, ctx: ModuleContext, method: string): InputField {
  if (p.kind === 'varargs' || p.kind === 'kwargs') {
    throw ctx.error(
      'invalid-signature',
      `${method}() must not have ${p.kind === 'varargs' ? '*args' : '**kwargs'} (parameter '${p.name}')`,
      p.line,
    );
  }
  if (p.kind === 'kwonly') {
    throw ctx.error(
      'invalid-signature',
      `${method}() must not have keyword-only args (parameter '${p.name}')`,
      p.line,
    );
  }
  if (p.annotation === undefined) {
    throw ctx.error(
      'missing-type-annotation',
      `parameter '${p.name}' on ${method} has no type annotation`,
      p.line,
    );
  }
  const ann = toTypeAnn(p.annotation, ctx, true);
  const { fieldType, inputType } = resolveInputAnn(ann, ctx, p.line);

  let info = emptyInfo();
  if (p.default !== undefined) {
    if (isInputCall(p.default, ctx)) info = parseInputCall(p.default, ctx, p.name);
    else {
      const ref = resolveInputReference(p.default, ctx);
      if (ref !== undefined) info = ref;
      else {
        const v = literal(p.default, ctx.scope);
        if (v === undefined) {
          const text = exprText(p.default);
          throw ctx.error(
            'default-not-resolvable',
            `parameter '${p.name}': default \`${text}\` cannot be statically resolved`,
            p.line,
          );
        }
        info.default = v;
      }
    }
  }
  if (info.defaultUnresolved && (fieldType.primitive === 'Path' || fieldType.primitive === 'File')) {
    throw ctx.error(
      'default-not-resolvable',
      `parameter '${p.name}': Path and File defaults cannot be statically resolved`,
      p.line,
    );
  }
  const field: InputField = {
    name: p.name,
    order,
    fieldType,
    inputType,
    default: info.default,
    description: info.description,
    ge: info.ge,
    le: info.le,
    minLength: info.minLength,
    maxLength: info.maxLength,
    regex: info.regex,
    choices: info.choices,
    deprecated: info.deprecated,
    accept: info.accept,
  };
  validateConstraints(field, ctx, p.line);
  return field;
}

/** The checks Cog's runtime applies to Input(...) constraints when it loads the predictor. */
function validateConstraints(f: InputField, ctx: ModuleContext, line: number): void {
  const prim = f.fieldType.primitive;
  const repr = `${f.name}: ${prim}`;
  const bad = (msg: string): SchemaError => ctx.error('invalid-constraint', msg, line);
  if (f.inputType.kind === 'union') return;
  if ((f.ge !== undefined || f.le !== undefined) && prim !== 'int' && prim !== 'float')
    throw bad(`incompatible input type for ge/le: ${repr}`);
  if ((f.minLength !== undefined || f.maxLength !== undefined) && prim !== 'str') {
    throw bad(`incompatible input type for min_length/max_length: ${repr}`);
  }
  if (f.regex !== undefined && prim !== 'str') throw bad(`incompatible input type for regex: ${repr}`);
  if (f.choices !== undefined) {
    if (prim !== 'int' && prim !== 'str') throw bad(`incompatible input type for choices: ${repr}`);
    if (f.choices.length < 2) throw bad(`choices must have >= 2 elements: ${repr}`);
    if (f.ge !== undefined || f.le !== undefined)
      throw bad(`choices and ge/le are mutually exclusive: ${repr}`);
    if (f.minLength !== undefined || f.maxLength !== undefined)
      throw bad(`choices and min_length/max_length are mutually exclusive: ${repr}`);
    if (!f.choices.every((c) => c.kind === prim))
      throw bad(`not all choices have the same type as input: ${repr}`);
  }
}
