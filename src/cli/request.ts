/**
 * How the CLI's commands talk to a node's client API: HTTP or HTTPS (trusting `--cacert` as well
 * as the system's roots), with the credentials of `--user` / `--password`, or of the environment
 * variables JINCACHE_USER / JINCACHE_PASSWORD (so a password need not sit in the shell history).
 */
import http from '../net/node-http.ts';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';

export interface NodeAuthFlags {
  user?: string;
  password?: string;
  /** PEM file of the CA that signed the node's certificate. */
  cacert?: string;
}

export interface NodeResponse {
  status: number;
  ok: boolean;
  text: string;
  json<T>(): T;
}

/** The flags, completed from the environment. */
export function nodeAuth(flags: NodeAuthFlags, env: NodeJS.ProcessEnv = process.env): NodeAuthFlags {
  const user = flags.user ?? env.JINCACHE_USER;
  const password = flags.password ?? env.JINCACHE_PASSWORD;
  return { ...(user !== undefined ? { user } : {}), ...(password !== undefined ? { password } : {}), ...(flags.cacert !== undefined ? { cacert: flags.cacert } : {}) };
}

/** The Authorization header for the credentials: Basic with a user, Bearer (the user "default") without. */
export function authorization(auth: NodeAuthFlags): string | undefined {
  if (auth.password === undefined) return undefined;
  if (auth.user === undefined || auth.user === 'default') return `Bearer ${auth.password}`;
  return `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`;
}

/** One request to a node; rejects only when the node cannot be reached (with the reason). */
export function nodeRequest(
  url: URL,
  opts: { method?: string; body?: unknown; timeoutMs: number; auth?: NodeAuthFlags },
): Promise<NodeResponse> {
  const auth = opts.auth ?? {};
  const headers: Record<string, string> = {};
  const header = authorization(auth);
  if (header !== undefined) headers.authorization = header;
  let payload: Buffer | undefined;
  if (opts.body !== undefined) {
    payload = Buffer.from(JSON.stringify(opts.body));
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(payload.length);
  }
  const secure = url.protocol === 'https:';
  const tlsOptions = secure && auth.cacert !== undefined ? { ca: [...rootCertificates, readFileSync(auth.cacert, 'utf8')] } : {};
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(url, { method: opts.method ?? 'GET', headers, timeout: opts.timeoutMs, ...tlsOptions }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const status = res.statusCode ?? 0;
        resolve({ status, ok: status >= 200 && status < 300, text, json: <T>() => JSON.parse(text) as T });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** What to tell the user about a refusal: the node's message, and a hint for 401. */
export function refusal(res: NodeResponse, url: URL): string {
  let message: string | undefined;
  try {
    message = res.json<{ message?: string }>().message;
  } catch {
    // not JSON
  }
  const hint = res.status === 401 ? ' (give --password, or set JINCACHE_PASSWORD)' : '';
  return `${url.origin} answered ${res.status}${message !== undefined ? `: ${message}` : ''}${hint}`;
}

/** How the CLI reaches an etcd that requires TLS or a user (`config`, `migrations ... --etcd`). */
export interface EtcdAuthFlags {
  /** PEM file of the CA that signed etcd's certificate (endpoints then speak https). */
  etcdCacert?: string;
  etcdUser?: string;
  /** Default: the environment variable JINCACHE_ETCD_PASSWORD. */
  etcdPassword?: string;
}

/** etcd client options from the flags (and JINCACHE_ETCD_PASSWORD). */
export function etcdAccess(flags: EtcdAuthFlags, env: NodeJS.ProcessEnv = process.env): { tls?: { ca: Buffer }; auth?: { username: string; password: string } } {
  const password = flags.etcdPassword ?? env.JINCACHE_ETCD_PASSWORD;
  if ((flags.etcdUser === undefined) !== (password === undefined)) throw new Error('--etcd-user and --etcd-password (or JINCACHE_ETCD_PASSWORD) go together');
  return {
    ...(flags.etcdCacert !== undefined ? { tls: { ca: readFileSync(flags.etcdCacert) } } : {}),
    ...(flags.etcdUser !== undefined && password !== undefined ? { auth: { username: flags.etcdUser, password } } : {}),
  };
}
