import { reproduceCommand, runSeed } from './simulator';

/** Properties of the simulator itself: a seed names one history, and tracing does not change it. */
describe('simulator', () => {
  test('a seed replays exactly', () => {
    const a = runSeed(42, { nodes: 5 });
    const b = runSeed(42, { nodes: 5 });
    expect(b).toEqual(a);
    expect(a.failure).toBeNull();
    expect(a.steps).toBeGreaterThan(1000);
  });

  test('the agent loop replays exactly, overlapping writes with sends and with steps of the core', () => {
    const a = runSeed(3, { nodes: 5 });
    expect(runSeed(3, { nodes: 5 })).toEqual(a);
    expect(a.failure).toBeNull();
    expect(a.stats.agentLoop).toBe(1);
    expect(a.stats.sentBeforeWrite).toBeGreaterThan(100);
    expect(a.stats.steppedWhileWriting).toBeGreaterThan(100);
    // The other driver never does either.
    const b = runSeed(42, { nodes: 5 });
    expect(b.stats.agentLoop).toBe(0);
    expect(b.stats.sentBeforeWrite + b.stats.steppedWhileWriting).toBe(0);
  });

  test('different seeds give different histories', () => {
    const steps = new Set([1, 2, 3, 4].map((seed) => runSeed(seed, { nodes: 3 }).steps));
    expect(steps.size).toBeGreaterThan(1);
  });

  test('tracing shows the run without changing it', () => {
    const lines: string[] = [];
    const traced = runSeed(7, { nodes: 3, trace: (l) => lines.push(l) });
    const plain = runSeed(7, { nodes: 3 });
    expect(traced.steps).toBe(plain.steps);
    expect(traced.stats).toEqual(plain.stats);
    expect(lines.some((l) => l.includes('deliver App'))).toBe(true);
    expect(lines.some((l) => l.includes('HEAL'))).toBe(true);
    expect(lines.some((l) => l.includes('RECOVERED'))).toBe(true);
  });

  test('a run without a chaos phase recovers at once', () => {
    const r = runSeed(1, { nodes: 7, chaosTicks: 0 });
    expect(r.failure).toBeNull();
    expect(r.stats.recoveryTicks).toBeLessThan(5 * 10);
  });

  test('the reproduce command names the seed and the cluster size', () => {
    expect(reproduceCommand({ seed: 1234, nodes: 5 })).toBe('npm run sim -- --seeds 1234..1234 --nodes 5 --trace');
  });
});
