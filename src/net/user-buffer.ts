/**
 * An accepted TCP connection that reads into a buffer of ours: Node's `onread` socket option
 * (net.Socket, "incoming data is stored in a single buffer and passed to the supplied
 * callback"), for a connection a net.Server accepted.
 *
 * Why: a plain socket's every read is a new ArrayBuffer (a malloc'd backing store, freed by the
 * GC) pushed through the Readable stream to a 'data' listener. At pipeline 1 that was 6% of a
 * SET's server CPU in malloc alone (perf, BENCHMARKS.md sixth round); a bare Node server's
 * user CPU per request fell from 4.8 to 3.4 us with onread.
 *
 * How: the server is created with `pauseOnConnect` (so the accepted socket never starts
 * reading), and a new net.Socket takes over the accepted socket's handle with `onread`. Node
 * has no public way to give a server's sockets that option, so this reads the accepted socket's
 * `_handle` and detaches it; where that is not possible (the field's shape changed, a socket
 * already reading) it returns null and the caller uses the accepted socket as it is. The
 * accepted socket is destroyed (without its handle: nothing is closed twice) once the new one
 * closes, which is what the server counts its connections by (server.close() waits for them).
 */

import net from 'node:net';

interface HandleHolder {
  _handle?: { useUserBuffer?: unknown; reading?: unknown } | null;
}

/**
 * A socket on `accepted`'s connection whose input goes into `buffer` and is handed to `onRead`
 * as the number of bytes read (buffer[0, n)): valid only during the call, since the next read of
 * any connection sharing `buffer` writes over it. Null when Node's socket internals are not as
 * expected; `accepted` is then untouched (and still paused).
 */
export function readIntoBuffer(accepted: net.Socket, buffer: Buffer, onRead: (bytes: number) => void, opts: { allowHalfOpen: boolean }): net.Socket | null {
  const holder = accepted as unknown as HandleHolder;
  const handle = holder._handle;
  // a handle that is reading already would have handed input to `accepted`
  if (handle === null || handle === undefined || typeof handle.useUserBuffer !== 'function' || handle.reading !== false || accepted.readableFlowing !== false) return null;
  const socket = new net.Socket({
    handle,
    allowHalfOpen: opts.allowHalfOpen,
    readable: true,
    writable: true,
    onread: {
      buffer,
      callback: (bytes: number) => {
        onRead(bytes);
        return true; // pausing is the caller's, with socket.pause()
      },
    },
  } as unknown as net.SocketConstructorOpts);
  holder._handle = null;
  socket.once('close', () => accepted.destroy());
  return socket;
}
