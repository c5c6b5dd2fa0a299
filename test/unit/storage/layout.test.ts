import * as fs from 'fs';
import * as path from 'path';
import { SYNC_EVERY_BYTES, writeFileAtomic } from '../../../agent/storage/layout';
import { storageHarness } from './helpers';

const h = storageHarness();

test('a large file is synced every SYNC_EVERY_BYTES as it is written, and once at its end', async () => {
  const fsOps = h.newFs();
  const piece = SYNC_EVERY_BYTES / 4;
  // Ten pieces: 2.5 × SYNC_EVERY_BYTES, each piece's bytes its own number.
  const pieces = Array.from({ length: 10 }, (_, i) => Buffer.alloc(piece, i));
  await writeFileAtomic(fsOps, h.dir(), 'big', pieces);

  const ops = fsOps.calls.filter((c) => c.op === 'write' || c.op === 'sync').map((c) => c.op[0]);
  expect(ops.join('')).toBe('wwwwswwwwswws');
  const written = fs.readFileSync(path.join(h.dir(), 'big'));
  expect(written.length).toBe(10 * piece);
  expect(Buffer.compare(written, Buffer.concat(pieces))).toBe(0);
});

test('a file that ends on a sync boundary is not synced twice; a small or empty one once', async () => {
  const fsOps = h.newFs();
  await writeFileAtomic(fsOps, h.dir(), 'exact', [Buffer.alloc(SYNC_EVERY_BYTES), Buffer.alloc(SYNC_EVERY_BYTES)]);
  await writeFileAtomic(fsOps, h.dir(), 'small', Buffer.from('hello'));
  await writeFileAtomic(fsOps, h.dir(), 'empty', Buffer.alloc(0));
  const syncs = (name: string) => fsOps.count('sync', (f) => path.basename(f).startsWith(name));
  expect([syncs('exact'), syncs('small'), syncs('empty')]).toEqual([2, 1, 1]);
});
