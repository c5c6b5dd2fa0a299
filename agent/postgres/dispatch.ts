/**
 * One request row -> one ControlPlane call -> the reply SQL returns or raises.
 * The SQL functions validate arguments already; the checks here keep a bad row (written
 * by hand by a superuser, or by a future SQL version) from reaching the ControlPlane.
 */
import { ControlError, ControlPlane, SqlState } from './control';

export type Reply =
  | { result: unknown }
  | { error: { message: string; sqlstate: string; hint?: string; detail?: string } };

type Args = Record<string, unknown>;

const OPS: Record<string, (c: ControlPlane, a: Args) => Promise<unknown>> = {
  init: (c) => c.init(),
  addNode: (c, a) => c.addNode(nodeId(a, 'nodeId'), text(a, 'address'), port(a)),
  removeNode: (c, a) => c.removeNode(nodeId(a, 'nodeId')),
  transferLeadership: (c, a) => c.transferLeadership(a.target == null ? null : nodeId(a, 'target')),
  logAppend: (c, a) => c.logAppend(text(a, 'data')),
  logGetEntry: (c, a) => c.logGetEntry(integer(a, 'index', 1)),
  kvPut: (c, a) => c.kvPut(text(a, 'key'), text(a, 'value')),
  kvGet: (c, a) => c.kvGet(text(a, 'key')),
  kvDelete: (c, a) => c.kvDelete(text(a, 'key')),
  kvListKeys: (c) => c.kvListKeys(),
  kvGetStats: (c) => c.kvGetStats(),
  replicationStatus: (c) => c.replicationStatus(),
};

export async function dispatch(control: ControlPlane, op: string, args: unknown): Promise<Reply> {
  try {
    const call = OPS[op];
    if (!call) {
      throw new ControlError(
        `the pgraft agent does not know the request "${op}"`,
        SqlState.Internal,
        'The agent is older than the pgraft extension in this database; upgrade the agent.',
      );
    }
    const result = await call(control, typeof args === 'object' && args !== null ? (args as Args) : {});
    return { result: result === undefined ? null : result };
  } catch (err) {
    return { error: toSqlError(err) };
  }
}

function toSqlError(err: unknown): { message: string; sqlstate: string; hint?: string; detail?: string } {
  if (err instanceof ControlError) {
    return { message: err.message, sqlstate: err.sqlstate, hint: err.hint, detail: err.detail };
  }
  return {
    message: `the pgraft agent failed: ${err instanceof Error ? err.message : String(err)}`,
    sqlstate: SqlState.Internal,
    hint: "This is a fault in the agent; its log has the details.",
  };
}

function badArgument(name: string, value: unknown, want: string): ControlError {
  return new ControlError(`invalid ${name} ${JSON.stringify(value)}: ${want}`, SqlState.InvalidParameter);
}

function integer(a: Args, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = a[name];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw badArgument(name, v, `an integer from ${min} to ${max} is required`);
  }
  return v;
}

function nodeId(a: Args, name: string): number {
  return integer(a, name, 1, 2147483647);
}

function port(a: Args): number {
  return integer(a, 'port', 1, 65535);
}

function text(a: Args, name: string): string {
  const v = a[name];
  if (typeof v !== 'string') throw badArgument(name, v, 'a string is required');
  return v;
}
