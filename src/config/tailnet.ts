/** Facts about Tailscale that the host side and the node side must agree on. */

/** tailscaled's WireGuard port in every container (`--port`); the only port containers share. */
export const WIREGUARD_PORT = 41641;
/** The tailnet's address ranges (CGNAT IPv4 and Tailscale's ULA IPv6). */
export const TAILNET_V4 = '100.64.0.0/10';
export const TAILNET_V6 = 'fd7a:115c:a1e0::/48';
/** The route protocol number tslink tags every route it makes with (`ip route ... proto 211`). */
export const ROUTE_PROTO = 211;
