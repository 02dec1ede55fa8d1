#!/usr/bin/env node
// scripts/testbed-token-server.mjs — the test bed's token server: what a Bearer registry (Docker Hub,
// GHCR, r8.im) sends clients to. The test bed's token registry (distribution with `auth: token:`) names
// it as its realm and trusts the certificate whose key signs the tokens here. No dependencies, no build.
//
//   GET  /token?service=S&scope=repository:NAME:pull,push&scope=…  [Authorization: Basic user:password]
//   POST /token  (OAuth2 form) grant_type=password (username, password) or refresh_token (refresh_token)
//
// Without credentials the token grants `pull` only (on any repository); with the test bed's user and
// password it grants the actions asked for (pull, push); wrong credentials are refused (401). A token is
// an ES256 JWT (header x5c: the certificate) with the claims distribution checks: iss, aud (the service),
// exp, nbf and `access`. Each token issued is logged by its jti (never the token); so is each refusal.
//
// A repository whose last path component starts with `lapse-` gets its first token already expired (an
// hour ago) while the reply still says `expires_in`: what a revoked token, or one from a server whose
// clock runs behind, looks like to a client. The registry refuses it; a client must ask for another.
import { Buffer } from 'node:buffer';
import { X509Certificate, createPrivateKey, randomBytes, sign, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import process from 'node:process';
import { URL, URLSearchParams } from 'node:url';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string', default: '5058' },
    key: { type: 'string' },
    cert: { type: 'string' },
    issuer: { type: 'string' },
    service: { type: 'string' },
    user: { type: 'string' },
    'password-file': { type: 'string' },
    ttl: { type: 'string', default: '300' },
  },
});
for (const name of ['key', 'cert', 'issuer', 'service', 'user', 'password-file'])
  if (!opts[name]) throw new Error(`testbed-token-server: --${name} is required`);

const key = createPrivateKey(readFileSync(opts.key));
const certDer = new X509Certificate(readFileSync(opts.cert)).raw.toString('base64');
const password = readFileSync(opts['password-file'], 'utf8').trim();
const ttlSeconds = Number(opts.ttl);
/** `lapse-` repositories that have had their expired first token */
const lapsed = new Set();
/** refresh tokens handed out by the OAuth2 password grant (access_type=offline) → their account */
const refreshTokens = new Map();

const log = (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
const b64url = (value) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

function sameSecret(a, b) {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The account these credentials are, or null for wrong ones. */
const account = (user, secret) => (user === opts.user && sameSecret(secret, password) ? user : null);

/** `repository:name:pull,push` → {type, name, actions}; undefined for what is not a scope. */
function parseScope(scope) {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const actions = scope
    .slice(last + 1)
    .split(',')
    .filter(Boolean);
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions };
}

/** What `who` (an account, or '' for anonymous) gets of the access asked for. */
function grant(scopes, who) {
  const allowed = who ? ['pull', 'push'] : ['pull'];
  const byName = new Map(); // one entry per repository, however often it is asked for
  for (const asked of scopes.map(parseScope)) {
    if (asked?.type !== 'repository') continue;
    const actions = byName.get(asked.name) ?? new Set();
    for (const action of asked.actions) if (allowed.includes(action)) actions.add(action);
    byName.set(asked.name, actions);
  }
  return [...byName]
    .filter(([, actions]) => actions.size > 0)
    .map(([name, actions]) => ({ type: 'repository', name, actions: [...actions] }));
}

/** Whether this token is a `lapse-` repository's first: issued already expired. */
function lapses(access) {
  const fresh = access
    .map((a) => a.name)
    .filter((name) => name.split('/').at(-1).startsWith('lapse-') && !lapsed.has(name));
  for (const name of fresh) lapsed.add(name);
  return fresh.length > 0;
}

function issue(who, access, client) {
  const expired = lapses(access);
  const issuedAt = Math.floor(Date.now() / 1000);
  // an expired token's claims lie an hour in the past: beyond the minute of skew distribution allows
  const now = issuedAt - (expired ? 3600 : 0);
  const jti = randomBytes(12).toString('hex');
  const header = { alg: 'ES256', typ: 'JWT', x5c: [certDer] };
  const claims = {
    iss: opts.issuer,
    sub: who,
    aud: opts.service,
    exp: now + ttlSeconds,
    nbf: now - 1,
    iat: now,
    jti,
    access,
  };
  const signed = `${b64url(header)}.${b64url(claims)}`;
  const signature = sign('sha256', Buffer.from(signed), { key, dsaEncoding: 'ieee-p1363' });
  const what = access.map((a) => `${a.name}:${a.actions.join(',')}`).join(' ') || 'nothing';
  const state = expired ? ' expired' : '';
  log(`issued${state} jti=${jti} sub=${who || '(anonymous)'} client=${client} access=${what}`);
  return { token: `${signed}.${signature.toString('base64url')}`, jti, issuedAt: new Date(issuedAt * 1000) };
}

function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function refuse(res, status, code, message) {
  log(`refused ${status} ${code}: ${message}`);
  reply(res, status, { errors: [{ code, message }] });
}

function tokenReply(req, res, who, scopes, service, refreshToken) {
  if (service && service !== opts.service)
    return refuse(res, 400, 'INVALID_REQUEST', `unknown service ${JSON.stringify(service)}`);
  // who asked, by the first word of its User-Agent (cog-ts, or buildkitd's containerd client)
  const client = (req.headers['user-agent'] ?? '').split(/[\s/]/)[0] || '(none)';
  const { token, issuedAt } = issue(who, grant(scopes, who), client);
  reply(res, 200, {
    token,
    access_token: token,
    expires_in: ttlSeconds,
    issued_at: issuedAt.toISOString(),
    ...(refreshToken ? { refresh_token: refreshToken } : {}),
  });
}

/** GET: scopes in repeated (or space-separated) `scope` parameters, credentials as Basic auth. */
function getToken(req, res, url) {
  const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ').filter(Boolean));
  let who = '';
  const auth = req.headers.authorization ?? '';
  if (auth) {
    const basic = /^Basic\s+(\S+)$/i.exec(auth);
    const decoded = basic ? Buffer.from(basic[1], 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    who = colon > 0 ? account(decoded.slice(0, colon), decoded.slice(colon + 1)) : null;
    if (!who) return refuse(res, 401, 'UNAUTHORIZED', 'incorrect username or password');
  }
  tokenReply(req, res, who, scopes, url.searchParams.get('service'));
}

/** POST: the OAuth2 form, scopes space-separated in one `scope` field. */
function postToken(req, res, form) {
  const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
  const service = form.get('service');
  const grantType = form.get('grant_type');
  if (grantType === 'password') {
    const who = account(form.get('username') ?? '', form.get('password') ?? '');
    if (!who) return refuse(res, 401, 'UNAUTHORIZED', 'incorrect username or password');
    let refreshToken;
    if (form.get('access_type') === 'offline') {
      refreshToken = randomBytes(24).toString('base64url');
      refreshTokens.set(refreshToken, who);
    }
    return tokenReply(req, res, who, scopes, service, refreshToken);
  }
  if (grantType === 'refresh_token') {
    const who = refreshTokens.get(form.get('refresh_token') ?? '');
    if (!who) return refuse(res, 401, 'UNAUTHORIZED', 'unknown refresh token');
    return tokenReply(req, res, who, scopes, service);
  }
  refuse(res, 400, 'UNSUPPORTED_GRANT_TYPE', `grant_type ${JSON.stringify(grantType)} is not supported`);
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://token-server');
  if (url.pathname !== '/token') return refuse(res, 404, 'NOT_FOUND', `no ${url.pathname} here`);
  if (req.method === 'GET') return getToken(req, res, url);
  if (req.method !== 'POST') return refuse(res, 405, 'UNSUPPORTED', `${req.method} is not supported`);
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => {
    body += chunk;
  });
  req.on('end', () => postToken(req, res, new URLSearchParams(body)));
});

server.listen(Number(opts.port), '127.0.0.1', () => log(`listening on 127.0.0.1:${opts.port}`));
// nothing to finish on the way out (refresh tokens live only as long as the process)
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
