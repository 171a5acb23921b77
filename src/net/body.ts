/**
 * Reading an HTTP request body within a byte limit, for every listener (the client API and the
 * node-to-node protocol): a body declared larger than the limit is refused before it is read, and
 * one that grows past it is cut off without buffering the rest.
 */
import type http from 'node:http';
import { JincacheError } from '../core/errors.ts';

export function readBody(req: http.IncomingMessage, limit: number, code: 'VALUE_TOO_LARGE' | 'BAD_REQUEST' = 'VALUE_TOO_LARGE'): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? -1);
  if (declared > limit) {
    req.resume();
    return Promise.reject(new JincacheError(code, `body of ${declared} bytes exceeds the limit of ${limit}`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new JincacheError(code, `body exceeds the limit of ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}
