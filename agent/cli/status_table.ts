import type { MemberView, StatusView } from '../http/status';

/** Lays out rows under a header, each column as wide as its widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function role(m: MemberView): string {
  if (m.leader) return 'leader';
  return m.role === 'learner' ? 'learner' : 'follower';
}

function ago(ms: number | null, self: boolean): string {
  if (self) return '-';
  if (ms === null) return 'never';
  return ms < 1000 ? `${ms}ms ago` : `${(ms / 1000).toFixed(1)}s ago`;
}

/**
 * `pgraft status` as text: this node's view in a line, then the members. Match index, lag
 * and last contact come from the leader's view when `leaderView` is given (only the leader
 * tracks its followers' progress); each member's version from `versions` ('?' where the
 * member did not say).
 */
export function formatStatus(local: StatusView, leaderView: StatusView | null, versions: ReadonlyMap<number, string> = new Map()): string {
  const lines: string[] = [];
  lines.push(
    `cluster ${local.clusterId}: node ${local.nodeId} is ${local.role} (${local.state}), term ${local.term}, ` +
      `leader ${local.leaderId ?? 'unknown'}, commit ${local.commitIndex}, applied ${local.appliedIndex}, last ${local.lastIndex}`,
  );
  if (local.failure) lines.push(`failure: ${local.failure}`);
  const view = leaderView ?? local;
  const rows = view.members.map((m) => [
    String(m.id),
    m.raftAddress || '?',
    m.apiAddress || '-',
    role(m),
    String(view.term),
    m.matchIndex === null ? '-' : String(m.matchIndex),
    m.lag === null ? '-' : String(m.lag),
    ago(m.lastContactMs, m.id === view.nodeId),
    versions.get(m.id) ?? '?',
  ]);
  lines.push(table(['ID', 'ADDRESS', 'API', 'ROLE', 'TERM', 'MATCH', 'LAG', 'LAST CONTACT', 'VERSION'], rows));
  if (leaderView === null && local.role !== 'leader') {
    lines.push(`(match index and lag are known to the leader only${local.leaderId ? `; its API could not be reached` : ''})`);
  } else if (leaderView !== null && leaderView.nodeId !== local.nodeId) {
    lines.push(`(members as the leader, node ${leaderView.nodeId}, sees them; last contact is since it last heard from each)`);
  }
  return lines.join('\n');
}
