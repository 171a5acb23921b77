/**
 * TLS for the listeners and the clients a node opens (SPEC §7): the certificate files are read
 * here, once at start and again on SIGHUP, so a renewed certificate takes effect without a
 * restart and without dropping connections (existing connections keep their session; new ones
 * get the new certificate).
 */
import { readFileSync } from 'node:fs';
import type { SecureContextOptions } from 'node:tls';

export interface TlsFiles {
  cert_file?: string;
  key_file?: string;
  ca_file?: string;
}

/** What a TLS server or client is built from, read from the files. */
export interface TlsMaterial {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
}

function read(path: string | undefined, what: string): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** Read the files named (undefined when none is). Throws naming the file that cannot be read. */
export function readTls(files: TlsFiles, section: string): TlsMaterial | undefined {
  if (files.cert_file === undefined && files.key_file === undefined && files.ca_file === undefined) return undefined;
  const out: TlsMaterial = {};
  const cert = read(files.cert_file, `${section}.cert_file`);
  const key = read(files.key_file, `${section}.key_file`);
  const ca = read(files.ca_file, `${section}.ca_file`);
  if (cert !== undefined) out.cert = cert;
  if (key !== undefined) out.key = key;
  if (ca !== undefined) out.ca = ca;
  return out;
}

/** Options of a TLS server: its certificate, and (`requireClientCert`) only clients whose certificate `ca` signed. */
export function serverOptions(m: TlsMaterial, requireClientCert: boolean): SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean } {
  return { ...m, requestCert: requireClientCert, rejectUnauthorized: requireClientCert };
}
