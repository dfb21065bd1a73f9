import { readFile } from 'node:fs/promises';
import { ROUTE_PROTO, TAILNET_V4, TAILNET_V6 } from '../config/tailnet.js';
import type { Runner } from '../util/exec.js';
import { waitUntil } from '../util/wait-until.js';
import type { Logger } from '../util/log.js';
import type { IfName } from './host-spec.js';
import type { Ipv4Address } from './ipv4.js';
import type { NetnsPath } from './netns.js';

/**
 * Makes the tailnet ranges unreachable in a container's main routing table, and answers whether
 * Docker has finished the container's side yet: its address on an interface that is up, and a
 * default route. tailscaled routes the ranges in its own table (looked up first); while it is down
 * they must not leak out through the default route to the host, whose own Tailscale would carry
 * them. Docker's StaticRoutes cannot express an unreachable route, hence `ip` inside the namespace.
 *
 * The namespace exists before its interface does (on 20.10 the bind mount appears, then Docker
 * moves and configures the link). A tailscaled started in between saw no interface and, with
 * 1.102.5 measured, stayed in Starting for good (no STUN, no DERP: `tailscale up` timed out after
 * 60 s). The question rides in the same process as the routes.
 */
export async function prepareContainerRoutes(run: Runner, netns: NetnsPath, address: Ipv4Address | undefined): Promise<boolean> {
  const r = await run('nsenter', [`--net=${netns}`, 'ip', '-force', '-batch', '-'], {
    input: [
      `route replace unreachable ${TAILNET_V4} proto ${ROUTE_PROTO}`,
      `route replace unreachable ${TAILNET_V6} proto ${ROUTE_PROTO}`,
      address ? `addr show to ${address}/32` : 'addr show up',
      'route show default',
      '',
    ].join('\n'),
  });
  // IPv6 may be off in the container (line 2 fails then); the IPv4 route must exist.
  if (r.code !== 0 && /Command failed -:1$/m.test(r.stderr)) {
    throw new Error(`ip route in the container: ${r.stderr.trim()}`);
  }
  return interfaceConfigured(r.stdout, address);
}

/**
 * `ip addr show to <address>/32` then `ip route show default`: the link is up, holds the address,
 * and a default route exists (without a known address: any link up, and the route).
 */
export function interfaceConfigured(out: string, address: Ipv4Address | undefined): boolean {
  const flags = /^\d+: [^:]+: <([^>]*)>/m.exec(out)?.[1]?.split(',') ?? [];
  return flags.includes('UP') && (!address || out.includes(` inet ${address}/`)) && /^default /m.test(out);
}

/** Docker finishes a container's interface within ms to a few hundred ms of its namespace. */
export const INTERFACE_WAIT_MS = 10_000;
/** The first wait between two checks, doubling up to the last: each check is a process. */
const INTERFACE_POLL_MS = [20, 80] as const;
/** Reading the host's end of the pair costs no process: it is read more often. */
const PEER_POLL_MS = 10;

/**
 * Whether the container's end of the veth pair is up, read from the host's end without a process:
 * a veth has carrier only while both ends are up, and Docker sets the container's end up once it
 * holds its address (the default route follows within ms). `carrier`, not `operstate`: the driver
 * sets the carrier bit at once, the kernel derives operstate later from its link watcher.
 * Measured on 20.10, one container at a time: 127–255 ms from the namespace to a configured link.
 * Unknown (no such link, no sysfs): true, and the `ip` check alone decides.
 */
export async function peerUp(hostIf: IfName | undefined, read: (path: string) => Promise<string> = (p) => readFile(p, 'utf8')): Promise<boolean> {
  if (!hostIf) return true;
  // On the thread pool, never on the event loop: a synchronous read was tried, and on 20.10 the
  // profile found 13 ms per container inside it (recent kernels' carrier_show takes the RTNL
  // lock, which Docker holds while it configures links), every Join reply waiting behind it.
  return read(`/sys/class/net/${hostIf}/carrier`).then((s) => s.trim() === '1', () => true);
}

/**
 * `prepareContainerRoutes` until the interface is configured, once `peerUp` (when given) says the
 * link is up. Not configured in time (a network without a gateway never gets a default route) or
 * the endpoint left: `configured` is false, and the caller starts tailscaled anyway or not at all.
 * `checks`: how many processes it took.
 */
export async function prepareRoutesOnceConfigured(
  run: Runner,
  netns: NetnsPath,
  address: Ipv4Address | undefined,
  signal: AbortSignal,
  opts: { peerUp?: () => Promise<boolean>; waitMs?: number } = {},
): Promise<{ configured: boolean; checks: number }> {
  const deadline = Date.now() + (opts.waitMs ?? INTERFACE_WAIT_MS);
  if (opts.peerUp) await waitUntil(opts.peerUp, { timeoutMs: deadline - Date.now(), everyMs: PEER_POLL_MS, signal });
  let checks = 0;
  const done = await waitUntil(async () => (checks++, prepareContainerRoutes(run, netns, address)), {
    timeoutMs: Math.max(0, deadline - Date.now()),
    everyMs: INTERFACE_POLL_MS[0],
    maxEveryMs: INTERFACE_POLL_MS[1],
    signal,
  });
  return { configured: done === true, checks };
}

/**
 * The container's side before its tailscaled starts: the routes once Docker has configured the
 * interface (or after INTERFACE_WAIT_MS: started anyway, and said so), forwarding for a node that
 * routes. Nothing once the endpoint left.
 */
export async function prepareNamespace(
  run: Runner,
  netns: NetnsPath,
  link: { address: Ipv4Address | undefined; hostIf: IfName | undefined },
  forwarding: boolean,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  const { configured, checks } = await prepareRoutesOnceConfigured(run, netns, link.address, signal, { peerUp: () => peerUp(link.hostIf) });
  if (signal.aborted) return;
  if (configured) log.debug({ checks }, 'the container\'s interface is configured');
  else log.warn({ checks }, `Docker had not finished the container's interface after ${INTERFACE_WAIT_MS / 1000} s: tailscaled starts anyway`);
  if (forwarding) await enableForwarding(run, netns);
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
