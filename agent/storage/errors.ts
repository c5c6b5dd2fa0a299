/**
 * Data on disk failed a check (checksum, framing, sequence) somewhere other than the torn tail
 * a crash can leave. The node refuses to start rather than run on a log it cannot trust:
 * entries it may have acknowledged, and that a quorum may count on, would otherwise vanish.
 */
export class StorageCorruptionError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(
      `${file} is corrupt at byte offset ${offset}: ${reason}. ` +
        'This node refuses to start because acknowledged Raft data may be lost. ' +
        'To recover, re-seed this node from a healthy peer (stop the agent, move the pgraft.data_dir aside, ' +
        'start it again so that the leader sends it a snapshot), or restore a snapshot from a backup; ' +
        'keep the moved directory for inspection.',
    );
    this.name = 'StorageCorruptionError';
  }
}

/**
 * A write or fsync failed (disk full, I/O error). After a failed fsync the kernel may have
 * dropped the dirty pages and a retry can report success for data that never reached the disk
 * (PostgreSQL's "fsyncgate", 2018), so the storage refuses every later write instead: the node
 * stops acknowledging rather than acknowledge what is not durable.
 */
export class StorageFailedError extends Error {
  readonly code: string | undefined;

  constructor(
    readonly dataDir: string,
    cause: unknown,
  ) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    const what = cause instanceof Error ? cause.message : String(cause);
    super(
      `storage in ${dataDir} failed and accepts no more writes: ${what}. ` +
        'This node no longer persists or acknowledges Raft entries. ' +
        (code === 'ENOSPC' ? 'Free disk space, ' : 'Check the disk and the kernel log, ') +
        'then restart the agent; it recovers from what is on disk.',
      { cause },
    );
    this.name = 'StorageFailedError';
    this.code = code;
  }
}

/** The storage was closed; nothing can be written to it any more. */
export class StorageClosedError extends Error {
  constructor(dataDir: string) {
    super(`storage in ${dataDir} is closed; open it again to write`);
    this.name = 'StorageClosedError';
  }
}
