/**
 * Where the storage reports what an operator should know: a torn write truncated at startup,
 * obsolete files removed, a disk failure. The agent passes its structured logger; the shape
 * matches the core's RaftLogger so one adapter serves both.
 */
export interface StorageLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: StorageLogger = {
  info() {},
  warn() {},
  error() {},
};
