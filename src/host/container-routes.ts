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

/**
 * Turns on IP forwarding in a container's namespace, for a node that offers routes or an exit
 * node (issue 26): tailscaled forwards between tailscale0 and eth0 only when the kernel does. A
 * new namespace starts with forwarding off. The managed plugin's /proc/sys is read-only, so the
 * write goes through a proc of the container's own (`unshare --mount-proc`). IPv6 may be off in
 * the container: its line may fail.
 */
export async function enableForwarding(run: Runner, netns: NetnsPath): Promise<void> {
  const script = 'echo 1 > /proc/sys/net/ipv4/ip_forward && { echo 1 > /proc/sys/net/ipv6/conf/all/forwarding 2>/dev/null; true; }';
  const r = await run('nsenter', [`--net=${netns}`, 'unshare', '--mount-proc', 'sh', '-c', script]);
  if (r.code !== 0) throw new Error(`IP forwarding in the container: ${r.stderr.trim()}`);
}
