import * as path from 'path';
import { FsOps } from './fs_ops';

/**
 * The data directory (pgraft.data_dir):
 *   log/segment-0001, segment-0002, ...    the write-ahead log (format.ts)
 *   state/hardstate                        term, vote, commit
 *   state/fenced                           only on a node its cluster no longer takes: why (text)
 *   snapshots/snapshot-<index>-<term>.dat  the newest two snapshots
 * Files are replaced by writing `<name>.tmp`, fsyncing it, renaming it over the old one and
 * fsyncing the directory; a leftover `.tmp` is an interrupted replacement and is removed.
 */
export class Layout {
  readonly logDir: string;
  readonly stateDir: string;
  readonly snapshotDir: string;
  readonly hardStateFile: string;

  constructor(readonly dataDir: string) {
    this.logDir = path.join(dataDir, 'log');
    this.stateDir = path.join(dataDir, 'state');
    this.snapshotDir = path.join(dataDir, 'snapshots');
    this.hardStateFile = path.join(this.stateDir, HARD_STATE_NAME);
  }

  segmentPath(segment: number): string {
    return path.join(this.logDir, segmentName(segment));
  }

  snapshotPath(index: number, term: number): string {
    return path.join(this.snapshotDir, snapshotName(index, term));
  }
}

export const HARD_STATE_NAME = 'hardstate';
export const FENCE_NOTE_NAME = 'fenced';
/** Log segments are written with O_DSYNC: a record is durable when its write returns. */
export const SEGMENT_OPEN = { durableWrites: true } as const;
export const TEMP_SUFFIX = '.tmp';

export function segmentName(segment: number): string {
  return `segment-${String(segment).padStart(4, '0')}`;
}

export function parseSegmentName(name: string): number | null {
  const m = /^segment-(\d{4,})$/.exec(name);
  return m ? Number(m[1]) : null;
}

export function snapshotName(index: number, term: number): string {
  return `snapshot-${index}-${term}.dat`;
}

export function parseSnapshotName(name: string): { index: number; term: number } | null {
  const m = /^snapshot-(\d+)-(\d+)\.dat$/.exec(name);
  return m ? { index: Number(m[1]), term: Number(m[2]) } : null;
}

/** Snapshot files in `dir`, newest (highest index, then term) first. */
export async function listSnapshots(fs: FsOps, dir: string): Promise<{ name: string; index: number; term: number }[]> {
  const found: { name: string; index: number; term: number }[] = [];
  for (const name of await fs.list(dir)) {
    const parsed = parseSnapshotName(name);
    if (parsed) found.push({ name, ...parsed });
  }
  return found.sort((a, b) => b.index - a.index || b.term - a.term);
}

/**
 * Replaces `dir/name` so that a crash leaves either the old or the new content, never a mix.
 * The content may come in pieces, written one after the other; each is written before the
 * next is asked for, so a producer may reuse one buffer for all of them.
 */
export async function writeFileAtomic(fs: FsOps, dir: string, name: string, data: Uint8Array | Iterable<Uint8Array>): Promise<void> {
  const tmp = path.join(dir, name + TEMP_SUFFIX);
  await writeFileDurable(fs, tmp, data);
  await fs.rename(tmp, path.join(dir, name));
  await fs.syncDir(dir);
}

/**
 * A large file is synced every this many bytes as it is written, not only at the end: the
 * disk then takes its pages a little at a time, and the log's own syncs, which share the
 * disk (and the file system's journal), never wait behind one flush of a whole snapshot.
 */
export const SYNC_EVERY_BYTES = 1024 * 1024;

/**
 * Writes `data` to `file` (replacing it) and fsyncs it; the caller renames it into place. A
 * name ending in TEMP_SUFFIX is removed at the next open if a crash leaves it behind.
 */
export async function writeFileDurable(fs: FsOps, file: string, data: Uint8Array | Iterable<Uint8Array>): Promise<void> {
  const handle = await fs.open(file, 'replace');
  try {
    let at = 0;
    let synced = 0;
    for (const piece of data instanceof Uint8Array ? [data] : data) {
      await handle.write(piece, at);
      at += piece.length;
      if (at - synced >= SYNC_EVERY_BYTES) {
        await handle.sync();
        synced = at;
      }
    }
    if (at > synced || at === 0) await handle.sync();
  } catch (e) {
    await handle.close().catch(() => undefined);
    throw e;
  }
  await handle.close();
}

/** Removes leftovers of interrupted atomic replacements. */
export async function removeTempFiles(fs: FsOps, dir: string): Promise<void> {
  for (const name of await fs.list(dir)) {
    if (name.endsWith(TEMP_SUFFIX)) await fs.remove(path.join(dir, name));
  }
}
