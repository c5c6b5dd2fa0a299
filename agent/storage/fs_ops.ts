import { promises as fsp } from 'fs';

/**
 * The few file-system operations the storage performs, behind an interface so that tests can
 * count fsyncs, see which files are read, and make a write or fsync fail with ENOSPC or EIO.
 * Production uses nodeFsOps.
 */
export interface FsFile {
  /** Writes all of `data` at byte `position` (short writes are retried until done). */
  write(data: Uint8Array, position: number): Promise<void>;
  /** Makes everything written so far durable, including the file's size (fdatasync). */
  sync(): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * How a file is opened: 'append' an existing file for positioned writes (r+), 'create' a file
 * that must not exist yet (wx), 'replace' a file whether or not it exists (w).
 */
export type OpenMode = 'append' | 'create' | 'replace';

export interface FsOps {
  open(path: string, mode: OpenMode): Promise<FsFile>;
  readFile(path: string): Promise<Uint8Array>;
  /** Names of the entries of a directory. */
  list(dir: string): Promise<string[]>;
  /** Creates a directory and its parents; no error if it exists. */
  mkdirs(dir: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  /** fsync of a directory: makes file creations, renames and removals in it durable. */
  syncDir(dir: string): Promise<void>;
}

const FLAGS: Record<OpenMode, string> = { append: 'r+', create: 'wx', replace: 'w' };

class NodeFile implements FsFile {
  constructor(private readonly fh: fsp.FileHandle) {}

  async write(data: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
  }

  sync(): Promise<void> {
    return this.fh.datasync();
  }

  truncate(length: number): Promise<void> {
    return this.fh.truncate(length);
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

export const nodeFsOps: FsOps = {
  async open(path, mode) {
    return new NodeFile(await fsp.open(path, FLAGS[mode]));
  },
  readFile(path) {
    return fsp.readFile(path);
  },
  list(dir) {
    return fsp.readdir(dir);
  },
  async mkdirs(dir) {
    await fsp.mkdir(dir, { recursive: true });
  },
  rename(from, to) {
    return fsp.rename(from, to);
  },
  remove(path) {
    return fsp.unlink(path);
  },
  async syncDir(dir) {
    const fh = await fsp.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
};
