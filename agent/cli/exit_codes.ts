/**
 * Exit codes of every pgraft command, so that scripts can tell "retry later" from "fix
 * something" (docs/cli.md lists them).
 */
export const ExitCode = {
  /** Done. For `health`: this node runs and the cluster has a leader. */
  OK: 0,
  /** The operation failed: the agent refused it (bad input, no such member, conflict) or could not do it; or the agent failed. */
  FAILED: 1,
  /** Wrong command-line arguments or an invalid configuration: nothing was attempted. */
  USAGE: 2,
  /** The agent's API could not be reached (connection refused, no route, DNS). */
  UNREACHABLE: 3,
  /** The agent answered that it cannot serve now: no leader or quorum, or this node is not healthy. Retry later. */
  UNAVAILABLE: 4,
  /** The operation did not complete in time; a change may still take effect. Check with `pgraft status`. */
  TIMEOUT: 5,
  /** The API token is missing or wrong. */
  UNAUTHORIZED: 6,
  /**
   * `pgraft agent`: the cluster does not take this node on its data. It was removed while it
   * was away, or its log lost entries it had acknowledged (the data directory was emptied,
   * replaced or restored from an older copy). It stays so until its data directory is
   * emptied and it is added again.
   */
  FENCED: 7,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** The exit code for an HTTP status the API answered with. */
export function exitCodeForStatus(status: number): ExitCode {
  if (status >= 200 && status < 300) return ExitCode.OK;
  if (status === 401 || status === 403) return ExitCode.UNAUTHORIZED;
  if (status === 503) return ExitCode.UNAVAILABLE;
  if (status === 504) return ExitCode.TIMEOUT;
  return ExitCode.FAILED;
}
