import type { DockerEvent } from './events.js';

// `docker kill -s HUP` (a reload) is a kill event too: only signals that stop the container
// may drain it, or a backend that keeps running would stay drained.
const STOPPING_SIGNALS = new Set(['2', '3', '9', '15', 'SIGINT', 'SIGQUIT', 'SIGKILL', 'SIGTERM']);

/** The container Docker is stopping, if this event says so (a stopping `kill`, or `die`). */
export function stoppingContainer(e: DockerEvent): string | undefined {
  if (e.Type !== 'container') return undefined;
  if (e.Action === 'die') return e.Actor.ID;
  if (e.Action === 'kill' && STOPPING_SIGNALS.has(e.Actor.Attributes?.['signal'] ?? '15')) return e.Actor.ID;
  return undefined;
}
