import { addResult, emptyBatch } from './batch';
import { runSeed } from './simulator';

/**
 * `npm run sim -- --seeds A..B --nodes N [--trace] [--ticks T]`
 *
 * Runs every seed in A..B (inclusive) for each cluster size in N (a list such as 3,5,7 is
 * accepted) and prints one summary line. Each failing seed also prints its failure and the
 * one command that replays it exactly; add --trace to see that run event by event.
 * Exit status: 0 when every seed passed, 1 when any failed, 2 on a usage error.
 */

const USAGE = 'usage: npm run sim -- --seeds A..B --nodes N[,N...] [--trace] [--ticks CHAOS_TICKS]';

interface Args {
  from: number;
  to: number;
  nodes: number[];
  trace: boolean;
  ticks: number | undefined;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { from: 1, to: 100, nodes: [3], trace: false, ticks: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--seeds': {
        const m = /^(\d+)(?:\.\.(\d+))?$/.exec(value());
        if (m === null) throw new Error('--seeds wants A..B or A, with non-negative integers');
        args.from = Number(m[1]);
        args.to = m[2] === undefined ? args.from : Number(m[2]);
        if (args.to < args.from) throw new Error(`--seeds ${args.from}..${args.to} is empty`);
        break;
      }
      case '--nodes':
        args.nodes = value().split(',').map((s) => {
          const n = Number(s);
          if (!Number.isInteger(n) || n < 1 || n > 9) throw new Error(`--nodes wants cluster sizes from 1 to 9, got ${s}`);
          return n;
        });
        break;
      case '--ticks': {
        const t = Number(value());
        if (!Number.isInteger(t) || t < 0) throw new Error('--ticks wants a non-negative integer');
        args.ticks = t;
        break;
      }
      case '--trace':
        args.trace = true;
        break;
      case '--help':
      case '-h':
        console.log(USAGE);
        process.exit(0);
      default:
        throw new Error(`unknown argument ${a}`);
    }
  }
  return args;
}

function main(): void {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`sim: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  const started = process.hrtime.bigint();
  const total = emptyBatch();
  const trace = args.trace ? (line: string) => console.log(line) : undefined;
  for (const nodes of args.nodes) {
    for (let seed = args.from; seed <= args.to; seed++) {
      if (trace !== undefined) console.log(`=== seed ${seed}, ${nodes} nodes ===`);
      const r = runSeed(seed, { nodes, chaosTicks: args.ticks, trace });
      const failure = addResult(total, r, args.ticks);
      if (failure === null) continue;
      console.log(`FAIL ${failure}`);
      if (args.trace && r.stack !== null) console.log(r.stack);
    }
  }
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  const t = total;
  console.log(
    `sim: seeds ${args.from}..${args.to}, nodes ${args.nodes.join(',')}: ${t.runs} runs, ${t.steps} steps, ${t.failures.length} failures ` +
      `(${t.leaders} leaders, ${t.confChanges} conf changes of which ${t.leaderRemovals} removed the leader, ${t.snapshotsSent} snapshots sent, ${t.readsServed} reads checked, ` +
      `${t.agentRuns} runs on the agent loop (${t.sentBeforeWrite} messages sent before their write, ${t.steppedWhileWriting} steps while writing), ` +
      `${t.figure8Isolations} leaders isolated at a Figure 8 moment, slowest recovery ${t.slowestRecovery} ticks; ${secs.toFixed(1)}s)`,
  );
  process.exit(total.failures.length === 0 ? 0 : 1);
}

if (require.main === module) main();
