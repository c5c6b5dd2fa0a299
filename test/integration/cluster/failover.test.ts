/**
 * Leader failures with real agent processes: kill -9, and a leader frozen with SIGSTOP for
 * longer than the election timeout. Writes run throughout; every write a client saw
 * acknowledged must be readable afterwards.
 */
import { ELECTION_TIMEOUT_MS, TestCluster, Writer, cleanupAgents, expectAllReadable, waitFor } from '../../support/agents';

afterEach(cleanupAgents);

describe('leader failure', () => {
  test('kill -9 of the leader: a new leader within 2 x election_timeout, no acknowledged write lost, the killed node catches up on restart', async () => {
    const c = await TestCluster.create({ size: 3 });
    c.startFounders();
    const old = await c.waitLeader();
    const writer = new Writer(c, 'kill-');
    await waitFor('some writes acknowledged', () => writer.acked.length >= 30);

    const killedAt = Date.now();
    await old.kill9();
    const survivors = c.running();
    const next = await c.waitLeader(survivors);
    expect(next.id).not.toBe(old.id);
    const line = await next.p.waitForLog('became leader', (l) => l.msg === 'became leader' && l.time >= killedAt);
    expect(line.time - killedAt).toBeLessThan(2 * ELECTION_TIMEOUT_MS);

    await waitFor('writes acknowledged by the new leader', () => writer.acked.length >= 60, 15_000);
    const acked = await writer.stop();
    await expectAllReadable(next, acked);

    // The killed node comes back with its log and catches up with everything written since.
    const restarted = old.start();
    const leaderStatus = await next.status();
    await c.waitApplied(leaderStatus.commitIndex, [old], 15_000);
    await expectAllReadable(old, acked, 'stale');
    expect((await old.status()).leaderId).toBe(next.id);
    expect(restarted.running).toBe(true);
  });

  test('a leader frozen with SIGSTOP for longer than the election timeout steps down after SIGCONT; no acknowledged write is lost', async () => {
    const c = await TestCluster.create({ size: 3 });
    c.startFounders();
    const old = await c.waitLeader();
    const writer = new Writer(c, 'stop-');
    await waitFor('some writes acknowledged', () => writer.acked.length >= 30);

    const pausedAt = Date.now();
    old.pause();
    const others = c.running();
    const next = await c.waitLeader(others);
    expect(next.id).not.toBe(old.id);
    const before = writer.acked.length;
    await waitFor('writes acknowledged by the new leader', () => writer.acked.length >= before + 30, 15_000);
    // Frozen for well beyond the election timeout, while the others go on.
    await waitFor('the old leader to have been frozen for 3 election timeouts', () => Date.now() - pausedAt >= 3 * ELECTION_TIMEOUT_MS);

    old.resume();
    await waitFor(
      `node ${old.id} to step down and follow node ${next.id}`,
      async () => {
        const st = await old.status();
        return st.role === 'follower' && st.leaderId === next.id;
      },
      10_000,
    );
    const acked = await writer.stop();
    expect(acked.length).toBeGreaterThan(before);
    await expectAllReadable(next, acked);
    // The old leader holds them too once it has caught up.
    await c.waitApplied((await next.status()).commitIndex, [old]);
    await expectAllReadable(old, acked, 'stale');
  });
});
