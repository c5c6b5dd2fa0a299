/**
 * `pgraft force-new-cluster`: recovery when a cluster has lost its quorum for good (the
 * majority's machines or disks are gone). Raft cannot change membership without a quorum,
 * so the surviving node's data directory is rewritten offline, as etcd's --force-new-cluster
 * does: the members it knows of are removed, it stays the only voter, and its whole log is
 * kept and counted as committed. Its agent then starts as a one-member cluster that elects
 * itself; the others are added back with empty data directories.
 *
 * Unsafe by nature: members removed this way never agreed to it. Run on one survivor only,
 * and never restart the removed members with their old data (with a quorum of the old
 * configuration between them they would elect a leader of their own).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { encodeMemberContext } from '../fsm/state_machine';
import { applyConfChange, decodeConfChange, encodeConfChange } from '../raft/confchange';
import { ConfChangeType, ConfState, Entry, EntryType, HardState, NodeId } from '../raft/types';
import { DiskStorage } from '../storage';
import { endpoint } from './agent_options';
import { CommandError } from './client';
import { ExitCode } from './exit_codes';
import { loadAgentConfig } from './run_agent';

export interface NewClusterPlan {
  /** Membership after every entry in the log. */
  before: ConfState;
  /** Members removed (everyone but this node). */
  removed: NodeId[];
  /** This node was not a voter and is made one. */
  promoted: boolean;
  /** Entries appended after the log's last; empty when this node already is the only voter. */
  entries: Entry[];
  /** The hard state to write with them: a new term, this node's vote, everything committed. */
  hardState: HardState;
  /** Entries beyond the commit index this node knew of, kept and committed with the rest. */
  uncommitted: number;
}

/** What force-new-cluster writes into `storage` for node `self`. Reads only. */
export function planNewCluster(storage: DiskStorage, self: NodeId, selfContext: { raft: string; api: string }): NewClusterPlan {
  const { hardState, confState } = storage.initialState();
  const snapIndex = storage.snapshotMetadata().index;
  const first = Math.max(storage.firstIndex(), snapIndex + 1);
  const last = storage.lastIndex();
  let conf = confState;
  for (const e of last >= first ? storage.entries(first, last + 1) : []) {
    if (e.type === EntryType.ConfChange) conf = applyConfChange(conf, decodeConfChange(e.data));
  }
  const removed = [...conf.voters, ...conf.learners].filter((id) => id !== self).sort((a, b) => a - b);
  const promoted = !conf.voters.includes(self);
  // Above every term in the log too: a data directory restored from a snapshot file alone has
  // no hard state (term 0) but the snapshot's term.
  const term = Math.max(hardState.term, storage.term(last)) + 1;
  const changes: { type: ConfChangeType; nodeId: NodeId; context: Uint8Array }[] = [];
  // Promote first: removing the others never leaves the configuration without a voter.
  if (promoted) changes.push({ type: ConfChangeType.AddVoter, nodeId: self, context: encodeMemberContext(selfContext) });
  for (const id of removed) changes.push({ type: ConfChangeType.RemoveNode, nodeId: id, context: new Uint8Array(0) });
  const entries = changes.map((cc, k) => ({ term, index: last + 1 + k, type: EntryType.ConfChange, data: encodeConfChange(cc) }));
  return {
    before: conf,
    removed,
    promoted,
    entries,
    hardState: { term, vote: self, commit: last + entries.length },
    uncommitted: last - hardState.commit,
  };
}

export interface ForceNewClusterArgs {
  config?: string;
  pgdata?: string;
  /** --yes: do it; without it the plan is printed and nothing is written. */
  yes: boolean;
}

/** The command; resolves with the exit code. */
export async function forceNewCluster(args: ForceNewClusterArgs): Promise<number> {
  const loaded = loadAgentConfig(args.config, args.pgdata);
  if (!loaded) return ExitCode.USAGE;
  const c = loaded.config;
  for (const port of [c.port, c.api_port]) {
    if (await accepts(c.address, port)) {
      throw new CommandError(
        `something listens on ${endpoint(c.address, port)}, this node's ${port === c.port ? 'Raft port' : 'API port'}: its agent seems to be running`,
        ExitCode.FAILED,
        'stop the agent first (e.g. systemctl stop pgraft-agent@15-main); the data directory is rewritten offline',
      );
    }
  }
  const nothing = new CommandError(
    `${c.data_dir} holds no cluster: there is nothing to recover`,
    ExitCode.FAILED,
    'an empty node starts a new cluster with pgraft agent --bootstrap, or SELECT pgraft_init()',
  );
  if (!fs.existsSync(c.data_dir)) throw nothing;
  checkOwner(c.data_dir);
  const storage = await DiskStorage.open({ dataDir: c.data_dir });
  try {
    if (storage.lastIndex() === 0 && storage.snapshotMetadata().index === 0) throw nothing;
    const plan = planNewCluster(storage, c.node_id, { raft: endpoint(c.address, c.port), api: endpoint(c.address, c.api_port) });
    const members = (cs: ConfState) =>
      [...cs.voters.map((id) => `${id}`), ...cs.learners.map((id) => `${id} (learner)`)].join(', ') || 'none';
    const out = (s: string) => process.stdout.write(`${s}\n`);
    // A node its cluster fenced off (removed while away, or its log lost entries) keeps a note
    // that stops its agent from starting again; making its data a cluster of its own is this
    // command's to decide.
    const fence = await storage.fenceNote();
    if (plan.entries.length === 0 && fence === null) {
      out(`node ${c.node_id} already is the only voter of cluster '${c.cluster_id}': nothing to change; start its agent`);
      return ExitCode.OK;
    }
    const kept = `its log up to index ${storage.lastIndex()} is kept and counted as committed` +
      (plan.uncommitted > 0 ? `, including ${plan.uncommitted} entries it did not know to be committed (writes whose clients got no answer may take effect)` : '');
    if (!args.yes) {
      out(`cluster '${c.cluster_id}' has the members ${members(plan.before)}.`);
      // With several survivors, recover the one whose log goes furthest.
      out(`node ${c.node_id}'s log ends at index ${storage.lastIndex()} (term ${storage.term(storage.lastIndex())}); it knew entries up to ${storage.lastIndex() - plan.uncommitted} to be committed.`);
      out(
        `force-new-cluster would make node ${c.node_id} its only voter` +
          (plan.removed.length > 0 ? `, removing ${plan.removed.join(', ')} without their agreement` : '') +
          `; ${kept}.`,
      );
      if (fence !== null) out(`Its data directory is marked as fenced off from its cluster, a mark the command would clear: ${fence.trim()}`);
      throw new CommandError('nothing was changed', ExitCode.USAGE, 'if the other members are lost for good, run the command again with --yes');
    }
    if (plan.entries.length > 0) {
      await storage.save({ entries: plan.entries, hardState: plan.hardState, mustSync: true });
      await storage.flush();
    }
    if (fence !== null) await storage.clearFence();
    out(
      `node ${c.node_id} is now the only voter of cluster '${c.cluster_id}'` +
        (plan.removed.length > 0 ? ` (removed: ${plan.removed.join(', ')})` : '') +
        `; ${kept}.`,
    );
    out('Start its agent: it elects itself. Add the other nodes back with pgraft_add_node() or pgraft agent --join,');
    out('each with an empty pgraft.data_dir: never start a removed member with its old data.');
    return ExitCode.OK;
  } finally {
    await storage.close();
  }
}

/**
 * The files written must be the agent's: run as anyone else (root, typically), the command
 * would leave it files it may not be able to read or replace.
 */
function checkOwner(dataDir: string): void {
  const me = process.getuid?.();
  const owner = fs.statSync(dataDir).uid;
  if (me === undefined || me === owner) return;
  const name = userName(owner);
  throw new CommandError(
    `${dataDir} belongs to ${name}, but this command runs as ${userName(me)}: the agent could not use the files it would write`,
    ExitCode.FAILED,
    `run it as ${name}, e.g. sudo -u ${name} pgraft force-new-cluster ...`,
  );
}

/** The name /etc/passwd gives a user id, else the id. */
function userName(uid: number): string {
  try {
    for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length > 2 && Number(f[2]) === uid) return f[0];
    }
  } catch {
    // no passwd file: the number says it
  }
  return `user ${uid}`;
}

/** True when something accepts a TCP connection at host:port within a second. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
