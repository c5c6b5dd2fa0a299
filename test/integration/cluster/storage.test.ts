/**
 * What an agent does with a damaged log on restart: a torn tail (the last write cut short
 * by a crash) is cut off with a warning and the node catches up; damage earlier in the log
 * stops the agent with a message that names the file and the byte offset.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LEVEL, TestCluster, TestNode, cleanupAgents, expectAllReadable, putMany } from '../../support/agents';
import { segmentRecords } from '../../support/segments';

afterEach(cleanupAgents);

function segments(n: TestNode): string[] {
  const dir = path.join(n.dataDir, 'log');
  return fs
    .readdirSync(dir)
    .filter((f) => /^segment-\d+$/.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

async function clusterWithStoppedFollower(): Promise<{ c: TestCluster; leader: TestNode; stopped: TestNode; keys: string[] }> {
  const c = await TestCluster.create({ size: 3 });
  c.startFounders();
  const leader = await c.waitLeader();
  const keys = await putMany(leader, 'disk-', 30);
  const stopped = c.running().find((n) => n !== leader)!;
  await c.waitApplied((await leader.status()).commitIndex, [stopped]);
  const exit = await stopped.stop();
  expect(exit.code).toBe(0);
  return { c, leader, stopped, keys };
}

describe('snapshots and the log held in memory', () => {
  test('each snapshot trims the log to max_log_entries before it, however high compaction_threshold is', async () => {
    const c = await TestCluster.create({
      size: 1,
      settings: { 'pgraft.snapshot_interval': '40', 'pgraft.max_log_entries': '5', 'pgraft.compaction_threshold': '100000' },
    });
    c.startFounders();
    const leader = await c.waitLeader();
    await putMany(leader, 'trim-', 45);
    const taken = await leader.p.waitForLog('a snapshot', (l) => l.msg === 'snapshot taken');
    const index = taken.index as number;
    expect(index).toBeGreaterThanOrEqual(40);
    expect(taken.firstIndex).toBe(index - 5 + 1);
    expect((await leader.status()).firstIndex).toBe(index - 5 + 1);
  });
});

describe('log damage found at start', () => {
  test('a torn last record is cut off with a warning; the node starts and catches up', async () => {
    const { c, leader, stopped, keys } = await clusterWithStoppedFollower();
    const last = segments(stopped).at(-1)!;
    fs.truncateSync(last, segmentRecords(last).end - 5); // the last record now ends mid-way

    const run = stopped.start();
    const warning = await run.waitForLog('the torn-write warning', (l) => /torn write/.test(l.msg));
    expect(warning.level).toBe(LEVEL.warn);
    expect(warning.file).toBe(last);
    const more = await putMany(leader, 'after-', 5);
    await c.waitApplied((await leader.status()).commitIndex, [stopped]);
    await expectAllReadable(stopped, [...keys, ...more], 'stale');
    expect(run.running).toBe(true);
  });

  test('a flipped byte early in a segment stops the agent with the file and offset', async () => {
    const { stopped } = await clusterWithStoppedFollower();
    const first = segments(stopped)[0];
    const offset = 32 + 8 + 3; // inside the first record's payload, right after the segment header
    const fd = fs.openSync(first, 'r+');
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, offset);
    b[0] ^= 0xff;
    fs.writeSync(fd, b, 0, 1, offset);
    fs.closeSync(fd);

    const run = stopped.start();
    const exit = await run.waitExit(10_000);
    expect(exit.code).toBe(1);
    const fatal = run.lines.find((l) => l.level === LEVEL.fatal);
    expect(fatal).toBeDefined();
    expect(fatal!.msg).toContain(first);
    expect(fatal!.msg).toMatch(/corrupt at byte offset \d+/);
    expect(fatal!.msg).toMatch(/refuses to start/);
  });
});
