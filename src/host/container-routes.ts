import { ROUTE_PROTO, TAILNET_V4, TAILNET_V6 } from '../config/tailnet.js';
import type { Runner } from '../util/exec.js';
import type { NetnsPath } from './netns.js';

/**
 * Makes the tailnet ranges unreachable in a container's main routing table. tailscaled routes
 * them in its own table (looked up first); while it is down they must not leak out through the
 * default route to the host, whose own Tailscale would carry them. Docker's StaticRoutes cannot
 * express an unreachable route, hence `ip` inside the namespace.
 */
export async function blockTailnetOutsideTailscale(run: Runner, netns: NetnsPath): Promise<void> {
  const r = await run('nsenter', [`--net=${netns}`, 'ip', '-force', '-batch', '-'], {
    input: `route replace unreachable ${TAILNET_V4} proto ${ROUTE_PROTO}\nroute replace unreachable ${TAILNET_V6} proto ${ROUTE_PROTO}\n`,
  });
  // IPv6 may be off in the container (line 2 fails then); the IPv4 route must exist.
  if (r.code !== 0 && /Command failed -:1$/m.test(r.stderr)) {
    throw new Error(`ip route in the container: ${r.stderr.trim()}`);
  }
}
