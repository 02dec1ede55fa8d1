/**
 * The shape every OpenAPI schema a build puts in `run.cog.openapi_schema` must have, checked as upstream's
 * build validates it (kin-openapi) before labelling: a given file, or the one the legacy SDK writes. Pure.
 */
import { isRecord } from '../is-record.js';

/** How a JSON value that is not an object is named: "an array", "null", "a number", ... */
function jsonKind(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return `a ${typeof value}`;
}

/** What keeps `doc` from being an OpenAPI 3 document a model's consumers can read; undefined when none. */
export function openApiDocumentProblem(doc: unknown): string | undefined {
  if (!isRecord(doc)) return `it is ${jsonKind(doc)}, not an OpenAPI document (a JSON object)`;
  if (typeof doc.openapi !== 'string' || !/^3\.\d+/.test(doc.openapi))
    return `its "openapi" field is ${doc.openapi === undefined ? 'missing' : JSON.stringify(doc.openapi)} (an OpenAPI 3 document says e.g. "3.0.2")`;
  if (!isRecord(doc.info) || typeof doc.info.title !== 'string' || typeof doc.info.version !== 'string')
    return 'its "info" needs a "title" and a "version" (strings)';
  if (!isRecord(doc.paths)) return 'it has no "paths" object';
  if (doc.components !== undefined && !isRecord(doc.components)) return 'its "components" is not an object';
  return undefined;
}
