export { DiskStorage, DEFAULT_SEGMENT_BYTES } from './disk_storage';
export type { DiskStorageOptions, SaveRequest } from './disk_storage';
export { StorageCorruptionError, StorageFailedError, StorageClosedError } from './errors';
export { nodeFsOps } from './fs_ops';
export type { FsOps, FsFile, OpenMode } from './fs_ops';
export { silentLogger } from './logger';
export type { StorageLogger } from './logger';
