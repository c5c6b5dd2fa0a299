import { constants, promises as fsp, readFileSync } from 'fs';

/**
 * The few file-system operations the storage performs, behind an interface so that tests can
 * count fsyncs, see which files are read, and make a write or fsync fail with ENOSPC or EIO.
 * Production uses nodeFsOps.
 */
export interface FsFile {
  /** Writes all of `data` at byte `position` (short writes are retried until done). */
  write(data: Uint8Array, position: number): Promise<void>;
  /**
   * Makes everything written so far durable, including the file's size (fdatasync). A file
   * opened with durableWrites has nothing left to do here unless it was truncated.
   */
  sync(): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * How a file is opened: 'append' an existing file for positioned writes (r+), 'create' a file
 * that must not exist yet (wx), 'replace' a file whether or not it exists (w).
 */
export type OpenMode = 'append' | 'create' | 'replace';

export interface OpenOptions {
  /**
   * Each write is durable when it completes (O_DSYNC), as if followed by fdatasync: one
   * system call, and one trip through the thread pool, instead of two. For the log, whose
   * every write is synced before it is acknowledged.
   */
  durableWrites?: boolean;
}

export interface FsOps {
  open(path: string, mode: OpenMode, options?: OpenOptions): Promise<FsFile>;
  readFile(path: string): Promise<Uint8Array>;
  /** readFile for the rare read that must not wait: a snapshot the consensus core asks for. */
  readFileSync(path: string): Uint8Array;
  /** Names of the entries of a directory. */
  list(dir: string): Promise<string[]>;
  /** Creates a directory and its parents; no error if it exists. */
  mkdirs(dir: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  /** fsync of a directory: makes file creations, renames and removals in it durable. */
  syncDir(dir: string): Promise<void>;
}

const FLAGS: Record<OpenMode, number> = {
  append: constants.O_RDWR,
  create: constants.O_RDWR | constants.O_CREAT | constants.O_EXCL,
  replace: constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC,
};

class NodeFile implements FsFile {
  /** A truncate changed the size: O_DSYNC covers writes only, so the next sync() must sync. */
  private sizeChanged = false;

  constructor(
    private readonly fh: fsp.FileHandle,
    private readonly durableWrites: boolean,
  ) {}

  async write(data: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
  }

  sync(): Promise<void> {
    if (this.durableWrites && !this.sizeChanged) return Promise.resolve();
    this.sizeChanged = false;
    return this.fh.datasync();
  }

  truncate(length: number): Promise<void> {
    this.sizeChanged = true;
    return this.fh.truncate(length);
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

export const nodeFsOps: FsOps = {
  async open(path, mode, options) {
    const durable = options?.durableWrites ?? false;
    return new NodeFile(await fsp.open(path, FLAGS[mode] | (durable ? constants.O_DSYNC : 0), 0o666), durable);
  },
  readFile(path) {
    return fsp.readFile(path);
  },
  readFileSync(path) {
    return readFileSync(path);
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
