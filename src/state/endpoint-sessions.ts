/**
 * The live part of an endpoint's life, from Docker's Join to its Leave: one session per joined
 * endpoint, whose signal Leave aborts. Every step on the road from Join to a running node (the
 * binding, the namespace wait, the node's start, which may come late: a repair pass, a jittered
 * recovery) asks the session whether the endpoint is still joined, so no part keeps a "leaving"
 * set of its own in step with another's by hand.
 */
export class EndpointSession {
  private readonly ctl = new AbortController();

  constructor(
    readonly endpointId: string,
    /** Joined before this plugin process started (found by a listing, not by a Join just now). */
    readonly recovered: boolean,
  ) {}

  /** Aborted by Leave: whatever works for this endpoint stops. */
  get signal(): AbortSignal {
    return this.ctl.signal;
  }

  get active(): boolean {
    return !this.ctl.signal.aborted;
  }

  end(): void {
    this.ctl.abort(new Error('the endpoint left'));
  }
}

export class EndpointSessions {
  private readonly sessions = new Map<string, EndpointSession>();

  /** Docker joined the endpoint (again): its live session, new unless one is live already. */
  join(endpointId: string): EndpointSession {
    const cur = this.sessions.get(endpointId);
    if (cur?.active) return cur;
    const s = new EndpointSession(endpointId, false);
    this.sessions.set(endpointId, s);
    return s;
  }

  /**
   * An endpoint a restarted plugin finds joined: a session, unless one exists (a Join since, or
   * a Leave since, which a late listing must not undo).
   */
  recover(endpointId: string): EndpointSession | undefined {
    if (this.sessions.has(endpointId)) return this.active(endpointId);
    const s = new EndpointSession(endpointId, true);
    this.sessions.set(endpointId, s);
    return s;
  }

  /** The endpoint's session while it is joined; undefined before a Join and once Leave began. */
  active(endpointId: string): EndpointSession | undefined {
    const s = this.sessions.get(endpointId);
    return s?.active ? s : undefined;
  }

  /** Leave has begun: the session ends (it stays, ended, until the record goes). */
  leave(endpointId: string): void {
    this.sessions.get(endpointId)?.end();
  }

  /** The endpoint's record is deleted. */
  delete(endpointId: string): void {
    this.leave(endpointId);
    this.sessions.delete(endpointId);
  }
}
