/**
 * What a registry's bearer token grants, when it says: the distribution token spec's tokens are JWTs
 * whose payload lists `access` entries (`{type, name, actions}`). Other tokens (opaque strings, JWTs
 * without `access`) say nothing, and are taken on trust; the registry decides when it is used.
 */
import { isRecord } from '../is-record.js';

/**
 * The actions `token` grants on `repository` (e.g. `['pull']`), or undefined when the token does not
 * say (not a JWT, or no `access` list). A wildcard name or action (`*`) counts as a grant of its own.
 */
export function grantedActions(token: string, repository: string): string[] | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return undefined;
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isRecord(payload) || !Array.isArray(payload.access)) return undefined;
  const actions = new Set<string>();
  for (const entry of payload.access) {
    if (!isRecord(entry) || entry.type !== 'repository') continue;
    if (entry.name !== repository && entry.name !== '*') continue;
    if (!Array.isArray(entry.actions)) continue;
    for (const action of entry.actions) if (typeof action === 'string') actions.add(action);
  }
  return [...actions];
}

/** Whether `actions` (from grantedActions) include pushing. */
export function grantsPush(actions: readonly string[]): boolean {
  return actions.includes('push') || actions.includes('*');
}
