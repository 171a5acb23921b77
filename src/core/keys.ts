/**
 * Keys are byte strings inside jincache: JS strings whose every char code is 0..255, one char per
 * byte. Redis keys are binary; HTTP keys are UTF-8 text. Each front end converts once, at the
 * door, and everything behind it (hashing to a slot, the store, the wire, the disk) sees bytes
 * without caring which protocol they came from. V8 keeps such strings one byte per char.
 */

/** The byte string of a UTF-8 text key (HTTP API, library calls). ASCII keys are returned as is. */
export function keyFromText(text: string): string {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) >= 0x80) return Buffer.from(text, 'utf8').toString('latin1');
  }
  return text;
}

/** The UTF-8 text of a byte-string key (for HTTP answers, logs and the dashboard). */
export function keyToText(key: string): string {
  for (let i = 0; i < key.length; i++) {
    if (key.charCodeAt(i) >= 0x80) return Buffer.from(key, 'latin1').toString('utf8');
  }
  return key;
}

/** Buffer's own latin1 decoder, which toString('latin1', start, end) reaches after checking its arguments. */
interface Latin1Slicer {
  latin1Slice(start: number, end: number): string;
}

/**
 * The byte string of bytes[start, end) (RESP arguments, keys on the peer wire). Calls Buffer's
 * latin1 decoder directly: toString's argument checks were a fifth of making a 16-byte key's
 * string (94 against 74 ns here), and every RESP GET and SET makes one.
 */
export function keyFromBytes(bytes: Buffer, start = 0, end = bytes.length): string {
  return (bytes as unknown as Latin1Slicer).latin1Slice(start, end);
}

/** The bytes of a byte-string key. */
export function keyBytes(key: string): Buffer {
  return Buffer.from(key, 'latin1');
}
