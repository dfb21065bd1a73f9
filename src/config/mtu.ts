/**
 * The MTU of a network's links: what `com.docker.network.driver.mtu` may set (network-options.ts)
 * and what a stored record must hold before the host is given it (host/host-spec.ts).
 */
export const DEFAULT_MTU = 1500;
/** The least an IPv4 link may have (RFC 791). */
export const MIN_MTU = 68;
export const MAX_MTU = 65535;
