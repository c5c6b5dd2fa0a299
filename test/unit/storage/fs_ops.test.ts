import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { nodeFsOps } from '../../../agent/storage/fs_ops';

/** The open flags of this process's descriptor for `file`, from /proc. */
function openFlags(file: string): number {
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    if (target !== file) continue;
    const m = /^flags:\s+([0-7]+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    if (m) return parseInt(m[1], 8);
  }
  throw new Error(`${file} is not open`);
}

describe('nodeFsOps', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgraft-fsops-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('durableWrites opens the file with O_DSYNC; other files are synced explicitly', async () => {
    const durable = path.join(dir, 'segment');
    const plain = path.join(dir, 'snapshot');
    const a = await nodeFsOps.open(durable, 'create', { durableWrites: true });
    const b = await nodeFsOps.open(plain, 'replace');
    try {
      expect(openFlags(durable) & fs.constants.O_DSYNC).toBe(fs.constants.O_DSYNC);
      expect(openFlags(plain) & fs.constants.O_DSYNC).toBe(0);
      await a.write(Buffer.from('record'), 0);
      await a.truncate(3);
      await a.sync();
      expect(fs.readFileSync(durable, 'utf8')).toBe('rec');
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('create refuses an existing file; append opens one for positioned writes', async () => {
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, 'abcdef');
    await expect(nodeFsOps.open(file, 'create', { durableWrites: true })).rejects.toThrow(/EEXIST/);
    const f = await nodeFsOps.open(file, 'append', { durableWrites: true });
    await f.write(Buffer.from('XY'), 2);
    await f.close();
    expect(fs.readFileSync(file, 'utf8')).toBe('abXYef');
  });
});
