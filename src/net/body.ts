/**
 * Reading an HTTP request body within a byte limit, for every listener (the client API and the
 * node-to-node protocol): a body declared larger than the limit is refused before it is read, and
 * one that grows past it is cut off without buffering the rest.
 */
import type http from 'node:http';
import { JincacheError } from '../core/errors.ts';
import type { ClientLimits, InputHolder } from './limits.ts';

/**
 * The body of `req`, at most `limit` bytes. With `budget`, the bytes held while it arrives count
 * against the input budget of all clients (limits.ts): the request is cut off (and its
 * connection closed) when it holds the most input as the budget overflows.
 */
export function readBody(req: http.IncomingMessage, limit: number, code: 'VALUE_TOO_LARGE' | 'BAD_REQUEST' = 'VALUE_TOO_LARGE', budget?: ClientLimits): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? -1);
  if (declared > limit) {
    req.resume();
    return Promise.reject(new JincacheError(code, `body of ${declared} bytes exceeds the limit of ${limit}`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const holder: InputHolder = {
      bytes: 0,
      evict: () => {
        req.removeAllListeners('data');
        req.socket.destroy();
        reject(new JincacheError('BAD_REQUEST', 'the input buffer of all clients is full: this request held the most'));
      },
    };
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        budget?.release(holder);
        req.removeAllListeners('data');
        req.resume();
        reject(new JincacheError(code, `body exceeds the limit of ${limit} bytes`));
        return;
      }
      chunks.push(c);
      budget?.hold(holder, size);
    });
    req.on('end', () => {
      budget?.release(holder);
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    req.on('error', (e) => {
      budget?.release(holder);
      reject(e);
    });
    req.on('close', () => budget?.release(holder));
  });
}
