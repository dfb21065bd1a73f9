/**
 * One endpoint at a time may use an identity (its state directory, the key here): two daemons on one node key
 * would fight over the same tailnet identity. Later claimants wait in order.
 */
export class IdentityLocks {
  private readonly holders = new Map<string, string>();
  private readonly waiters = new Map<string, string[]>();

  /** Returns the current holder: `endpointId` itself when it got the name. */
  claim(hostname: string, endpointId: string): string {
    const holder = this.holders.get(hostname);
    if (!holder || holder === endpointId) {
      this.holders.set(hostname, endpointId);
      return endpointId;
    }
    const q = this.waiters.get(hostname) ?? [];
    if (!q.includes(endpointId)) q.push(endpointId);
    this.waiters.set(hostname, q);
    return holder;
  }

  /** Releases the name (or a place in its queue); returns the endpoint that holds it next. */
  release(hostname: string, endpointId: string): string | undefined {
    const q = (this.waiters.get(hostname) ?? []).filter((e) => e !== endpointId);
    if (this.holders.get(hostname) !== endpointId) {
      this.waiters.set(hostname, q);
      return undefined;
    }
    const next = q.shift();
    if (q.length) this.waiters.set(hostname, q);
    else this.waiters.delete(hostname);
    if (next) this.holders.set(hostname, next);
    else this.holders.delete(hostname);
    return next;
  }

  holder(hostname: string): string | undefined {
    return this.holders.get(hostname);
  }
}
