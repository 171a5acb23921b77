/**
 * Certificates for TLS tests, made by the real `openssl` (Debian's, installed by
 * scripts/install-deps.sh tls): a CA, and leaf certificates it signs for 127.0.0.1 / localhost
 * usable as server and as client (mutual TLS between nodes), plus a second, unrelated CA whose
 * certificate the first one's holders must refuse.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const OPENSSL = '/usr/bin/openssl';
const INSTALL_SCRIPT = resolve(import.meta.dirname, '../../scripts/install-deps.sh');

export interface Leaf {
  cert: string;
  key: string;
}

export interface TestCerts {
  dir: string;
  /** The CA's certificate (PEM file). */
  ca: string;
  /** Leaves signed by `ca`, by name. */
  leaf(name: string): Leaf;
  /** A CA that signed nothing here, and a leaf it signs: a stranger to `ca`. */
  stranger: Leaf & { ca: string };
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync(OPENSSL, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function ensureOpenssl(): void {
  if (existsSync(OPENSSL)) return;
  const r = spawnSync(INSTALL_SCRIPT, ['tls'], { encoding: 'utf8' });
  if (r.status !== 0 || !existsSync(OPENSSL)) throw new Error(`openssl is missing and ${INSTALL_SCRIPT} tls failed: ${r.stderr}`);
}

function makeCa(dir: string, name: string): { cert: string; key: string } {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.pem`);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', key, '-out', cert], dir);
  return { cert, key };
}

function makeLeaf(dir: string, ca: { cert: string; key: string }, name: string): Leaf {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n');
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', key, '-out', csr], dir);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', cert], dir);
  return { cert, key };
}

/** A fresh CA with leaves `names` (more on demand), in a temporary directory. */
export function makeCerts(names: readonly string[] = ['server']): TestCerts {
  ensureOpenssl();
  const dir = mkdtempSync(join(tmpdir(), 'jincache-certs-'));
  const ca = makeCa(dir, 'ca');
  const leaves = new Map<string, Leaf>();
  for (const n of names) leaves.set(n, makeLeaf(dir, ca, n));
  const otherCa = makeCa(dir, 'other-ca');
  const stranger = { ...makeLeaf(dir, otherCa, 'stranger'), ca: otherCa.cert };
  return {
    dir,
    ca: ca.cert,
    leaf(name) {
      let l = leaves.get(name);
      if (l === undefined) leaves.set(name, (l = makeLeaf(dir, ca, name)));
      return l;
    },
    stranger,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
