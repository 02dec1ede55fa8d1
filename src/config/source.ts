// The YAML text of a config file: parsing with positions, and mapping a field path back to the
// line and column it was written at.
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node, Pair, YAMLMap } from 'yaml';
import type { ConfigIssue, FieldPath, SourceLocation } from './issues.js';

export interface YamlSource {
  /** file name as shown in messages */
  file: string;
  doc: Document.Parsed;
  lineCounter: LineCounter;
}

/** Parse YAML text. Syntax errors come back as issues naming file:line:column. */
export function parseYamlSource(text: string, file: string): { source: YamlSource; errors: ConfigIssue[] } {
  const lineCounter = new LineCounter();
  // YAML 1.2 core schema, like go-yaml v4; duplicate keys are an error in both;
  // merge keys (`<<: *base`) as go-yaml reads them
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, merge: true });
  const source: YamlSource = { file, doc, lineCounter };
  const errors = doc.errors.map((err): ConfigIssue => {
    const pos = lineCounter.linePos(err.pos[0]);
    const firstLine =
      err.code === 'MULTIPLE_DOCS'
        ? `${file} holds more than one YAML document (a second one starts here); keep one`
        : (err.message.split('\n')[0] ?? err.message);
    return {
      field: file,
      message: `invalid YAML: ${firstLine.replace(/ at line \d+, column \d+:?$/, '')}`,
      location: { file, line: pos.line, column: pos.col },
    };
  });
  return { source, errors };
}

/** Where a node starts. */
export function nodeLocation(source: YamlSource, node: { range?: unknown }): SourceLocation | undefined {
  const range = node.range;
  if (!Array.isArray(range) || typeof range[0] !== 'number') return undefined;
  const pos = source.lineCounter.linePos(range[0]);
  return { file: source.file, line: pos.line, column: pos.col };
}

/** An alias as the node its anchor names; any other node as it is. */
export function resolved(source: YamlSource, node: unknown): unknown {
  return isAlias(node) ? node.resolve(source.doc) : node;
}

/**
 * The entry for `key` in a mapping: its own, else one a merge key (`<<: *base`, or a list of them)
 * brings in, as the document's value reads it.
 */
function pairFor(source: YamlSource, map: YAMLMap, key: string, depth = 0): Pair | undefined {
  const own = map.items.find(
    (p) => isScalar(p.key) && typeof p.key.value !== 'symbol' && String(p.key.value) === key,
  );
  if (own || depth > 20) return own;
  for (const merge of map.items) {
    if (!isScalar(merge.key) || typeof merge.key.value !== 'symbol') continue;
    for (const from of isSeq(merge.value) ? merge.value.items : [merge.value]) {
      const target = resolved(source, from);
      const found = isMap(target) ? pairFor(source, target, key, depth + 1) : undefined;
      if (found) return found;
    }
  }
  return undefined;
}

/** The AST node at a path (through aliases and merge keys), or undefined. */
export function nodeAt(source: YamlSource, path: FieldPath): Node | undefined {
  let node: unknown = source.doc.contents;
  for (const key of path) {
    node = resolved(source, node);
    // weights[i].source may be one mapping that the schema turned into a one-item list
    if (isMap(node) && typeof key === 'number' && key === 0) continue;
    if (isMap(node)) {
      node = pairFor(source, node, String(key))?.value ?? undefined;
    } else if (isSeq(node) && typeof key === 'number') {
      node = node.items[key];
    } else {
      return undefined;
    }
    if (node === undefined || node === null) return undefined;
  }
  return (node ?? undefined) as Node | undefined;
}

/**
 * The location of the value at `path`; if it is missing (a required key left out), the location of
 * the nearest ancestor that exists. Undefined for an empty document.
 */
export function locate(source: YamlSource, path: FieldPath): SourceLocation | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = nodeAt(source, path.slice(0, n));
    if (node !== undefined) {
      // For a value that exists, point at it; for an ancestor mapping, point at its key if we can.
      if (n < path.length && n > 0) {
        const keyLoc = keyLocation(source, path.slice(0, n));
        if (keyLoc !== undefined) return keyLoc;
      }
      return nodeLocation(source, node);
    }
  }
  return undefined;
}

/** Location of the key of the map entry at `path` (path must end in a string key). */
export function keyLocation(source: YamlSource, path: FieldPath): SourceLocation | undefined {
  const last = path[path.length - 1];
  if (typeof last !== 'string') return undefined;
  const parent = resolved(
    source,
    path.length === 1 ? source.doc.contents : nodeAt(source, path.slice(0, -1)),
  );
  if (!isMap(parent)) return undefined;
  const pair = pairFor(source, parent, last);
  return pair !== undefined && isScalar(pair.key) ? nodeLocation(source, pair.key) : undefined;
}

/**
 * The text of a scalar as written. Go's YAML decoder fills string fields from the raw scalar, so an
 * unquoted `python_version: 3.10` means "3.10" there; JavaScript would read the number 3.1.
 */
export function scalarSourceText(source: YamlSource, path: FieldPath): string | undefined {
  const node = nodeAt(source, path);
  if (!isScalar(node)) return undefined;
  if (typeof node.value === 'number' || typeof node.value === 'bigint') {
    return node.source ?? String(node.value);
  }
  return undefined;
}
