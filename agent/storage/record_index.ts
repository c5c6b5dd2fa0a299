import { LogPosition } from './format';

/**
 * Which log record holds each entry of the in-memory log, kept as one run per record (a
 * record holds consecutive entries). A snapshot stores the position of the record holding
 * the entry after it, so that restart replays from there and never reads older records.
 *
 * Runs are ordered by first entry and by position: an entry that is still in the log was
 * written after every entry before it, since a later write at a lower index would have
 * truncated it.
 */
export class RecordIndex {
  private runs: { start: number; pos: LogPosition }[] = [];

  /** A record at `pos` whose entries begin at `start`; it replaces any entries from `start` on. */
  add(start: number, pos: LogPosition): void {
    while (this.runs.length > 0 && this.runs[this.runs.length - 1].start >= start) this.runs.pop();
    this.runs.push({ start, pos });
  }

  /** Position of the record holding entry `i`; `i` must be an entry of the in-memory log. */
  find(i: number): LogPosition {
    let lo = 0;
    let hi = this.runs.length - 1;
    if (hi < 0 || i < this.runs[0].start) throw new Error(`no log record is known to hold entry ${i}`);
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.runs[mid].start <= i) lo = mid;
      else hi = mid - 1;
    }
    return this.runs[lo].pos;
  }

  /** Forgets records that hold only entries below `first`. */
  dropBefore(first: number): void {
    let n = 0;
    while (n + 1 < this.runs.length && this.runs[n + 1].start <= first) n++;
    if (n > 0) this.runs = this.runs.slice(n);
  }

  clear(): void {
    this.runs = [];
  }
}
