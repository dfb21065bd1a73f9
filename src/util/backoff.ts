/**
 * Exponential backoff with "full jitter" (a uniformly random delay up to the exponential cap):
 * many plugins or endpoints retrying at once spread out instead of arriving together.
 */
export function fullJitterDelay(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, minMs * 2 ** Math.max(0, attempt));
  return Math.max(minMs, Math.floor(random() * cap));
}
