/**
 * Docker Engine defects tslink works around, by engine version.
 *
 * Before 28.1.0, libnetwork refuses `docker network rm` while a stored per-network endpoint
 * counter is above zero, and that counter is decremented after each driver DeleteEndpoint
 * returns, without a per-network lock; endpoints deleted at the same moment (a churn of parallel
 * `docker rm`) can lose a decrement when a retried store write copies a cached count over
 * another's (libnetwork endpoint_cnt.go / store.go in moby v20.10.24). The network then says "has
 * active endpoints" with none listed until dockerd restarts ("Fixing inconsistent endpoint_cnt"
 * in its log). 28.1.0 (moby PR 49736) counts the endpoints themselves instead. A plugin cannot fix
 * the count; spacing its DeleteEndpoint replies keeps Docker's decrements from overlapping.
 */
export const DELETE_REPLY_GAP_MS = 15;

/** `major.minor` of an engine version such as "20.10.24+dfsg1" or "28.5.2", or undefined. */
function majorMinor(version: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(version.trim());
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** Whether this engine miscounts endpoints deleted at once (before 28.1). Unknown versions: assume so. */
export function miscountsConcurrentDeletes(version: string): boolean {
  const v = majorMinor(version);
  if (!v) return true;
  return v[0] < 28 || (v[0] === 28 && v[1] < 1);
}
