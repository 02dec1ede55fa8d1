/**
 * A parser for the parts of a Python module that describe a Cog predictor: imports, module-level
 * assignments, class definitions (bases, decorators, annotated fields, methods) and function
 * definitions (sync or async, with parameters, annotations, defaults, return annotation and
 * decorators). Other statements are skipped along with their blocks. Expressions are parsed into a
 * small AST; anything outside the supported grammar becomes an `opaque` node instead of failing.
 */
import { tokenize, TokenizeError, type Token } from './tokenizer.js';

export type Expr =
  | { readonly k: 'name'; readonly id: string; readonly line: number }
  | { readonly k: 'attr'; readonly value: Expr; readonly attr: string; readonly line: number }
  | { readonly k: 'sub'; readonly value: Expr; readonly index: readonly Expr[]; readonly line: number }
  | {
      readonly k: 'call';
      readonly func: Expr;
      readonly args: readonly Expr[];
      readonly kwargs: readonly Keyword[];
      readonly line: number;
    }
  | {
      readonly k: 'str';
      readonly value: string;
      readonly fstring: boolean;
      readonly bytes: boolean;
      readonly line: number;
    }
  | { readonly k: 'num'; readonly text: string; readonly line: number }
  | { readonly k: 'bool'; readonly value: boolean; readonly line: number }
  | { readonly k: 'none'; readonly line: number }
  | { readonly k: 'ellipsis'; readonly line: number }
  | { readonly k: 'list' | 'tuple' | 'set'; readonly elts: readonly Expr[]; readonly line: number }
  | {
      readonly k: 'dict';
      readonly keys: readonly Expr[];
      readonly values: readonly Expr[];
      readonly line: number;
    }
  | { readonly k: 'unary'; readonly op: string; readonly operand: Expr; readonly line: number }
  | {
      readonly k: 'bin';
      readonly op: string;
      readonly left: Expr;
      readonly right: Expr;
      readonly line: number;
    }
  | { readonly k: 'opaque'; readonly text: string; readonly line: number };

export interface Keyword {
  readonly name: string | undefined; // undefined for **kwargs
  readonly value: Expr;
}

export interface Param {
  readonly name: string;
  readonly kind: 'normal' | 'kwonly' | 'varargs' | 'kwargs';
  readonly annotation: Expr | undefined;
  readonly default: Expr | undefined;
  readonly line: number;
}

export type Stmt =
  | {
      readonly k: 'import';
      readonly names: readonly { module: string; alias: string | undefined }[];
      readonly line: number;
    }
  | {
      readonly k: 'from';
      readonly module: string;
      readonly names: readonly { name: string; alias: string | undefined }[];
      readonly line: number;
    }
  | {
      readonly k: 'class';
      readonly name: string;
      readonly bases: readonly Expr[];
      readonly decorators: readonly Expr[];
      readonly body: readonly Stmt[];
      readonly line: number;
    }
  | {
      readonly k: 'def';
      readonly name: string;
      readonly async: boolean;
      readonly params: readonly Param[];
      readonly returns: Expr | undefined;
      readonly decorators: readonly Expr[];
      readonly body: readonly Stmt[];
      readonly line: number;
    }
  | {
      readonly k: 'assign';
      readonly target: Expr;
      readonly annotation: Expr | undefined;
      readonly value: Expr | undefined;
      readonly line: number;
    }
  | { readonly k: 'return'; readonly value: Expr | undefined; readonly line: number }
  | { readonly k: 'other'; readonly line: number };

export class PythonSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

const compoundKeywords = new Set([
  'if',
  'elif',
  'else',
  'for',
  'while',
  'try',
  'except',
  'finally',
  'with',
  'async',
]);
const simpleKeywords = new Set([
  'pass',
  'break',
  'continue',
  'del',
  'global',
  'nonlocal',
  'raise',
  'assert',
  'yield',
  'await',
  'print',
  'lambda',
  'not',
  'type',
]);

/** Parses a module's source into statements. Throws PythonSyntaxError (with a line) on malformed input. */
export function parseModule(source: string): Stmt[] {
  let tokens: Token[];
  try {
    tokens = tokenize(source);
  } catch (e) {
    if (e instanceof TokenizeError) throw new PythonSyntaxError(e.message, e.line);
    throw e;
  }
  return new Parser(source, tokens).module();
}

/** Parses a single expression (used for string annotations such as "list[Path]"). */
export function parseExpression(source: string, line: number): Expr | undefined {
  let tokens: Token[];
  try {
    tokens = tokenize(source.trim());
  } catch {
    return undefined;
  }
  const p = new Parser(source.trim(), tokens);
  const end = tokens.findIndex((t) => t.kind === 'newline' || t.kind === 'eof');
  const expr = p.exprSpan(0, end < 0 ? tokens.length : end);
  return expr.k === 'opaque' ? undefined : relocate(expr, line);
}

function relocate(expr: Expr, line: number): Expr {
  // string annotations report the line of the string itself
  return { ...expr, line } as Expr;
}

class Parser {
  private i = 0;

  constructor(
    private readonly source: string,
    private readonly tokens: Token[],
  ) {}

  private peek(offset = 0): Token {
    const t = this.tokens[Math.min(this.i + offset, this.tokens.length - 1)];
    if (t === undefined) throw new Error('empty token stream');
    return t;
  }

  private at(index: number): Token {
    const t = this.tokens[Math.min(index, this.tokens.length - 1)];
    if (t === undefined) throw new Error('empty token stream');
    return t;
  }

  private isOp(t: Token, op: string): boolean {
    return t.kind === 'op' && t.text === op;
  }

  private expectOp(op: string): Token {
    const t = this.peek();
    if (!this.isOp(t, op)) throw new PythonSyntaxError(`expected '${op}'`, t.line);
    this.i++;
    return t;
  }

  private expectName(): Token {
    const t = this.peek();
    if (t.kind !== 'name') throw new PythonSyntaxError('expected a name', t.line);
    this.i++;
    return t;
  }

  module(): Stmt[] {
    const body: Stmt[] = [];
    while (this.peek().kind !== 'eof') {
      const t = this.peek();
      if (t.kind === 'newline' || t.kind === 'dedent') {
        this.i++;
        continue;
      }
      if (t.kind === 'indent') throw new PythonSyntaxError('unexpected indent', t.line);
      body.push(...this.statement());
    }
    return body;
  }

  /** Parses one statement (a simple-statement line may give several). */
  private statement(): Stmt[] {
    const t = this.peek();
    if (this.isOp(t, '@')) return [this.decorated()];
    if (t.kind === 'name') {
      if (t.text === 'class') return [this.classDef([])];
      if (t.text === 'def') return [this.funcDef([], false)];
      if (t.text === 'async' && this.peek(1).kind === 'name' && this.peek(1).text === 'def') {
        this.i++;
        return [this.funcDef([], true)];
      }
      if (compoundKeywords.has(t.text) || this.isSoftCompound()) {
        this.skipCompound();
        return [{ k: 'other', line: t.line }];
      }
    }
    return this.simpleStatements();
  }

  /** `match x:` / `case y:` headers (soft keywords): a name-led line that ends in ':' and opens a block. */
  private isSoftCompound(): boolean {
    const t = this.peek();
    if (t.kind !== 'name' || (t.text !== 'match' && t.text !== 'case')) return false;
    const end = this.lineEnd(this.i);
    const last = this.at(end - 1);
    return this.isOp(last, ':') && this.at(end + 1).kind === 'indent';
  }

  /** index of the NEWLINE ending the logical line that starts at `from` */
  private lineEnd(from: number): number {
    let j = from;
    while (j < this.tokens.length && this.at(j).kind !== 'newline' && this.at(j).kind !== 'eof') j++;
    return j;
  }

  private skipCompound(): void {
    // header up to NEWLINE, then an optional indented block; handles `else:` chains naturally
    const end = this.lineEnd(this.i);
    this.i = end + 1;
    if (this.peek().kind === 'indent') this.skipBlock();
  }

  private skipBlock(): void {
    let level = 0;
    while (this.peek().kind !== 'eof') {
      const t = this.peek();
      this.i++;
      if (t.kind === 'indent') level++;
      else if (t.kind === 'dedent') {
        level--;
        if (level === 0) return;
      }
    }
  }

  private decorated(): Stmt {
    const decorators: Expr[] = [];
    while (this.isOp(this.peek(), '@')) {
      this.i++;
      const end = this.lineEnd(this.i);
      decorators.push(this.exprSpan(this.i, end));
      this.i = end + 1;
    }
    const t = this.peek();
    if (t.kind === 'name' && t.text === 'class') return this.classDef(decorators);
    if (t.kind === 'name' && t.text === 'def') return this.funcDef(decorators, false);
    if (t.kind === 'name' && t.text === 'async' && this.peek(1).text === 'def') {
      this.i++;
      return this.funcDef(decorators, true);
    }
    throw new PythonSyntaxError('expected a class or function definition after a decorator', t.line);
  }

  private classDef(decorators: Expr[]): Stmt {
    const line = this.expectName().line; // 'class'
    const name = this.expectName().text;
    let bases: Expr[] = [];
    if (this.isOp(this.peek(), '(')) {
      const call = this.callArgs();
      bases = call.args;
    }
    this.expectOp(':');
    const body = this.suite();
    return { k: 'class', name, bases, decorators, body, line };
  }

  private funcDef(decorators: Expr[], isAsync: boolean): Stmt {
    const line = this.expectName().line; // 'def'
    const name = this.expectName().text;
    const open = this.expectOp('(');
    const close = this.matching(this.i - 1);
    if (close < 0) throw new PythonSyntaxError("'(' was never closed", open.line);
    const params = this.params(this.i, close);
    this.i = close + 1;
    let returns: Expr | undefined;
    if (this.isOp(this.peek(), '->')) {
      this.i++;
      const end = this.findStop(this.i, [':']);
      returns = this.exprSpan(this.i, end);
      this.i = end;
    }
    this.expectOp(':');
    const body = this.suite();
    return { k: 'def', name, async: isAsync, params, returns, decorators, body, line };
  }

  /** Body after a ':' — an indented block, or simple statements on the same line. */
  private suite(): Stmt[] {
    if (this.peek().kind === 'newline') {
      this.i++;
      const t = this.peek();
      if (t.kind !== 'indent') throw new PythonSyntaxError('expected an indented block', t.line);
      this.i++;
      const body: Stmt[] = [];
      while (this.peek().kind !== 'dedent' && this.peek().kind !== 'eof') {
        if (this.peek().kind === 'newline') {
          this.i++;
          continue;
        }
        body.push(...this.statement());
      }
      if (this.peek().kind === 'dedent') this.i++;
      return body;
    }
    return this.simpleStatements();
  }

  /** index of the bracket closing the one at `openIndex`, or -1 */
  private matching(openIndex: number): number {
    let depth = 0;
    for (let j = openIndex; j < this.tokens.length; j++) {
      const t = this.at(j);
      if (t.kind === 'eof') return -1;
      if (t.kind !== 'op') continue;
      if (t.text === '(' || t.text === '[' || t.text === '{') depth++;
      else if (t.text === ')' || t.text === ']' || t.text === '}') {
        depth--;
        if (depth === 0) return j;
      }
    }
    return -1;
  }

  /** first index at or after `from` holding one of `stops` at bracket depth 0 (or the line end) */
  findStop(from: number, stops: readonly string[], limit = this.tokens.length): number {
    let depth = 0;
    let lambdas = 0;
    for (let j = from; j < limit; j++) {
      const t = this.at(j);
      if (t.kind === 'newline' || t.kind === 'eof') return j;
      if (t.kind === 'name' && t.text === 'lambda' && depth === 0) lambdas++;
      if (t.kind !== 'op') continue;
      if (depth === 0 && stops.includes(t.text)) {
        if (t.text === ':' && lambdas > 0) {
          lambdas--;
          continue;
        }
        return j;
      }
      if (t.text === '(' || t.text === '[' || t.text === '{') depth++;
      else if (t.text === ')' || t.text === ']' || t.text === '}') {
        if (depth === 0) return j;
        depth--;
      }
    }
    return limit;
  }

  private params(from: number, to: number): Param[] {
    const params: Param[] = [];
    let kwonly = false;
    let j = from;
    while (j < to) {
      const t = this.at(j);
      if (this.isOp(t, ',')) {
        j++;
        continue;
      }
      if (this.isOp(t, '/')) {
        j++;
        continue;
      }
      let kind: Param['kind'] = kwonly ? 'kwonly' : 'normal';
      if (this.isOp(t, '*') || this.isOp(t, '**')) {
        const next = this.at(j + 1);
        if (this.isOp(t, '*') && (this.isOp(next, ',') || j + 1 >= to)) {
          kwonly = true;
          j++;
          continue;
        }
        kind = t.text === '*' ? 'varargs' : 'kwargs';
        if (kind === 'varargs') kwonly = true;
        j++;
      }
      const nameTok = this.at(j);
      if (nameTok.kind !== 'name') throw new PythonSyntaxError('expected a parameter name', nameTok.line);
      j++;
      let annotation: Expr | undefined;
      let def: Expr | undefined;
      if (this.isOp(this.at(j), ':')) {
        const end = this.findStop(j + 1, [',', '='], to);
        annotation = this.exprSpan(j + 1, end);
        j = end;
      }
      if (this.isOp(this.at(j), '=')) {
        const end = this.findStop(j + 1, [','], to);
        def = this.exprSpan(j + 1, end);
        j = end;
      }
      // CPython refuses the definition at compile time
      if (params.some((p) => p.name === nameTok.text))
        throw new PythonSyntaxError(
          `duplicate argument '${nameTok.text}' in function definition`,
          nameTok.line,
        );
      params.push({ name: nameTok.text, kind, annotation, default: def, line: nameTok.line });
    }
    return params;
  }

  /** `( args )` of a call or class header; leaves the cursor after ')' */
  private callArgs(): { args: Expr[]; kwargs: Keyword[] } {
    const openIndex = this.i;
    const close = this.matching(openIndex);
    if (close < 0) throw new PythonSyntaxError("'(' was never closed", this.at(openIndex).line);
    const result = this.argList(openIndex + 1, close);
    this.i = close + 1;
    return result;
  }

  private argList(from: number, to: number): { args: Expr[]; kwargs: Keyword[] } {
    const args: Expr[] = [];
    const kwargs: Keyword[] = [];
    let j = from;
    while (j < to) {
      if (this.isOp(this.at(j), ',')) {
        j++;
        continue;
      }
      const end = this.findStop(j, [','], to);
      const t = this.at(j);
      if (t.kind === 'name' && this.isOp(this.at(j + 1), '=')) {
        kwargs.push({ name: t.text, value: this.exprSpan(j + 2, end) });
      } else if (this.isOp(t, '**')) {
        kwargs.push({ name: undefined, value: this.exprSpan(j + 1, end) });
      } else {
        args.push(this.exprSpan(j, end));
      }
      j = end;
    }
    return { args, kwargs };
  }

  private simpleStatements(): Stmt[] {
    const out: Stmt[] = [];
    const end = this.lineEnd(this.i);
    while (this.i < end) {
      const stop = this.findStop(this.i, [';'], end);
      if (stop > this.i) out.push(this.simpleStatement(this.i, stop));
      this.i = stop + (stop < end ? 1 : 0);
    }
    this.i = end + 1;
    return out;
  }

  private simpleStatement(from: number, to: number): Stmt {
    const t = this.at(from);
    const line = t.line;
    if (t.kind === 'name') {
      if (t.text === 'import') return this.importStmt(from + 1, to, line);
      if (t.text === 'from') return this.fromStmt(from + 1, to, line);
      if (t.text === 'return')
        return { k: 'return', value: from + 1 < to ? this.exprSpan(from + 1, to) : undefined, line };
      if (simpleKeywords.has(t.text) && t.text !== 'type') return { k: 'other', line };
    }
    // assignment: `target = value`, `target: annotation [= value]`
    const colon = this.findStop(from, [':', '='], to);
    if (colon < to && this.isOp(this.at(colon), ':')) {
      const eq = this.findStop(colon + 1, ['='], to);
      return {
        k: 'assign',
        target: this.exprSpan(from, colon),
        annotation: this.exprSpan(colon + 1, eq),
        value: eq < to ? this.exprSpan(eq + 1, to) : undefined,
        line,
      };
    }
    if (colon < to && this.isOp(this.at(colon), '=')) {
      // chained assignment: the value is after the last '='
      let last = colon;
      for (let j = this.findStop(colon + 1, ['='], to); j < to; j = this.findStop(j + 1, ['='], to)) last = j;
      return {
        k: 'assign',
        target: this.exprSpan(from, colon),
        annotation: undefined,
        value: this.exprSpan(last + 1, to),
        line,
      };
    }
    return { k: 'other', line };
  }

  private dotted(j: number, to: number): { name: string; next: number } {
    let name = '';
    while (j < to && (this.isOp(this.at(j), '.') || this.isOp(this.at(j), '...'))) {
      name += this.at(j).text;
      j++;
    }
    while (j < to && this.at(j).kind === 'name') {
      name += this.at(j).text;
      j++;
      if (j < to && this.isOp(this.at(j), '.') && this.at(j + 1).kind === 'name') {
        name += '.';
        j++;
      } else break;
    }
    return { name, next: j };
  }

  private importStmt(from: number, to: number, line: number): Stmt {
    const names: { module: string; alias: string | undefined }[] = [];
    let j = from;
    while (j < to) {
      if (this.isOp(this.at(j), ',')) {
        j++;
        continue;
      }
      const d = this.dotted(j, to);
      if (d.next === j) throw new PythonSyntaxError('invalid import statement', line);
      j = d.next;
      let alias: string | undefined;
      if (this.at(j).kind === 'name' && this.at(j).text === 'as') {
        alias = this.at(j + 1).text;
        j += 2;
      }
      names.push({ module: d.name, alias });
    }
    return { k: 'import', names, line };
  }

  private fromStmt(from: number, to: number, line: number): Stmt {
    const d = this.dotted(from, to);
    let j = d.next;
    if (!(this.at(j).kind === 'name' && this.at(j).text === 'import'))
      throw new PythonSyntaxError('invalid from-import statement', line);
    j++;
    const names: { name: string; alias: string | undefined }[] = [];
    while (j < to) {
      const t = this.at(j);
      if (this.isOp(t, ',') || this.isOp(t, '(') || this.isOp(t, ')')) {
        j++;
        continue;
      }
      if (this.isOp(t, '*')) {
        names.push({ name: '*', alias: undefined });
        j++;
        continue;
      }
      if (t.kind !== 'name') throw new PythonSyntaxError('invalid from-import statement', line);
      let alias: string | undefined;
      j++;
      if (this.at(j).kind === 'name' && this.at(j).text === 'as') {
        alias = this.at(j + 1).text;
        j += 2;
      }
      names.push({ name: t.text, alias });
    }
    return { k: 'from', module: d.name, names, line };
  }

  // ---------------------------------------------------------------------------------------------
  // Expressions
  // ---------------------------------------------------------------------------------------------

  /** Parses tokens [from, to) as one expression; anything unsupported becomes an opaque node. */
  exprSpan(from: number, to: number): Expr {
    const first = this.at(from);
    if (to <= from) return { k: 'opaque', text: '', line: first.line };
    const saved = this.i;
    const savedLimit = this.limit;
    try {
      this.i = from;
      this.limit = to;
      const expr = this.exprOrTuple();
      if (this.i === to) return expr;
    } catch (e) {
      if (!(e instanceof ExprError)) throw e;
    } finally {
      this.i = saved;
      this.limit = savedLimit;
    }
    const last = this.at(to - 1);
    return { k: 'opaque', text: this.source.slice(first.start, last.end), line: first.line };
  }

  private limit = 0;

  private cur(): Token | undefined {
    return this.i < this.limit ? this.at(this.i) : undefined;
  }

  private curOp(op: string): boolean {
    const t = this.cur();
    return t !== undefined && t.kind === 'op' && t.text === op;
  }

  private exprOrTuple(): Expr {
    const line = this.cur()?.line ?? 0;
    const first = this.test();
    if (!this.curOp(',')) return first;
    const elts = [first];
    while (this.curOp(',')) {
      this.i++;
      if (this.cur() === undefined) break;
      elts.push(this.test());
    }
    return { k: 'tuple', elts, line };
  }

  private test(): Expr {
    const t = this.cur();
    if (t?.kind === 'name' && (t.text === 'lambda' || t.text === 'yield' || t.text === 'await'))
      throw new ExprError();
    const e = this.orTest();
    const n = this.cur();
    if (n?.kind === 'name' && (n.text === 'if' || n.text === 'for' || n.text === 'async'))
      throw new ExprError();
    return e;
  }

  private orTest(): Expr {
    let left = this.andTest();
    while (this.cur()?.kind === 'name' && this.cur()?.text === 'or') {
      this.i++;
      left = { k: 'bin', op: 'or', left, right: this.andTest(), line: left.line };
    }
    return left;
  }

  private andTest(): Expr {
    let left = this.notTest();
    while (this.cur()?.kind === 'name' && this.cur()?.text === 'and') {
      this.i++;
      left = { k: 'bin', op: 'and', left, right: this.notTest(), line: left.line };
    }
    return left;
  }

  private notTest(): Expr {
    const t = this.cur();
    if (t?.kind === 'name' && t.text === 'not') {
      this.i++;
      return { k: 'unary', op: 'not', operand: this.notTest(), line: t.line };
    }
    return this.comparison();
  }

  private comparison(): Expr {
    let left = this.binary(0);
    for (;;) {
      const t = this.cur();
      if (t === undefined) return left;
      let op: string | undefined;
      if (t.kind === 'op' && ['<', '>', '==', '>=', '<=', '!='].includes(t.text)) op = t.text;
      else if (t.kind === 'name' && (t.text === 'in' || t.text === 'is' || t.text === 'not')) op = t.text;
      if (op === undefined) return left;
      this.i++;
      if (
        (op === 'is' || op === 'not') &&
        this.cur()?.kind === 'name' &&
        ['not', 'in'].includes(this.cur()?.text ?? '')
      )
        this.i++;
      left = { k: 'bin', op, left, right: this.binary(0), line: left.line };
    }
  }

  private static readonly levels: readonly (readonly string[])[] = [
    ['|'],
    ['^'],
    ['&'],
    ['<<', '>>'],
    ['+', '-'],
    ['*', '/', '//', '%', '@'],
  ];

  private binary(level: number): Expr {
    const ops = Parser.levels[level];
    if (ops === undefined) return this.factor();
    let left = this.binary(level + 1);
    for (;;) {
      const t = this.cur();
      if (t?.kind !== 'op' || !ops.includes(t.text)) return left;
      this.i++;
      left = { k: 'bin', op: t.text, left, right: this.binary(level + 1), line: left.line };
    }
  }

  private factor(): Expr {
    const t = this.cur();
    if (t?.kind === 'op' && (t.text === '-' || t.text === '+' || t.text === '~')) {
      this.i++;
      return { k: 'unary', op: t.text, operand: this.factor(), line: t.line };
    }
    return this.power();
  }

  private power(): Expr {
    const base = this.primary();
    if (this.curOp('**')) {
      this.i++;
      return { k: 'bin', op: '**', left: base, right: this.factor(), line: base.line };
    }
    return base;
  }

  private primary(): Expr {
    let e = this.atom();
    for (;;) {
      if (this.curOp('.')) {
        this.i++;
        const n = this.cur();
        if (n?.kind !== 'name') throw new ExprError();
        this.i++;
        e = { k: 'attr', value: e, attr: n.text, line: e.line };
      } else if (this.curOp('(')) {
        const close = this.matching(this.i);
        if (close < 0 || close >= this.limit) throw new ExprError();
        const saved = this.limit;
        const { args, kwargs } = this.argList(this.i + 1, close);
        this.limit = saved;
        this.i = close + 1;
        e = { k: 'call', func: e, args, kwargs, line: e.line };
      } else if (this.curOp('[')) {
        const close = this.matching(this.i);
        if (close < 0 || close >= this.limit) throw new ExprError();
        const inner = this.exprSpan(this.i + 1, close);
        this.i = close + 1;
        const index = inner.k === 'tuple' ? inner.elts : [inner];
        e = { k: 'sub', value: e, index, line: e.line };
      } else return e;
    }
  }

  private atom(): Expr {
    const t = this.cur();
    if (t === undefined) throw new ExprError();
    if (t.kind === 'name') {
      this.i++;
      if (t.text === 'True' || t.text === 'False')
        return { k: 'bool', value: t.text === 'True', line: t.line };
      if (t.text === 'None') return { k: 'none', line: t.line };
      return { k: 'name', id: t.text, line: t.line };
    }
    if (t.kind === 'number') {
      this.i++;
      return { k: 'num', text: t.text, line: t.line };
    }
    if (t.kind === 'string') {
      // implicit concatenation of adjacent literals
      let value = '';
      let fstring = false;
      let bytes = false;
      while (this.cur()?.kind === 'string') {
        const s = this.cur();
        value += s?.value ?? '';
        fstring ||= s?.fstring === true && /[{}]/.test(s.value ?? '');
        bytes ||= s?.bytes === true;
        this.i++;
      }
      return { k: 'str', value, fstring, bytes, line: t.line };
    }
    if (t.kind === 'op') {
      if (t.text === '...') {
        this.i++;
        return { k: 'ellipsis', line: t.line };
      }
      if (t.text === '(' || t.text === '[' || t.text === '{') {
        const close = this.matching(this.i);
        if (close < 0 || close >= this.limit) throw new ExprError();
        const from = this.i + 1;
        this.i = close + 1;
        return this.display(t.text, from, close, t.line);
      }
    }
    throw new ExprError();
  }

  private display(open: string, from: number, to: number, line: number): Expr {
    if (open === '{') {
      if (from === to) return { k: 'dict', keys: [], values: [], line };
      const items = this.splitTop(from, to);
      const firstColon = items[0] === undefined ? to : this.findStop(items[0][0], [':'], items[0][1]);
      if (items[0] !== undefined && firstColon < items[0][1]) {
        const keys: Expr[] = [];
        const values: Expr[] = [];
        for (const [a, b] of items) {
          const c = this.findStop(a, [':'], b);
          if (c >= b) throw new ExprError();
          keys.push(this.strict(a, c));
          values.push(this.strict(c + 1, b));
        }
        return { k: 'dict', keys, values, line };
      }
      return { k: 'set', elts: items.map(([a, b]) => this.strict(a, b)), line };
    }
    const items = this.splitTop(from, to);
    const elts = items.map(([a, b]) => this.strict(a, b));
    if (open === '[') return { k: 'list', elts, line };
    // parentheses: a tuple when there is a comma, else a grouped expression
    const hasComma = to > from && this.findStop(from, [','], to) < to;
    if (!hasComma) {
      if (elts[0] === undefined) return { k: 'tuple', elts: [], line };
      return elts[0];
    }
    return { k: 'tuple', elts, line };
  }

  private strict(from: number, to: number): Expr {
    const e = this.exprSpan(from, to);
    if (e.k === 'opaque') throw new ExprError();
    return e;
  }

  /** ranges of comma-separated items in [from, to) at depth 0 */
  private splitTop(from: number, to: number): [number, number][] {
    const out: [number, number][] = [];
    let j = from;
    while (j < to) {
      const end = this.findStop(j, [','], to);
      if (end > j) out.push([j, end]);
      j = end + 1;
    }
    return out;
  }
}

class ExprError extends Error {}

/** Source-like text of an expression that is a dotted name (`a`, `a.b.c`), else undefined. */
export function dottedName(e: Expr): string | undefined {
  if (e.k === 'name') return e.id;
  if (e.k === 'attr') {
    const base = dottedName(e.value);
    return base === undefined ? undefined : `${base}.${e.attr}`;
  }
  return undefined;
}

/** Python-like source text of an expression (for error messages). */
export function exprText(e: Expr): string {
  switch (e.k) {
    case 'name':
      return e.id;
    case 'attr':
      return `${exprText(e.value)}.${e.attr}`;
    case 'sub':
      return `${exprText(e.value)}[${e.index.map(exprText).join(', ')}]`;
    case 'call':
      return `${exprText(e.func)}(${[...e.args.map(exprText), ...e.kwargs.map((k) => (k.name === undefined ? `**${exprText(k.value)}` : `${k.name}=${exprText(k.value)}`))].join(', ')})`;
    case 'str':
      return JSON.stringify(e.value);
    case 'num':
      return e.text;
    case 'bool':
      return e.value ? 'True' : 'False';
    case 'none':
      return 'None';
    case 'ellipsis':
      return '...';
    case 'list':
      return `[${e.elts.map(exprText).join(', ')}]`;
    case 'tuple':
      return `(${e.elts.map(exprText).join(', ')}${e.elts.length === 1 ? ',' : ''})`;
    case 'set':
      return `{${e.elts.map(exprText).join(', ')}}`;
    case 'dict':
      return `{${e.keys.map((k, i) => `${exprText(k)}: ${e.values[i] === undefined ? '' : exprText(e.values[i])}`).join(', ')}}`;
    case 'unary':
      return e.op === 'not' ? `not ${exprText(e.operand)}` : `${e.op}${exprText(e.operand)}`;
    case 'bin':
      return `${exprText(e.left)} ${e.op} ${exprText(e.right)}`;
    case 'opaque':
      return e.text;
  }
}
