/**
 * Which Tailscale release tslink supports, and which of the features tslink's labels use need
 * which release. One place: plugin/Dockerfile pins the same version, the test double reports
 * it, and a label whose feature the found `tailscale` lacks is refused naming the version.
 */
export const SUPPORTED_TAILSCALE = '1.102.5';

/** Features a container's labels can ask for, with the first release that has each. */
export const FEATURE_SINCE = {
  'tslink.serve.<port>=…?proxy-protocol': '1.92.0',
  'tslink.serve.<port>=…?accept-app-caps': '1.92.0',
  // 1.92 accepts both for a Service but sends no PROXY header / uses the wrong certificate name;
  // fixed in 1.94.0 (test/double/README.md cites the commits).
  'tslink.service with tslink.serve.<port>=tcp…?proxy-protocol': '1.94.0',
  'tslink.service with tslink.serve.<port>=tls-terminated-tcp': '1.94.0',
} as const;
export type Feature = keyof typeof FEATURE_SINCE;

/** `1.92.5` (from `tailscale version`'s first line, e.g. `1.92.5-t1234abcd`) as numbers, or undefined. */
export function parseVersion(text: string): [number, number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(text.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** Whether `found` is at least `needed`; an unreadable version is given the benefit of the doubt. */
export function atLeast(found: string, needed: string): boolean {
  const a = parseVersion(found);
  const b = parseVersion(needed)!;
  if (!a) return true;
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! > b[i]!;
  return true;
}
