import * as path from 'node:path';
import { cloneConfState } from '../raft/confchange';
import { ConfState, Entry, HardState, Snapshot, SnapshotMetadata, Storage, UnavailableError } from '../raft/types';
import { StorageClosedError, StorageFailedError } from './errors';
import {
  encodeHardState,
  encodeRecord,
  encodeSegmentHeader,
  encodeSnapshot,
  entriesInRecord,
  imageOf,
  LogPosition,
  recordCommit,
  SEGMENT_HEADER_BYTES,
  SnapshotImage,
} from './format';
import { FsFile, FsOps, nodeFsOps } from './fs_ops';
import { LogCache } from './log_cache';
import { HARD_STATE_NAME, Layout, FENCE_NOTE_NAME, listSnapshots, SEGMENT_OPEN, snapshotName, TEMP_SUFFIX, writeFileAtomic, writeFileDurable } from './layout';
import { silentLogger, StorageLogger } from './logger';
import { RecordIndex } from './record_index';
import { checkedSnapshot, recover, RecoveredState } from './recovery';

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** Zeros written ahead of the log at a time (see DiskStorage, "preallocation"). */
export const DEFAULT_PREALLOCATE_BYTES = 1024 * 1024;
const NO_DATA = new Uint8Array(0);
let zeroBuffer: Buffer | null = null;

/** `n` zero bytes: a view of one buffer, allocated once. */
function zeros(n: number): Buffer {
  if (!zeroBuffer || zeroBuffer.length < n) zeroBuffer = Buffer.alloc(n);
  return zeroBuffer.subarray(0, n);
}

/** Snapshot files kept on disk: the one restart uses and the one before it, for operators. */
const SNAPSHOTS_KEPT = 2;

export interface DiskStorageOptions {
  /** pgraft.data_dir */
  dataDir: string;
  /** A segment is closed and the next one started when a save would grow it beyond this. */
  segmentBytes?: number;
  /** Bytes of zeros written ahead of the log at a time; 0 turns preallocation off. */
  preallocateBytes?: number;
  fs?: FsOps;
  logger?: StorageLogger;
}

/** One Ready batch to persist; a Ready itself has exactly these fields. */
export interface SaveRequest {
  hardState?: HardState | null;
  entries?: Entry[];
  /** A snapshot from the leader: it replaces the whole log, as MemoryStorage.applySnapshot does. */
  snapshot?: Snapshot | null;
  /** false: write without fsync; the next synced save, flush() or close() makes it durable. Default true. */
  mustSync?: boolean;
}

interface SavePlan {
  hardState: HardState | null;
  snapshot: Snapshot | null;
  /** The entries left once those inside the snapshot are dropped, as MemoryStorage.append does. */
  entries: Entry[];
  /** The encoded record for `entries`, built before any I/O so that bad input fails nothing. */
  record: Buffer | null;
  mustSync: boolean;
}

/**
 * The durable Raft log: segments of checksummed records, an atomically replaced hard-state
 * file and snapshot files (see format.ts and layout.ts). Reads are served synchronously from
 * an in-memory copy of the log since the last snapshot (LogCache), which behaves like
 * MemoryStorage; writes go to disk first and reach the copy only once written.
 *
 * Group commit: each save() builds one buffer, writes it once and fsyncs the log once, however
 * many entries it holds. Saves, snapshots and compactions run one at a time in call order.
 *
 * A failed write or fsync fails the storage for good (StorageFailedError): every later write
 * is refused, so the node stops acknowledging instead of acknowledging what is not on disk.
 *
 * Preallocation: the active segment is filled with zeros ahead of the write position, a
 * megabyte at a time, in the background. A record written over zeros already on disk leaves
 * the file's size alone, so its O_DSYNC write has only the data to flush; a write that grows
 * the file must also commit the file system's journal (on ext4 about 40% longer alone here,
 * and more when other writers share the disk). Recovery reads zeros after the records as
 * the end of the segment.
 */
export class DiskStorage implements Storage {
  private readonly log = new LogCache();
  private readonly fs: FsOps;
  private readonly logger: StorageLogger;
  private readonly layout: Layout;
  private readonly segmentBytes: number;
  private readonly preallocateBytes: number;

  private hardState: HardState;
  /** Term and vote in the hard-state file. */
  private stored: { term: number; vote: number };
  /** The highest commit index a crash cannot take away. */
  private durableCommit: number;
  /** Commit index carried by the last record written, durable once the log is synced. */
  private writtenCommit: number;
  private snapshotStart: LogPosition;
  private readonly index: RecordIndex;
  private segments: number[];
  private active: FsFile;
  private activeSize: number;
  private nextRecord: number;
  /** Records were written since the last fsync of the log. */
  private unsynced = false;
  /** The active segment holds zeros, already on disk, from activeSize up to here. */
  private zeroedTo: number;
  /** A preallocation in progress; it writes from zeroedTo on, so records wait before going past. */
  private zeroing: Promise<void> | null = null;
  /** A preallocation failed (the disk is full, say): no more until the next segment. */
  private zeroingFailed = false;

  /**
   * The file of the current snapshot. Its image is not kept in memory (it can be as large as
   * the whole state): snapshot() reads it back when the core needs it, to send it to a
   * follower that is too far behind, and the agent once at start-up.
   */
  private snapshotFile: string | null = null;

  private failure: StorageFailedError | null = null;
  private closed = false;
  /** Settles when the last snapshot begun is adopted or given up (see snapshotState). */
  private snapshotSettled: Promise<void> = Promise.resolve();
  private queue: Promise<unknown> = Promise.resolve();

  /** Opens (creating if needed) the data directory and recovers the log; see recovery.ts. */
  static async open(opts: DiskStorageOptions): Promise<DiskStorage> {
    const fs = opts.fs ?? nodeFsOps;
    const logger = opts.logger ?? silentLogger;
    const layout = new Layout(opts.dataDir);
    return new DiskStorage(opts, fs, logger, layout, await recover(fs, layout, logger));
  }

  private constructor(
    opts: DiskStorageOptions,
    fs: FsOps,
    logger: StorageLogger,
    layout: Layout,
    rec: RecoveredState,
  ) {
    this.fs = fs;
    this.logger = logger;
    this.layout = layout;
    this.segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.preallocateBytes = opts.preallocateBytes ?? DEFAULT_PREALLOCATE_BYTES;
    if (rec.snapshot) this.holdSnapshot(rec.snapshot.metadata, 'apply');
    this.log.append(rec.entries);
    this.hardState = rec.hardState;
    this.stored = rec.storedTermVote;
    this.durableCommit = rec.durableCommit;
    this.writtenCommit = rec.durableCommit;
    this.snapshotStart = rec.snapshotStart;
    this.index = rec.index;
    this.segments = rec.segments;
    this.active = rec.active;
    this.activeSize = rec.activeSize;
    this.zeroedTo = rec.zeroedTo;
    this.nextRecord = rec.nextRecord;
  }

  // ---- Storage: answered from memory ----

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: cloneConfState(this.log.snapshot().metadata.confState) };
  }

  entries(lo: number, hi: number, maxBytes?: number): Entry[] {
    return this.log.entries(lo, hi, maxBytes);
  }

  term(i: number): number {
    return this.log.term(i);
  }

  firstIndex(): number {
    return this.log.firstIndex();
  }

  lastIndex(): number {
    return this.log.lastIndex();
  }

  /** The current snapshot with its image, read from its file (see snapshotFile). */
  snapshot(): Snapshot {
    const held = this.log.snapshot();
    if (this.snapshotFile === null) return held;
    return checkedSnapshot(this.snapshotFile, this.fs.readFileSync(this.snapshotFile), held.metadata).snapshot;
  }

  /** Index, term and membership of the current snapshot, without reading its image. */
  snapshotMetadata(): SnapshotMetadata {
    return this.log.snapshot().metadata;
  }

  /** Why the storage refuses writes, or null while it is healthy. */
  get failed(): StorageFailedError | null {
    return this.failure;
  }

  // ---- writes ----

  /**
   * Persists one Ready batch: snapshot (if newer than ours), entries (replacing any
   * conflicting suffix) and hard state, with one fsync of the log. Resolves once all of it is
   * durable (unless mustSync is false); only then may messages that depend on it be sent.
   *
   * Term and vote are written first, to their own file: entries of a new term must never be
   * durable while the term they belong to is not. The commit index is persisted lazily inside
   * the log records (and by flush/close); after a crash it comes back no lower than any value
   * that was durable, and Raft relearns the rest from the leader.
   */
  save(req: SaveRequest): Promise<void> {
    return this.mutation(() => {
      const plan = this.plan(req);
      return this.io(() => this.persist(plan));
    });
  }

  /**
   * Records the state machine's image at `index` (applied, hence in the log) in a snapshot
   * file. Restart then begins from it; the log before it can be compacted away.
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Promise<Snapshot> {
    return this.snapshotState(() => ({ index, confState, image: imageOf(data) }));
  }

  /**
   * createSnapshot for a state that keeps changing: `capture` is called once every earlier
   * write has finished and reports the applied index, membership and image of the state as
   * it is then. The image's pieces are written to the file as they are produced, so the state
   * is never copied whole; the pieces must be those of the state as captured, however long
   * the write takes (StateMachine.image() keeps them so). The snapshot returned carries no image:
   * snapshot() reads it back from the file when one is needed.
   *
   * Log writes go on while the file is written: a snapshot takes as long as the state is big,
   * and the log must not stall for that long. The file is written under a name of its own and
   * renamed into place only if no newer snapshot (one installed from the leader) arrived in
   * the meantime; until then the log keeps every segment the previous snapshot needs, and the
   * new one needs no fewer. close() waits for a snapshot in progress.
   */
  snapshotState(capture: () => { index: number; confState: ConfState; image: SnapshotImage }): Promise<Snapshot> {
    const taking = this.takeSnapshot(capture);
    this.snapshotSettled = taking.then(
      () => undefined,
      () => undefined,
    );
    return taking;
  }

  private async takeSnapshot(capture: () => { index: number; confState: ConfState; image: SnapshotImage }): Promise<Snapshot> {
    const planned = await this.mutation(async () => {
      const { index, confState, image } = capture();
      if (index <= this.log.snapshot().metadata.index) return null;
      const last = this.log.lastIndex();
      if (index > last) throw new UnavailableError(index, last);
      const metadata = { index, term: this.log.term(index), confState: cloneConfState(confState) };
      const start = index < last ? this.index.find(index + 1) : this.endOfLog();
      // The snapshot points into the log; what it points at must be durable before it is.
      if (this.unsynced) await this.io(() => this.syncLog());
      return { metadata, image, start };
    });
    if (!planned) return this.snapshot();
    const { metadata, image, start } = planned;
    const name = snapshotName(metadata.index, metadata.term);
    // Its own temporary name: a snapshot of the same index installed meanwhile writes the other.
    const pending = path.join(this.layout.snapshotDir, `${name}.taken${TEMP_SUFFIX}`);
    await this.io(() => writeFileDurable(this.fs, pending, encodeSnapshot(metadata, start, image)));
    return this.mutation(async () => {
      if (metadata.index <= this.log.snapshot().metadata.index) {
        await this.fs.remove(pending).catch(() => undefined); // or at the next open
        return this.snapshot();
      }
      await this.io(async () => {
        await this.fs.rename(pending, this.layout.snapshotPath(metadata.index, metadata.term));
        await this.fs.syncDir(this.layout.snapshotDir);
      });
      this.holdSnapshot(metadata, 'record');
      this.snapshotStart = start;
      this.durableCommit = Math.max(this.durableCommit, metadata.index);
      await this.pruneSnapshots();
      return { metadata, data: NO_DATA };
    });
  }

  /**
   * Drops entries before `index` from memory and, unless removeFiles is false, the segment
   * files that only hold records before both `index` and the snapshot's log start. Segment
   * files are removed only once a snapshot covers them: restart always replays from the
   * snapshot. Files left now go at a later compact().
   */
  compact(index: number, removeFiles = true): Promise<void> {
    return this.mutation(async () => {
      this.log.compact(index);
      const first = this.log.firstIndex();
      this.index.dropBefore(first);
      if (!removeFiles) return;
      const probe = Math.max(index + 1, first);
      const holding = probe <= this.log.lastIndex() ? this.index.find(probe).segment : this.activeSegment();
      await this.removeSegmentsBefore(Math.min(this.snapshotStart.segment, holding));
    });
  }

  /**
   * Makes everything saved so far durable, including a commit index that saves persist
   * lazily. Call it before persisting, elsewhere, an applied index above the last synced commit.
   */
  flush(): Promise<void> {
    return this.mutation(() => this.io(() => this.flushPending()));
  }

  /**
   * What recordFence() wrote, or null: this data directory then belongs to a node its
   * cluster no longer takes on this data (removed while away, or its log lost entries).
   */
  async fenceNote(): Promise<string | null> {
    try {
      return Buffer.from(await this.fs.readFile(path.join(this.layout.stateDir, FENCE_NOTE_NAME))).toString('utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  /** Keeps `note` durably in the data directory as its fence note (see fenceNote). */
  recordFence(note: string): Promise<void> {
    return this.mutation(() => this.io(() => writeFileAtomic(this.fs, this.layout.stateDir, FENCE_NOTE_NAME, Buffer.from(note, 'utf8'))));
  }

  /** Drops the fence note: the data directory is to be used again (force-new-cluster). */
  clearFence(): Promise<void> {
    return this.mutation(() =>
      this.io(async () => {
        await this.fs.remove(path.join(this.layout.stateDir, FENCE_NOTE_NAME)).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'ENOENT') throw e;
        });
        await this.fs.syncDir(this.layout.stateDir);
      }),
    );
  }

  /** Flushes and closes the files. Later writes are refused with StorageClosedError. */
  async close(): Promise<void> {
    // Before queueing: the snapshot's last step queues behind whatever is queued when it ends.
    await this.snapshotSettled;
    return this.exclusive(async () => {
      if (this.closed) return;
      this.closed = true;
      try {
        if (!this.failure) await this.io(() => this.flushPending());
      } finally {
        await this.zeroing;
        await this.active.close().catch((e: unknown) => {
          this.logger.warn('closing the active log segment failed', { error: String(e) });
        });
      }
    });
  }

  // ---- internals ----

  /** Checks a save against the log as MemoryStorage.append would, before anything is written. */
  private plan(req: SaveRequest): SavePlan {
    let snapshot = req.snapshot ?? null;
    if (snapshot && snapshot.metadata.index <= this.log.snapshot().metadata.index) snapshot = null;
    const first = snapshot ? snapshot.metadata.index + 1 : this.log.firstIndex();
    const last = snapshot ? snapshot.metadata.index : this.log.lastIndex();
    let entries = req.entries ?? [];
    for (let k = 1; k < entries.length; k++) {
      if (entries[k].index !== entries[0].index + k) {
        throw new Error(`entries to save are not consecutive: index ${entries[k].index} follows ${entries[k - 1].index}`);
      }
    }
    if (entries.length > 0) {
      if (entries[entries.length - 1].index < first) {
        entries = []; // all already compacted
      } else {
        if (entries[0].index < first) entries = entries.slice(first - entries[0].index);
        if (entries[0].index > last + 1) {
          throw new Error(`missing log entry: last index is ${last}, appending at ${entries[0].index}`);
        }
      }
    }
    const hardState = req.hardState ?? null;
    const commit = hardState ? hardState.commit : this.hardState.commit;
    const record = entries.length > 0 ? encodeRecord(this.nextRecord, commit, entries) : null;
    return { hardState, snapshot, entries, record, mustSync: req.mustSync ?? true };
  }

  private async persist(plan: SavePlan): Promise<void> {
    const hs = plan.hardState;
    if (hs && (hs.term !== this.stored.term || hs.vote !== this.stored.vote)) {
      // Only the commit index already durable goes in: the file must not claim entries that
      // this save has not yet made durable.
      await writeFileAtomic(
        this.fs,
        this.layout.stateDir,
        HARD_STATE_NAME,
        encodeHardState({ term: hs.term, vote: hs.vote, commit: this.durableCommit }),
      );
      this.stored = { term: hs.term, vote: hs.vote };
    }
    if (plan.snapshot) await this.installSnapshot(plan.snapshot);
    if (plan.record) {
      await this.appendRecord(plan.record, plan.entries[0].index);
      if (plan.mustSync) await this.syncLog();
      this.log.append(entriesInRecord(plan.record, plan.entries));
    }
    if (hs) this.hardState = { ...hs };
  }

  /** A snapshot from the leader: everything in the log before it is superseded. */
  private async installSnapshot(snap: Snapshot): Promise<void> {
    // Replay after this snapshot starts in a segment of its own, so every older segment can go.
    if (this.activeSize > SEGMENT_HEADER_BYTES) await this.roll();
    const start = this.endOfLog();
    await this.writeSnapshotFile(snap.metadata, imageOf(snap.data), start);
    this.holdSnapshot(snap.metadata, 'apply');
    this.index.clear();
    this.snapshotStart = start;
    this.durableCommit = Math.max(this.durableCommit, snap.metadata.index);
    await this.removeSegmentsBefore(start.segment);
    await this.pruneSnapshots();
  }

  /** Writes one encoded record (numbered this.nextRecord) whose entries begin at `firstIndex`. */
  private async appendRecord(buf: Buffer, firstIndex: number | null): Promise<void> {
    if (this.activeSize > SEGMENT_HEADER_BYTES && this.activeSize + buf.length > this.segmentBytes) await this.roll();
    if (this.zeroing && this.activeSize + buf.length > this.zeroedTo) await this.zeroing;
    await this.active.write(buf, this.activeSize);
    this.activeSize += buf.length;
    this.zeroedTo = Math.max(this.zeroedTo, this.activeSize);
    this.preallocate();
    this.unsynced = true;
    this.writtenCommit = Math.max(this.writtenCommit, recordCommit(buf));
    if (firstIndex !== null) this.index.add(firstIndex, { segment: this.activeSegment(), record: this.nextRecord });
    this.nextRecord++;
  }

  private async syncLog(): Promise<void> {
    await this.active.sync();
    this.unsynced = false;
    this.durableCommit = Math.max(this.durableCommit, this.writtenCommit);
  }

  private async flushPending(): Promise<void> {
    if (this.hardState.commit > this.durableCommit) {
      await this.appendRecord(encodeRecord(this.nextRecord, this.hardState.commit, []), null);
    }
    if (this.unsynced) await this.syncLog();
  }

  /**
   * Starts writing the next preallocateBytes of zeros once less than half of that is left
   * ahead of the log, without waiting for it: appendRecord waits only if a record would
   * reach the space being written. Capped at the segment size.
   */
  private preallocate(): void {
    if (this.zeroing || this.zeroingFailed || this.preallocateBytes <= 0) return;
    if (this.zeroedTo - this.activeSize >= this.preallocateBytes / 2) return;
    const from = this.zeroedTo;
    const to = Math.min(from + this.preallocateBytes, this.segmentBytes);
    if (to <= from) return;
    const file = this.active;
    this.zeroing = file
      .write(zeros(to - from), from)
      .then(
        () => {
          if (this.active === file) this.zeroedTo = Math.max(this.zeroedTo, to);
        },
        (e: unknown) => {
          // Nothing depends on these zeros: records are written whether or not they are there.
          this.zeroingFailed = true;
          this.logger.warn('could not preallocate log space; writing on without it until the next segment', { error: String(e) });
        },
      )
      .finally(() => {
        this.zeroing = null;
      });
  }

  /** Closes the active segment and starts the next one. */
  private async roll(): Promise<void> {
    // Only the last segment may end in a torn write; anything before it must be durable.
    if (this.unsynced) await this.syncLog();
    await this.zeroing;
    const segment = this.activeSegment() + 1;
    const file = await this.fs.open(this.layout.segmentPath(segment), 'create', SEGMENT_OPEN);
    try {
      await file.write(encodeSegmentHeader(segment, this.nextRecord), 0);
      await file.sync();
      await this.fs.syncDir(this.layout.logDir);
    } catch (e) {
      await file.close().catch(() => undefined);
      throw e;
    }
    const previous = this.active;
    this.active = file;
    this.activeSize = SEGMENT_HEADER_BYTES;
    this.zeroedTo = SEGMENT_HEADER_BYTES;
    this.zeroingFailed = false;
    this.segments.push(segment);
    await previous.close();
  }

  /** Keeps the snapshot's metadata in the log cache and remembers its file, not its image. */
  private holdSnapshot(metadata: SnapshotMetadata, how: 'apply' | 'record'): void {
    const held: Snapshot = { metadata, data: NO_DATA };
    if (how === 'apply') this.log.applySnapshot(held);
    else this.log.recordSnapshot(held);
    this.snapshotFile = this.layout.snapshotPath(metadata.index, metadata.term);
  }

  private async writeSnapshotFile(metadata: SnapshotMetadata, image: SnapshotImage, start: LogPosition): Promise<void> {
    const name = snapshotName(metadata.index, metadata.term);
    await writeFileAtomic(this.fs, this.layout.snapshotDir, name, encodeSnapshot(metadata, start, image));
  }

  /**
   * Removal is housekeeping, not durability: a file that survives (or reappears after a crash)
   * lies before the snapshot's log start and is removed, unread, at the next open.
   */
  private async removeSegmentsBefore(limit: number): Promise<void> {
    const active = this.activeSegment();
    while (this.segments.length > 1 && this.segments[0] < limit && this.segments[0] !== active) {
      const file = this.layout.segmentPath(this.segments[0]);
      try {
        await this.fs.remove(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
          this.logger.warn('could not remove an obsolete log segment; the next compaction or restart retries', {
            file,
            error: String(e),
          });
          return;
        }
      }
      this.segments.shift();
    }
  }

  private async pruneSnapshots(): Promise<void> {
    try {
      const found = await listSnapshots(this.fs, this.layout.snapshotDir);
      for (const old of found.slice(SNAPSHOTS_KEPT)) await this.fs.remove(this.layout.snapshotPath(old.index, old.term));
    } catch (e) {
      this.logger.warn('could not remove old snapshot files; the next snapshot retries', { error: String(e) });
    }
  }

  private activeSegment(): number {
    return this.segments[this.segments.length - 1];
  }

  private endOfLog(): LogPosition {
    return { segment: this.activeSegment(), record: this.nextRecord };
  }

  /** Runs `op` after every earlier write has finished, in call order. */
  private exclusive<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.then(op);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** exclusive, refused once the storage is closed or has failed. */
  private mutation<T>(op: () => Promise<T>): Promise<T> {
    return this.exclusive(() => {
      if (this.closed) throw new StorageClosedError(this.layout.dataDir);
      if (this.failure) throw this.failure;
      return op();
    });
  }

  /**
   * Disk I/O whose failure fails the storage for good (see StorageFailedError). Plain promise
   * chaining rather than async/await: every log append passes through here.
   */
  private io<T>(op: () => Promise<T>): Promise<T> {
    let run: Promise<T>;
    try {
      run = op();
    } catch (e) {
      return Promise.reject(this.failWith(e));
    }
    return run.catch((e: unknown) => {
      throw this.failWith(e);
    });
  }

  /** Records the first I/O failure (later ones are its consequences) and returns it. */
  private failWith(e: unknown): StorageFailedError {
    if (!this.failure) {
      this.failure = new StorageFailedError(this.layout.dataDir, e);
      this.logger.error(this.failure.message, { code: this.failure.code });
    }
    return this.failure;
  }
}
