import * as fs from 'node:fs';
import { readFrame, SEGMENT_HEADER_BYTES, zerosFrom } from '../../agent/storage/format';

/**
 * Byte offsets of the records in a log segment file, and where they end: preallocated zeros
 * may follow them. For tests that damage a segment at a chosen record.
 */
export function segmentRecords(file: string): { offsets: number[]; end: number } {
  const buf = fs.readFileSync(file);
  const offsets: number[] = [];
  let off = SEGMENT_HEADER_BYTES;
  while (off < buf.length && !zerosFrom(buf, off)) {
    const frame = readFrame(buf, off);
    if (!frame.ok) throw new Error(`test setup: unreadable record in ${file} at ${off}`);
    offsets.push(off);
    off = frame.end;
  }
  return { offsets, end: off };
}
