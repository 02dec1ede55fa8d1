/**
 * A tokenizer for the subset of Python that predictor files use. It follows Python's lexical rules
 * closely enough to find statements, indentation and expressions: implicit line joining inside
 * brackets, backslash continuations, comments, every string prefix and quote style (decoded with
 * Python's escape rules), and numbers in all bases.
 */

export type TokenKind = 'name' | 'number' | 'string' | 'op' | 'newline' | 'indent' | 'dedent' | 'eof';

export interface Token {
  readonly kind: TokenKind;
  /** source text of the token (for indent/dedent/newline/eof: empty) */
  readonly text: string;
  /** 1-based line of the token start */
  readonly line: number;
  /** offsets into the source */
  readonly start: number;
  readonly end: number;
  /** strings only: the decoded value */
  readonly value?: string;
  /** strings only: an f-string (its value cannot be known statically when it has fields) */
  readonly fstring?: boolean;
  /** strings only: a bytes literal */
  readonly bytes?: boolean;
}

export class TokenizeError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

const operators = [
  '**=',
  '//=',
  '>>=',
  '<<=',
  '...',
  '->',
  '**',
  '//',
  '<<',
  '>>',
  '<=',
  '>=',
  '==',
  '!=',
  ':=',
  '+=',
  '-=',
  '*=',
  '/=',
  '%=',
  '&=',
  '|=',
  '^=',
  '@=',
];
const singleOps = new Set('()[]{},:.;@=+-*/%&|^~<>!'.split(''));
const nameStart = /[\p{L}\p{Nl}_]/u;
const nameRest = /[\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}_]/u;
const stringStart = /^([rRbBuUfF]{0,2})(['"])/;
const numberPattern =
  /^(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|(?:(?:\d(?:_?\d)*)?\.\d(?:_?\d)*|\d(?:_?\d)*\.?)(?:[eE][+-]?\d(?:_?\d)*)?)[jJ]?/;

/** Splits Python source into tokens, with NEWLINE/INDENT/DEDENT like Python's own tokenizer. */
export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  const indents = [0];
  // a UTF-8 byte order mark opening the file is not source, as CPython reads it
  let pos = source.startsWith('\uFEFF') ? 1 : 0;
  let line = 1;
  let depth = 0;
  let atLineStart = true;
  const n = source.length;

  const push = (kind: TokenKind, text: string, start: number, extra: Partial<Token> = {}): void => {
    tokens.push({ kind, text, line, start, end: start + text.length, ...extra });
  };

  while (pos < n) {
    if (atLineStart && depth === 0) {
      // measure indentation; blank and comment-only lines do not count
      let col = 0;
      let p = pos;
      while (p < n) {
        const c = source[p];
        if (c === ' ') col++;
        else if (c === '\t') col = (Math.floor(col / 8) + 1) * 8;
        else if (c === '\f') col = 0;
        else break;
        p++;
      }
      const c = source[p];
      if (p >= n) {
        pos = p;
        break;
      }
      if (c === '\n' || c === '\r' || c === '#') {
        // skip the blank or comment line
        while (p < n && source[p] !== '\n') p++;
        if (p < n) {
          p++;
          line++;
        }
        pos = p;
        continue;
      }
      if (c === '\\' && (source[p + 1] === '\n' || source[p + 1] === '\r')) {
        // a continuation right at the start of a line: treat as whitespace
        pos = p;
        atLineStart = false;
        continue;
      }
      const current = indents[indents.length - 1] ?? 0;
      if (col > current) {
        indents.push(col);
        push('indent', '', p);
      } else {
        while (col < (indents[indents.length - 1] ?? 0)) {
          indents.pop();
          push('dedent', '', p);
        }
        if (col !== (indents[indents.length - 1] ?? 0)) {
          throw new TokenizeError('unindent does not match any outer indentation level', line);
        }
      }
      pos = p;
      atLineStart = false;
    }

    const c = source[pos] ?? '';
    if (c === ' ' || c === '\t' || c === '\f') {
      pos++;
      continue;
    }
    if (c === '#') {
      while (pos < n && source[pos] !== '\n') pos++;
      continue;
    }
    if (c === '\r' && source[pos + 1] === '\n') {
      pos++;
      continue;
    }
    if (c === '\n' || c === '\r') {
      if (depth === 0) push('newline', '', pos);
      pos++;
      line++;
      atLineStart = depth === 0;
      continue;
    }
    if (c === '\\') {
      const next = source[pos + 1];
      if (next === '\n') {
        pos += 2;
        line++;
        continue;
      }
      if (next === '\r') {
        pos += source[pos + 2] === '\n' ? 3 : 2;
        line++;
        continue;
      }
      throw new TokenizeError('unexpected character after line continuation character', line);
    }

    const rest = source.slice(pos, pos + 3);
    const sm = stringStart.exec(source.slice(pos, pos + 4));
    if (sm !== null && (sm[1] === '' || /^(?:[rRuUbBfF]|[rR][bBfF]|[bBfF][rR])$/.test(sm[1] ?? ''))) {
      const startLine = line;
      const { text, value, lines } = readString(source, pos, sm[1] ?? '', startLine);
      const prefix = (sm[1] ?? '').toLowerCase();
      tokens.push({
        kind: 'string',
        text,
        line: startLine,
        start: pos,
        end: pos + text.length,
        value,
        fstring: prefix.includes('f'),
        bytes: prefix.includes('b'),
      });
      pos += text.length;
      line += lines;
      continue;
    }

    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(source[pos + 1] ?? ''))) {
      const m = numberPattern.exec(source.slice(pos, pos + 200));
      if (m !== null && m[0] !== '') {
        push('number', m[0], pos);
        pos += m[0].length;
        continue;
      }
    }

    if (nameStart.test(c)) {
      let p = pos + 1;
      while (p < n && nameRest.test(source[p] ?? '')) p++;
      push('name', source.slice(pos, p), pos);
      pos = p;
      continue;
    }

    const op = operators.find((o) => rest.startsWith(o)) ?? (singleOps.has(c) ? c : undefined);
    if (op !== undefined) {
      if (op === '(' || op === '[' || op === '{') depth++;
      else if (op === ')' || op === ']' || op === '}') depth = Math.max(0, depth - 1);
      push('op', op, pos);
      pos += op.length;
      continue;
    }
    throw new TokenizeError(`invalid character ${JSON.stringify(c)} in source`, line);
  }

  if (
    tokens.length > 0 &&
    tokens[tokens.length - 1]?.kind !== 'newline' &&
    tokens[tokens.length - 1]?.kind !== 'dedent'
  ) {
    push('newline', '', pos);
  }
  while (indents.length > 1) {
    indents.pop();
    push('dedent', '', pos);
  }
  push('eof', '', pos);
  return tokens;
}

function readString(
  source: string,
  start: number,
  prefix: string,
  startLine: number,
): { text: string; value: string; lines: number } {
  const raw = /[rR]/.test(prefix);
  const bytes = /[bB]/.test(prefix);
  let p = start + prefix.length;
  const quote = source[p] ?? '"';
  const triple = source.slice(p, p + 3) === quote.repeat(3);
  const delim = triple ? quote.repeat(3) : quote;
  p += delim.length;
  const bodyStart = p;
  let lines = 0;
  for (;;) {
    if (p >= source.length) throw new TokenizeError('unterminated string literal', startLine);
    const c = source[p];
    if (c === '\\') {
      if (source[p + 1] === '\n') lines++;
      p += 2;
      continue;
    }
    if (c === '\n') {
      if (!triple) throw new TokenizeError('unterminated string literal', startLine);
      lines++;
    }
    if (source.startsWith(delim, p)) break;
    p++;
  }
  const body = source.slice(bodyStart, p);
  const text = source.slice(start, p + delim.length);
  const normalized = body.replace(/\r\n?/g, '\n');
  return { text, value: raw ? normalized : unescape(normalized, bytes), lines };
}

const simpleEscapes: Record<string, string> = {
  '\\': '\\',
  "'": "'",
  '"': '"',
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
};

/** Python escape sequences (no \N{...} names: those are kept verbatim). */
function unescape(body: string, bytes: boolean): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i] ?? '';
    if (c !== '\\' || i + 1 >= body.length) {
      out += c;
      continue;
    }
    const e = body[i + 1] ?? '';
    if (e === '\n') {
      i++;
      continue;
    }
    const simple = simpleEscapes[e];
    if (simple !== undefined) {
      out += simple;
      i++;
      continue;
    }
    if (/[0-7]/.test(e)) {
      const m = /^[0-7]{1,3}/.exec(body.slice(i + 1)) ?? [''];
      out += String.fromCodePoint(parseInt(m[0], 8));
      i += m[0].length;
      continue;
    }
    const hexLen = e === 'x' ? 2 : !bytes && e === 'u' ? 4 : !bytes && e === 'U' ? 8 : 0;
    if (hexLen > 0) {
      const hex = body.slice(i + 2, i + 2 + hexLen);
      if (hex.length === hexLen && /^[0-9a-fA-F]+$/.test(hex)) {
        out += String.fromCodePoint(parseInt(hex, 16));
        i += 1 + hexLen;
        continue;
      }
    }
    // unknown escapes keep the backslash, as in Python
    out += c;
  }
  return out;
}
