/** Errors of the persistence layer. */

export type StorageErrorCode =
  /** A key or record on disk does not decode: the database is damaged or not ours. */
  | 'STORAGE_CORRUPT'
  /** The database was written by an incompatible format version. */
  | 'STORAGE_FORMAT'
  /** The database's partitions follow a key placement this build cannot read or migrate. */
  | 'STORAGE_PLACEMENT'
  /** A key that is not a byte string (a char above 255) was given to be stored. */
  | 'STORAGE_BAD_KEY'
  /** Used before open() or after close(). */
  | 'STORAGE_CLOSED'
  /** LevelDB failed (open, write, read); the cause is attached. */
  | 'STORAGE_IO';

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  override name = 'StorageError';

  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export function isStorageError(e: unknown): e is StorageError {
  return e instanceof StorageError;
}
