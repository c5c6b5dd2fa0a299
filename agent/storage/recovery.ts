import { Entry, HardState, Snapshot } from '../raft/types';
import { StorageCorruptionError } from './errors';
import {
  decodeHardState,
  decodeSegmentHeader,
  decodeSnapshot,
  encodeSegmentHeader,
  LogPosition,
  readFrame,
  recordSpan,
  SEGMENT_HEADER_BYTES,
  zerosFrom,
} from './format';
import { FsFile, FsOps } from './fs_ops';
import { Layout, listSnapshots, parseSegmentName, removeTempFiles, SEGMENT_OPEN } from './layout';
import { StorageLogger } from './logger';
import { RecordIndex } from './record_index';

/** Everything DiskStorage needs to continue where the previous process stopped. */
export interface RecoveredState {
  hardState: HardState;
  /** Term and vote as the hard-state file holds them. */
  storedTermVote: { term: number; vote: number };
  /** The highest commit index that is durable (hard-state file, log records, snapshot). */
  durableCommit: number;
  snapshot: Snapshot | null;
  snapshotStart: LogPosition;
  /** The log after the snapshot, consecutive from snapshot index + 1. */
  entries: Entry[];
  index: RecordIndex;
  /** Segment numbers on disk from the snapshot's start on, ascending; the last is open for appending. */
  segments: number[];
  active: FsFile;
  activeSize: number;
  /** The active segment holds zeros, already on disk, from activeSize up to here (see DiskStorage). */
  zeroedTo: number;
  nextRecord: number;
}

/**
 * Opens the data directory and rebuilds the log: the newest snapshot, then the records from
 * the snapshot's log start on. Segments before that start are removed without being read, so
 * restart time follows the log written since the last snapshot, not the whole history.
 *
 * A segment's records may be followed by zeros: space written ahead of the log (DiskStorage
 * preallocates it), where the segment's records end. Only the end of the last segment may be
 * damaged the way a crash leaves it (the one write in progress, never acknowledged): it is cut
 * off with one warning. Any other damage throws StorageCorruptionError, because what it hides
 * may have been acknowledged to the cluster.
 */
export async function recover(fs: FsOps, layout: Layout, logger: StorageLogger): Promise<RecoveredState> {
  for (const dir of [layout.logDir, layout.stateDir, layout.snapshotDir]) await fs.mkdirs(dir);
  await fs.syncDir(layout.dataDir);

  const stored = await readHardState(fs, layout);
  const snap = await readNewestSnapshot(fs, layout);
  const start: LogPosition = snap ? snap.start : { segment: 1, record: 1 };
  const snapIndex = snap ? snap.snapshot.metadata.index : 0;

  const onDisk: number[] = [];
  for (const name of await fs.list(layout.logDir)) {
    const n = parseSegmentName(name);
    if (n !== null) onDisk.push(n);
  }
  onDisk.sort((a, b) => a - b);
  const obsolete = onDisk.filter((n) => n < start.segment);
  const live = onDisk.filter((n) => n >= start.segment);
  for (let k = 0; k < live.length; k++) {
    const want = start.segment + k;
    if (live[k] !== want) {
      throw new StorageCorruptionError(layout.segmentPath(want), 0, 'this log segment is missing but later ones exist');
    }
  }

  // Read and check everything before changing anything, so that a refusal to start leaves
  // the data directory as the crash left it, for whoever investigates.
  const replay = new Replay(snapIndex);
  let expected: number | null = null;
  let endOfLog = 0;
  let fileEnd = 0;
  let torn: { file: string; offset: number; bytes: number; reason: string } | null = null;
  let unfinishedSegment: { segment: number; file: string; bytes: number } | null = null;

  for (let k = 0; k < live.length; k++) {
    const segment = live[k];
    const file = layout.segmentPath(segment);
    const last = k === live.length - 1;
    const buf = await fs.readFile(file);

    const header = decodeSegmentHeader(buf);
    if ('error' in header) {
      // The header goes out in the same write as the segment's first record; if it never
      // arrived, neither did anything after it.
      if (last && (buf.length < SEGMENT_HEADER_BYTES || zerosFrom(buf, 0))) {
        unfinishedSegment = { segment, file, bytes: buf.length };
        break;
      }
      throw new StorageCorruptionError(file, 0, header.error);
    }
    if (header.segment !== segment) {
      throw new StorageCorruptionError(file, 12, `the header says segment ${header.segment}: the file was renamed or copied`);
    }
    if (expected === null && header.firstRecord > start.record) {
      throw new StorageCorruptionError(
        file,
        16,
        `the segment begins at record ${header.firstRecord} but the snapshot's log starts at record ${start.record}`,
      );
    }
    if (expected !== null && header.firstRecord !== expected) {
      throw new StorageCorruptionError(
        file,
        16,
        `the segment begins at record ${header.firstRecord} but the previous segment ended before record ${expected}`,
      );
    }
    expected = header.firstRecord;

    let off = SEGMENT_HEADER_BYTES;
    // The entries kept are views into one buffer per segment, not a copy each. When the
    // records replayed are a small part of the file (the rest: records before the snapshot's
    // log start, preallocated zeros), they are read from a copy of their own byte range, so
    // that the rest is not kept; when they are most of it, from the file itself.
    const span = recordSpan(buf, off, start.record);
    const keptFrom = span.start ?? span.end;
    const keptBytes = span.end - keptFrom;
    const kept = keptBytes > 0 && keptBytes * 4 < buf.length * 3 ? copyOf(buf.subarray(keptFrom, span.end)) : null;
    while (off < buf.length) {
      // The next segment's header checks that nothing is missing from an earlier one.
      if (zerosFrom(buf, off)) break;
      // base: the file offset at which the buffer read from begins (the copy's, or the file's).
      const inCopy = kept !== null && off >= keptFrom && off < span.end;
      let base = inCopy ? keptFrom : 0;
      let frame = inCopy ? readFrame(kept, off - base) : readFrame(buf, off);
      if (inCopy && !frame.ok) {
        // A bad record is judged on the file itself, which may go on past the copy.
        base = 0;
        frame = readFrame(buf, off);
      }
      if (!frame.ok) {
        if (!(last && frame.tornLike)) throw new StorageCorruptionError(file, off, frame.reason);
        torn = { file, offset: off, bytes: buf.length - off, reason: frame.reason };
        break;
      }
      const rec = frame.record;
      if (rec.record !== expected) {
        throw new StorageCorruptionError(file, off, `found record ${rec.record} where record ${expected} belongs`);
      }
      expected++;
      if (rec.record >= start.record) replay.apply(rec.commit, rec.entries, { segment, record: rec.record }, file, off);
      off = base + frame.end;
    }
    endOfLog = off;
    fileEnd = buf.length;
  }

  if (expected !== null && expected < start.record) {
    throw new StorageCorruptionError(
      layout.segmentPath(live[live.length - 1]),
      endOfLog,
      `the log ends before record ${expected} but the snapshot's log starts at record ${start.record}`,
    );
  }

  let durableCommit = Math.max(stored.commit, snapIndex);
  let commitSource = { file: layout.hardStateFile, offset: 0 };
  if (replay.commit > durableCommit) {
    durableCommit = replay.commit;
    commitSource = replay.commitSource;
  }
  const lastIndex = snapIndex + replay.entries.length;
  if (durableCommit > lastIndex) {
    throw new StorageCorruptionError(
      commitSource.file,
      commitSource.offset,
      `it records commit index ${durableCommit} but the log ends at index ${lastIndex}: committed entries are missing`,
    );
  }

  // From here on the log is known good; repair what a crash left behind.
  await removeTempFiles(fs, layout.stateDir);
  await removeTempFiles(fs, layout.snapshotDir);
  for (const n of obsolete) await fs.remove(layout.segmentPath(n));
  if (obsolete.length > 0) {
    logger.info('removed log segments that precede the snapshot', { count: obsolete.length, snapshotIndex: snapIndex });
  }

  const segments = unfinishedSegment === null ? live : live.slice(0, -1);
  const nextRecord = expected ?? start.record;
  let active: FsFile;
  let activeSize: number;
  let zeroedTo: number;
  if (torn) {
    logger.warn(
      'truncated a torn write at the end of the log: the last write before a crash did not complete and was never acknowledged',
      { file: torn.file, offset: torn.offset, droppedBytes: torn.bytes, reason: torn.reason },
    );
    active = await fs.open(torn.file, 'append', SEGMENT_OPEN);
    await active.truncate(torn.offset);
    await active.sync();
    activeSize = torn.offset;
    zeroedTo = torn.offset;
  } else if (segments.length > 0 && unfinishedSegment === null) {
    active = await fs.open(layout.segmentPath(segments[segments.length - 1]), 'append', SEGMENT_OPEN);
    activeSize = endOfLog;
    zeroedTo = fileEnd;
  } else {
    // A fresh data directory, one restored from a snapshot alone, or a segment whose creation
    // a crash cut short: start the segment the next record belongs in.
    let segment = start.segment;
    if (unfinishedSegment) {
      logger.warn('removed a log segment whose creation a crash interrupted; it held no acknowledged data', {
        file: unfinishedSegment.file,
        bytes: unfinishedSegment.bytes,
      });
      await fs.remove(unfinishedSegment.file);
      segment = unfinishedSegment.segment;
    }
    active = await fs.open(layout.segmentPath(segment), 'create', SEGMENT_OPEN);
    await active.write(encodeSegmentHeader(segment, nextRecord), 0);
    await active.sync();
    await fs.syncDir(layout.logDir);
    segments.push(segment);
    activeSize = SEGMENT_HEADER_BYTES;
    zeroedTo = SEGMENT_HEADER_BYTES;
  }

  return {
    hardState: { term: stored.term, vote: stored.vote, commit: durableCommit },
    storedTermVote: { term: stored.term, vote: stored.vote },
    durableCommit,
    snapshot: snap ? snap.snapshot : null,
    snapshotStart: start,
    entries: replay.entries,
    index: replay.index,
    segments,
    active,
    activeSize,
    zeroedTo,
    nextRecord,
  };
}

/**
 * Applies records in the order they were written. An entry at an index the log already holds
 * replaces it and everything after it (the conflicting suffix a new leader overwrote); entries
 * at or below the snapshot are already inside it.
 */
class Replay {
  readonly entries: Entry[] = [];
  readonly index = new RecordIndex();
  commit = 0;
  commitSource = { file: '', offset: 0 };

  constructor(private readonly snapIndex: number) {}

  apply(commit: number, entries: Entry[], pos: LogPosition, file: string, offset: number): void {
    if (commit > this.commit) {
      this.commit = commit;
      this.commitSource = { file, offset };
    }
    let first = 0;
    for (const e of entries) {
      if (e.index <= this.snapIndex) continue;
      const k = e.index - this.snapIndex - 1;
      if (k > this.entries.length) {
        throw new StorageCorruptionError(
          file,
          offset,
          `the record holds entry ${e.index} but the log before it ends at index ${this.snapIndex + this.entries.length}`,
        );
      }
      this.entries.length = k;
      this.entries.push(e);
      if (first === 0) first = e.index;
    }
    if (first !== 0) this.index.add(first, pos);
  }
}

/** A copy in a buffer of its own (not a slice of Node's shared pool, which it would pin). */
function copyOf(bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafeSlow(bytes.length);
  out.set(bytes);
  return out;
}

async function readHardState(fs: FsOps, layout: Layout): Promise<HardState> {
  let buf: Uint8Array;
  try {
    buf = await fs.readFile(layout.hardStateFile);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { term: 0, vote: 0, commit: 0 };
    throw e;
  }
  const hs = decodeHardState(buf);
  if ('error' in hs) throw new StorageCorruptionError(layout.hardStateFile, 0, hs.error);
  return hs;
}

async function readNewestSnapshot(
  fs: FsOps,
  layout: Layout,
): Promise<{ snapshot: Snapshot; start: LogPosition } | null> {
  const found = await listSnapshots(fs, layout.snapshotDir);
  if (found.length === 0) return null;
  const newest = found[0];
  const file = layout.snapshotPath(newest.index, newest.term);
  return checkedSnapshot(file, await fs.readFile(file), newest);
}

/** Decodes the snapshot file `file`, which its name says holds the snapshot at `expected`. */
export function checkedSnapshot(
  file: string,
  buf: Uint8Array,
  expected: { index: number; term: number },
): { snapshot: Snapshot; start: LogPosition } {
  const decoded = decodeSnapshot(buf);
  if ('error' in decoded) throw new StorageCorruptionError(file, decoded.offset, decoded.error);
  const { index, term } = decoded.snapshot.metadata;
  if (index !== expected.index || term !== expected.term) {
    throw new StorageCorruptionError(file, 12, `the file holds the snapshot at index ${index}, term ${term}: it was renamed`);
  }
  return decoded;
}
