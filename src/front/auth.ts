/**
 * Who may do what (SPEC §7). Users come from the config: `auth.requirepass` is the password of
 * the user "default", `auth.users` lists named users with their permissions (read, write, admin),
 * each password inline or in a file. Without any password there is one implicit user, "default",
 * allowed everything, and the node listens on loopback only (node/listeners.ts).
 *
 * Passwords are kept only as scrypt hashes (with a random salt per password) and compared in
 * constant time. A check runs scrypt once (a few ms, off the event loop); a credential that passed
 * is remembered by an HMAC of it under a key made at start, so a client that sends its password
 * on every request (HTTP Basic or Bearer) pays scrypt once, not per request.
 */
import { createHmac, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config, Permission } from '../config/schema.ts';

/** An authenticated user. */
export interface Principal {
  readonly name: string;
  can(permission: Permission): boolean;
}

/** scrypt cost: N = 2^12 takes ~5 ms here; the threadpool runs it, the event loop does not wait. */
const SCRYPT = { N: 4096, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
/** Credentials that passed, remembered (bounded). */
const CACHE_SIZE = 1024;
/**
 * scrypt runs at most this many at once, and at most QUEUE_MAX more wait: a flood of wrong
 * passwords cannot fill the threadpool (which file I/O shares) or grow a queue without bound;
 * a check beyond that fails as a wrong password would.
 */
const SCRYPT_CONCURRENCY = 2;
const QUEUE_MAX = 256;

interface StoredUser {
  principal: Principal;
  salt: Buffer;
  hash: Buffer;
}

function principal(name: string, permissions: Iterable<Permission>): Principal {
  const set = new Set(permissions);
  // asked twice per GET and SET: three booleans, not a Set lookup of the name
  const read = set.has('read');
  const write = set.has('write');
  const admin = set.has('admin');
  return Object.freeze({ name, can: (p: Permission) => (p === 'read' ? read : p === 'write' ? write : p === 'admin' && admin) });
}

/** The implicit user of a node without passwords: everything allowed. */
export const OPEN_DEFAULT: Principal = principal('default', ['read', 'write', 'admin']);

export class Authenticator {
  /** True when a credential is configured: requests without one are refused. */
  readonly required: boolean;
  private readonly users = new Map<string, StoredUser>();
  private readonly cacheKey = randomBytes(32);
  private readonly passed = new Map<string, Principal>();
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  /**
   * `readPassword` reads a password_file (default: the file's text, trailing newline dropped);
   * a file that cannot be read stops start-up naming it.
   */
  constructor(auth: Config['auth'], readPassword: (path: string) => string = readPasswordFile) {
    const add = (name: string, password: string, permissions: Iterable<Permission>): void => {
      const salt = randomBytes(16);
      this.users.set(name, { principal: principal(name, permissions), salt, hash: scryptSync(password, salt, KEY_BYTES, SCRYPT) });
    };
    if (auth.requirepass !== undefined) add('default', auth.requirepass, ['read', 'write', 'admin']);
    for (const u of auth.users) add(u.name, u.password ?? readPassword(u.password_file!), u.permissions);
    this.required = this.users.size > 0;
  }

  /** Names of the configured users (never their passwords). */
  userNames(): string[] {
    return [...this.users.keys()];
  }

  /** The user `name` if `password` is theirs, else undefined. Never rejects. */
  async check(name: string, password: string): Promise<Principal | undefined> {
    const tag = createHmac('sha256', this.cacheKey).update(name).update('\0').update(password).digest('base64');
    const known = this.passed.get(tag);
    if (known !== undefined) return known;
    const user = this.users.get(name);
    // an unknown user costs the same scrypt as a known one: no timing hint of which names exist
    const salt = user?.salt ?? this.cacheKey.subarray(0, 16);
    const derived = await this.derive(password, salt);
    if (derived === undefined || user === undefined || !timingSafeEqual(derived, user.hash)) return undefined;
    if (this.passed.size >= CACHE_SIZE) this.passed.delete(this.passed.keys().next().value!);
    this.passed.set(tag, user.principal);
    return user.principal;
  }

  /** scrypt of `password`, within the concurrency bound; undefined when too many checks wait. */
  private async derive(password: string, salt: Buffer): Promise<Buffer | undefined> {
    if (this.running >= SCRYPT_CONCURRENCY) {
      if (this.waiting.length >= QUEUE_MAX) return undefined;
      await new Promise<void>((resolve) => this.waiting.push(resolve)); // handed a running slot
    } else {
      this.running++;
    }
    try {
      return await new Promise<Buffer | undefined>((resolve) => scrypt(password, salt, KEY_BYTES, SCRYPT, (e, k) => resolve(e ? undefined : k)));
    } finally {
      const next = this.waiting.shift();
      if (next !== undefined) next();
      else this.running--;
    }
  }
}

function readPasswordFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`auth: cannot read password_file ${path}: ${(e as Error).message}`);
  }
  const password = text.replace(/\r?\n$/, '');
  if (password === '') throw new Error(`auth: password_file ${path} is empty`);
  return password;
}

/**
 * The credentials of an HTTP request: `Authorization: Bearer PASSWORD` (the user "default") or
 * `Basic base64(user:password)`. Undefined when absent or malformed.
 */
export function httpCredentials(header: string | undefined): { user: string; password: string } | undefined {
  if (header === undefined) return undefined;
  const space = header.indexOf(' ');
  if (space < 0) return undefined;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === 'bearer') return value === '' ? undefined : { user: 'default', password: value };
  if (scheme !== 'basic') return undefined;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon) || 'default', password: decoded.slice(colon + 1) };
}
