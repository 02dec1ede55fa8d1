/**
 * Which HTTP proxy a registry request goes through: HTTPS_PROXY, HTTP_PROXY and NO_PROXY, read the
 * way Go's net/http reads them (what docker, crane and buildkitd do, so one setting serves them all):
 *
 * - each variable by its uppercase name, else its lowercase one;
 * - HTTPS_PROXY for https:// URLs, HTTP_PROXY for http:// ones (an https:// URL without HTTPS_PROXY
 *   goes direct); a proxy address without a scheme is `http://`;
 * - never for `localhost` or a loopback address;
 * - NO_PROXY: comma-separated; `*` for every host; an IP address or CIDR range; a host name, which
 *   matches itself and its subdomains, or with a leading `.` (or `*.`) its subdomains only; a host
 *   name or IP address may carry a `:port`, matching only that port;
 * - an address cog cannot use (socks5://, no host) fails only a request that would go through it.
 *
 * Pure: the environment comes in as an argument.
 */
import { BlockList, isIP } from 'node:net';
import { CogError } from '../errors.js';

interface NoProxyRule {
  /** `.example.com`: any name ending so; with matchHost, `example.com` itself too */
  readonly domain?: string;
  readonly matchHost?: boolean;
  readonly ip?: string;
  readonly cidr?: BlockList;
  /** '' for any port */
  readonly port: string;
}

export interface ProxySettings {
  /**
   * the proxy for http:// URLs, or the error its variable's value makes: thrown by proxyFor only for a
   * request that would go through it (a registry on loopback or in NO_PROXY works whatever it says, as
   * in Go, which also takes socks5:// there)
   */
  readonly httpProxy: URL | CogError | undefined;
  /** the proxy for https:// URLs, or the error its variable's value makes (as httpProxy) */
  readonly httpsProxy: URL | CogError | undefined;
  /** NO_PROXY is `*` */
  readonly noneProxied: boolean;
  readonly noProxy: readonly NoProxyRule[];
}

const defaultPorts: Record<string, string> = { 'http:': '80', 'https:': '443' };

function envAny(env: NodeJS.ProcessEnv, upper: string): string {
  return (env[upper] || env[upper.toLowerCase()] || '').trim();
}

/** A proxy address as a URL (`host:port` is `http://host:port`); a CogError naming the variable if it is none. */
function proxyUrl(value: string, variable: string): URL | undefined {
  if (!value) return undefined;
  const spelled = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  const url = URL.canParse(spelled) ? new URL(spelled) : undefined;
  if (!url?.hostname || !['http:', 'https:'].includes(url.protocol))
    throw new CogError(`${variable} is not a proxy address cog can use`, {
      hint: `set ${variable} to http://host:port (or https://host:port), or unset it; cog-ts speaks to HTTP proxies only`,
    });
  // the credentials are sent decoded: a stray % fails there, as an error about the registry's request
  if (!decodes(url.username) || !decodes(url.password))
    throw new CogError(`the user or password in ${variable} has a % that starts no escape`, {
      hint: `write a % in them as %25 (and @ as %40, : as %3A) in ${variable}`,
    });
  return url;
}

function decodes(text: string): boolean {
  try {
    decodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}

/** `host:port` → [host, port]; brackets of an IPv6 address removed. */
function splitHostPort(spelled: string): [string, string] {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(spelled);
  if (bracketed) return [bracketed[1]!, bracketed[2] ?? ''];
  const withPort = /^([^:]+):(\d+)$/.exec(spelled);
  if (withPort) return [withPort[1]!, withPort[2]!];
  return [spelled, ''];
}

function parseNoProxy(value: string): { all: boolean; rules: NoProxyRule[] } {
  const rules: NoProxyRule[] = [];
  for (const raw of value.split(',')) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return { all: true, rules: [] };
    const slash = entry.indexOf('/');
    if (slash > 0) {
      const [address, bits] = [entry.slice(0, slash), Number(entry.slice(slash + 1))];
      const family = isIP(address);
      if (family && Number.isInteger(bits)) {
        const cidr = new BlockList();
        try {
          cidr.addSubnet(address, bits, family === 6 ? 'ipv6' : 'ipv4');
          rules.push({ cidr, port: '' });
        } catch {
          // a prefix length out of range matches nothing (Go skips what it cannot parse too)
        }
      }
      continue;
    }
    const [host, port] = splitHostPort(entry);
    if (isIP(host)) {
      rules.push({ ip: host, port });
      continue;
    }
    const name = host.startsWith('*.') ? host.slice(1) : host;
    rules.push(name.startsWith('.') ? { domain: name, port } : { domain: `.${name}`, matchHost: true, port });
  }
  return { all: false, rules };
}

/** proxyUrl, with the error it throws for a value it cannot use returned instead */
function proxyUrlOrError(env: NodeJS.ProcessEnv, variable: string): URL | CogError | undefined {
  try {
    return proxyUrl(envAny(env, variable), variable);
  } catch (err) {
    if (err instanceof CogError) return err;
    throw err;
  }
}

/** The proxy settings of `env`; undefined when no proxy is set (every request goes direct). */
export function proxySettings(env: NodeJS.ProcessEnv): ProxySettings | undefined {
  const httpProxy = proxyUrlOrError(env, 'HTTP_PROXY');
  const httpsProxy = proxyUrlOrError(env, 'HTTPS_PROXY');
  if (!httpProxy && !httpsProxy) return undefined;
  const { all, rules } = parseNoProxy(envAny(env, 'NO_PROXY'));
  return { httpProxy, httpsProxy, noneProxied: all, noProxy: rules };
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '0:0:0:0:0:0:0:1';
}

function exempt(rule: NoProxyRule, host: string, port: string, family: number): boolean {
  if (rule.port && rule.port !== port) return false;
  if (rule.cidr) return family !== 0 && rule.cidr.check(host, family === 6 ? 'ipv6' : 'ipv4');
  if (rule.ip) return host === rule.ip;
  const domain = rule.domain!;
  return host.endsWith(domain) || (rule.matchHost === true && host === domain.slice(1));
}

/**
 * The proxy a request to `url` goes through, or undefined for a direct connection.
 * @throws CogError naming the variable when that proxy's address is none cog can use
 */
export function proxyFor(url: URL, settings: ProxySettings | undefined): URL | undefined {
  if (!settings) return undefined;
  const proxy =
    url.protocol === 'https:'
      ? settings.httpsProxy
      : url.protocol === 'http:'
        ? settings.httpProxy
        : undefined;
  if (!proxy || settings.noneProxied) return undefined;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (isLoopback(host)) return undefined;
  const port = url.port || defaultPorts[url.protocol] || '';
  const family = isIP(host);
  if (settings.noProxy.some((rule) => exempt(rule, host, port, family))) return undefined;
  if (proxy instanceof CogError) throw proxy;
  return proxy;
}

/** The proxy's address without its credentials, for messages. */
export function describeProxy(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
}

/** The variable that names the proxy for `url`. */
export function proxyVariable(url: URL): 'HTTPS_PROXY' | 'HTTP_PROXY' {
  return url.protocol === 'https:' ? 'HTTPS_PROXY' : 'HTTP_PROXY';
}

/**
 * The status a proxy refused a request with, when `err` is undici's error for it: a CONNECT answered
 * other than 200, or a plain-HTTP request (sent to the proxy in absolute form) answered 407.
 */
export function proxyRefusal(err: unknown): number | undefined {
  const message = err instanceof Error ? err.message : '';
  const status =
    /^Proxy response \((\d{3})\) !== 200 when HTTP Tunneling/.exec(message)?.[1] ??
    /^Proxy Authentication Required \((407)\)$/.exec(message)?.[1];
  return status === undefined ? undefined : Number(status);
}
