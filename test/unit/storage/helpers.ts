import { promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Entry, EntryType } from '../../../agent/raft/types';
import { DiskStorage, DiskStorageOptions } from '../../../agent/storage/disk_storage';
import { FsFile, FsOps, nodeFsOps, OpenMode, OpenOptions } from '../../../agent/storage/fs_ops';
import { StorageLogger } from '../../../agent/storage/logger';

type Op = 'open' | 'write' | 'sync' | 'truncate' | 'readFile' | 'rename' | 'remove' | 'syncDir';

interface Fault {
  op: Op;
  code: string;
  /** `bytes`: for writes, how many bytes the write carries. */
  match: (file: string, bytes?: number) => boolean;
  /** For writes: how many bytes reach the file before the error (a short write). */
  partialBytes?: number;
}

export function errnoError(code: string, file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected failure on ${file}`), { code });
}

/**
 * Real files through nodeFsOps, with a record of every call (to count fsyncs and see which
 * files are read) and one-shot injected failures. crash() closes every handle without
 * flushing anything, as a killed process would leave them.
 */
export class TestFs implements FsOps {
  readonly calls: { op: Op; file: string }[] = [];
  private faults: Fault[] = [];
  private holds: { op: Op; match: (file: string) => boolean; reached: () => void; released: Promise<void> }[] = [];
  private readonly open_ = new Set<FsFile>();

  /**
   * The next `op` on a file matching `match` waits until release() is called; `reached`
   * resolves when it starts waiting.
   */
  holdNext(op: Op, match: (file: string) => boolean): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const reachedP = new Promise<void>((r) => (reached = r));
    const released = new Promise<void>((r) => (release = r));
    this.holds.push({ op, match, reached, released });
    return { reached: reachedP, release };
  }

  private async waitIfHeld(op: Op, file: string): Promise<void> {
    const i = this.holds.findIndex((h) => h.op === op && h.match(file));
    if (i < 0) return;
    const [hold] = this.holds.splice(i, 1);
    hold.reached();
    await hold.released;
  }

  /** The next `op` on a file matching `match` fails with `code`. */
  failNext(op: Op, code: string, match: (file: string, bytes?: number) => boolean = () => true, partialBytes?: number): void {
    this.faults.push({ op, code, match, partialBytes });
  }

  count(op: Op, match: (file: string) => boolean = () => true): number {
    return this.calls.filter((c) => c.op === op && match(c.file)).length;
  }

  files(op: Op): string[] {
    return this.calls.filter((c) => c.op === op).map((c) => c.file);
  }

  reset(): void {
    this.calls.length = 0;
  }

  async crash(): Promise<void> {
    for (const f of this.open_) await f.close().catch(() => undefined);
    this.open_.clear();
  }

  private check(op: Op, file: string, bytes?: number): Fault | null {
    this.calls.push({ op, file });
    const i = this.faults.findIndex((f) => f.op === op && f.match(file, bytes));
    if (i < 0) return null;
    const [fault] = this.faults.splice(i, 1);
    return fault;
  }

  private throwIf(op: Op, file: string): void {
    const fault = this.check(op, file);
    if (fault) throw errnoError(fault.code, file);
  }

  async open(file: string, mode: OpenMode, options?: OpenOptions): Promise<FsFile> {
    this.throwIf('open', file);
    const inner = await nodeFsOps.open(file, mode, options);
    const outer: FsFile = {
      write: async (data, position) => {
        const fault = this.check('write', file, data.length);
        if (fault) {
          if (fault.partialBytes) await inner.write(data.subarray(0, fault.partialBytes), position);
          throw errnoError(fault.code, file);
        }
        await inner.write(data, position);
      },
      sync: async () => {
        this.throwIf('sync', file);
        await this.waitIfHeld('sync', file);
        await inner.sync();
      },
      truncate: async (length) => {
        this.throwIf('truncate', file);
        await inner.truncate(length);
      },
      close: async () => {
        this.open_.delete(outer);
        await inner.close();
      },
    };
    this.open_.add(outer);
    return outer;
  }

  async readFile(file: string): Promise<Uint8Array> {
    this.throwIf('readFile', file);
    return nodeFsOps.readFile(file);
  }

  readFileSync(file: string): Uint8Array {
    this.throwIf('readFile', file);
    return nodeFsOps.readFileSync(file);
  }

  list(dir: string): Promise<string[]> {
    return nodeFsOps.list(dir);
  }

  mkdirs(dir: string): Promise<void> {
    return nodeFsOps.mkdirs(dir);
  }

  async rename(from: string, to: string): Promise<void> {
    this.throwIf('rename', to);
    await nodeFsOps.rename(from, to);
  }

  async remove(file: string): Promise<void> {
    this.throwIf('remove', file);
    await nodeFsOps.remove(file);
  }

  async syncDir(dir: string): Promise<void> {
    this.throwIf('syncDir', dir);
    await nodeFsOps.syncDir(dir);
  }
}

export class RecordingLogger implements StorageLogger {
  readonly lines: { level: 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> }[] = [];

  info(msg: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level: 'info', msg, fields });
  }

  warn(msg: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level: 'warn', msg, fields });
  }

  error(msg: string, fields?: Record<string, unknown>): void {
    this.lines.push({ level: 'error', msg, fields });
  }

  get warnings(): { msg: string; fields?: Record<string, unknown> }[] {
    return this.lines.filter((l) => l.level === 'warn');
  }
}

export interface Opened {
  storage: DiskStorage;
  fs: TestFs;
  logger: RecordingLogger;
}

/**
 * A fresh data directory under os.tmpdir() per test, removed after it whether it passed or
 * not, with every file handle the test left open closed first.
 */
export function storageHarness(): {
  dir: () => string;
  open: (opts?: Partial<DiskStorageOptions> & { fs?: TestFs }) => Promise<Opened>;
  newFs: () => TestFs;
} {
  let dir = '';
  let fss: TestFs[] = [];
  const newFs = (): TestFs => {
    const fs = new TestFs();
    fss.push(fs);
    return fs;
  };
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'pgraft-storage-'));
  });
  afterEach(async () => {
    for (const fs of fss) await fs.crash();
    fss = [];
    await fsp.rm(dir, { recursive: true, force: true });
  });
  return {
    dir: () => dir,
    newFs,
    async open(opts = {}) {
      const fs = opts.fs ?? newFs();
      const logger = new RecordingLogger();
      const storage = await DiskStorage.open({ dataDir: dir, logger, ...opts, fs });
      return { storage, fs, logger };
    },
  };
}

export function ent(index: number, term: number, data = `e${index}t${term}`): Entry {
  return { index, term, type: EntryType.Normal, data: Buffer.from(data) };
}

export function ents(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(ent(i, term));
  return out;
}

/** Entries in a form toEqual compares by content (Buffer vs Uint8Array would differ). */
export function plain(entries: Entry[]): { index: number; term: number; type: number; data: string }[] {
  return entries.map((e) => ({ index: e.index, term: e.term, type: e.type, data: Buffer.from(e.data).toString('hex') }));
}

export function logOf(s: { firstIndex(): number; lastIndex(): number; entries(lo: number, hi: number): Entry[] }) {
  return plain(s.entries(s.firstIndex(), s.lastIndex() + 1));
}

export async function segmentFiles(dataDir: string): Promise<string[]> {
  return (await fsp.readdir(path.join(dataDir, 'log'))).filter((n) => n.startsWith('segment-')).sort();
}

export async function snapshotFiles(dataDir: string): Promise<string[]> {
  return (await fsp.readdir(path.join(dataDir, 'snapshots'))).sort();
}
