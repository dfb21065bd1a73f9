/**
 * A real tailnet for the e2e suite: headscale (the pinned build, with its embedded DERP and STUN
 * server) in a network namespace of its own, a test host that the containers' namespaces reach
 * through the host's routing and NAT, as a control server on the internet would be reached.
 * The real tailscale/tailscaled that the plugin bundles run every node.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, sh, sleep, waitFor } from './harness.js';
import { SUPPORTED_TAILSCALE } from '../../src/config/tailscale-features.js';
import { shortId } from '../../src/util/short-id.js';

/** The pinned real Tailscale, as scripts/build-tailscale.sh builds it. */
export const REAL_TS_DIR = join(ROOT, '.cache/tailscale', `v${SUPPORTED_TAILSCALE}`);
const HEADSCALE_VERSION = /github\.com\/juanfont\/headscale (v\S+)/.exec(readFileSync(join(ROOT, 'tools/headscale/go.mod'), 'utf8'))?.[1] ?? 'unknown';
export const HEADSCALE = join(ROOT, '.cache/headscale', HEADSCALE_VERSION, 'headscale');

/** The control host's network namespace. */
export const CTL_NAMESPACE = 'tslink-ctl';
const NS = CTL_NAMESPACE;
const HOST_IF = 'tslctl0';
/** The control host's address: a test host of this suite's own, in its own namespace. */
export const CTL_ADDR = '10.214.0.2';
const HOST_ADDR = '10.214.0.1';
/** The subnet a node routes for in the routing e2e (issue 26), auto-approved by the policy. */
export const ROUTED_SUBNET = '10.77.0.0/24';
export const CONTROL_URL = `http://${CTL_ADDR}:8080`;
export const BASE_DOMAIN = 'tsl.test';
/** A DNS record control hands every node (headscale's `dns.extra_records`). */
export const EXTRA_RECORD = { name: `grafana.${'tsl.test'}`, address: '100.64.0.250' };
/**
 * What every tailscaled needs on this local tailnet: plain-HTTP DERP (the embedded DERP server has
 * no TLS here) and no port mapping probes (no router to ask).
 */
export const TAILSCALED_ENV = 'TS_DEBUG_USE_DERP_HTTP=1 TS_DISABLE_PORTMAPPER=1';

export interface HsNode {
  id: number;
  name: string;
  givenName: string;
  ipAddresses: string[];
  tags: string[];
  online: boolean;
  user?: { name?: string };
  /** Routes the node advertises, and those control approved (issue 26). */
  availableRoutes: string[];
  approvedRoutes: string[];
}

interface RawNode {
  id?: string | number;
  name?: string;
  given_name?: string;
  ip_addresses?: string[];
  tags?: string[];
  forced_tags?: string[];
  valid_tags?: string[];
  online?: boolean;
  user?: { name?: string };
  available_routes?: string[];
  approved_routes?: string[];
}

export class Headscale {
  private child?: ChildProcess;
  readonly dir = mkdtempSync(join(tmpdir(), 'tslink-headscale-'));
  readonly config = join(this.dir, 'config.yaml');
  readonly logFile = join(this.dir, 'headscale.log');

  /** Starts headscale in its namespace and waits until it answers; idempotent setup of the namespace. */
  async start(): Promise<void> {
    await this.makeNamespace();
    writeFileSync(join(this.dir, 'policy.json'), JSON.stringify({
      tagOwners: { 'tag:e2e': ['e2e@'], 'tag:web': ['e2e@'], 'tag:db': ['e2e@'] },
      // autogroup:internet: what an exit node may carry; headscale's `*` does not hold it (measured).
      acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }, { action: 'accept', src: ['*'], dst: ['autogroup:internet:*'] }],
      // Issue 26: what the suite's nodes advertise is approved by policy, as an operator would set it.
      autoApprovers: { exitNode: ['e2e@'], routes: { [ROUTED_SUBNET]: ['e2e@'] } },
    }));
    writeFileSync(this.config, headscaleConfig(this.dir));
    const fd = openSync(this.logFile, 'a');
    this.child = spawn('ip', ['netns', 'exec', NS, HEADSCALE, '-c', this.config, 'serve'], { stdio: ['ignore', fd, fd], detached: false });
    closeSync(fd);
    const child = this.child;
    await waitFor('headscale to answer', async () => {
      if (child.exitCode !== null) throw new Error(`headscale exited ${child.exitCode}`);
      return (await this.cli(['users', 'list', '-o', 'json'])).code === 0;
    }, 30_000, 200)
      .catch((e: Error) => { throw new Error(`${e.message}\n${this.log()}`); });
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8').slice(-4000);
    } catch {
      return '';
    }
  }

  private async makeNamespace(): Promise<void> {
    await sh('ip', ['netns', 'del', NS]);
    await sh('ip', ['link', 'del', HOST_IF]);
    const steps: string[][] = [
      ['netns', 'add', NS],
      ['link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS],
      ['addr', 'add', `${HOST_ADDR}/24`, 'dev', HOST_IF],
      ['link', 'set', HOST_IF, 'up'],
      ['-n', NS, 'addr', 'add', `${CTL_ADDR}/24`, 'dev', 'eth0'],
      ['-n', NS, 'link', 'set', 'eth0', 'up'],
      ['-n', NS, 'link', 'set', 'lo', 'up'],
      ['-n', NS, 'route', 'add', 'default', 'via', HOST_ADDR],
    ];
    for (const s of steps) {
      const r = await sh('ip', s);
      if (r.code !== 0) throw new Error(`ip ${s.join(' ')}: ${r.stderr}`);
    }
    // The containers' traffic is forwarded by the host: Docker may have set FORWARD's policy to DROP.
    await sh('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    for (const dir of [['-i', HOST_IF], ['-o', HOST_IF]]) {
      const rule = ['FORWARD', ...dir, '-m', 'comment', '--comment', 'tslink-e2e-control', '-j', 'ACCEPT'];
      if ((await sh('iptables', ['-w', '-C', ...rule])).code !== 0) await sh('iptables', ['-w', '-I', ...rule]);
    }
  }

  /** The headscale CLI (over its unix socket). */
  cli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return sh(HEADSCALE, ['-c', this.config, ...args], { timeoutMs: 30_000 });
  }

  async mustCli(args: readonly string[]): Promise<string> {
    const r = await this.cli(args);
    if (r.code !== 0) throw new Error(`headscale ${args.join(' ')}: ${r.stderr || r.stdout}`);
    return r.stdout;
  }

  /** The user's ID, created when missing. */
  async user(name: string): Promise<number> {
    const list = (JSON.parse((await this.mustCli(['users', 'list', '-o', 'json'])) || '[]') ?? []) as { id: string | number; name: string }[];
    const found = list.find((u) => u.name === name);
    if (found) return Number(found.id);
    const made = JSON.parse(await this.mustCli(['users', 'create', name, '-o', 'json'])) as { id: string | number };
    return Number(made.id);
  }

  /** A pre-auth key: its text and its ID (to expire or delete it later). */
  async key(opts: { user?: string; reusable?: boolean; ephemeral?: boolean; tags?: string[] } = {}): Promise<{ key: string; id: number }> {
    const uid = await this.user(opts.user ?? 'e2e');
    const args = ['preauthkeys', 'create', '-u', String(uid), '-e', '2h', '-o', 'json'];
    if (opts.reusable ?? true) args.push('--reusable');
    if (opts.ephemeral) args.push('--ephemeral');
    if (opts.tags?.length) args.push('--tags', opts.tags.join(','));
    const k = JSON.parse(await this.mustCli(args)) as { key: string; id: string | number };
    return { key: k.key, id: Number(k.id) };
  }

  async expireKey(id: number): Promise<void> {
    await this.mustCli(['preauthkeys', 'expire', '--id', String(id)]);
  }

  async deleteKey(id: number): Promise<void> {
    await this.mustCli(['preauthkeys', 'delete', '--id', String(id)]);
  }

  async nodes(): Promise<HsNode[]> {
    const raw = JSON.parse((await this.mustCli(['nodes', 'list', '-o', 'json'])) || '[]') as RawNode[] | null;
    return (raw ?? []).map((n) => ({
      id: Number(n.id),
      name: n.name ?? '',
      givenName: n.given_name ?? '',
      ipAddresses: n.ip_addresses ?? [],
      tags: [...new Set([...(n.tags ?? []), ...(n.forced_tags ?? []), ...(n.valid_tags ?? [])])].sort(),
      online: n.online === true,
      user: n.user,
      availableRoutes: n.available_routes ?? [],
      approvedRoutes: n.approved_routes ?? [],
    }));
  }

  /** The node control lists under this hostname (headscale's given name), waiting for it. */
  async nodeNamed(name: string, timeoutMs = 30_000): Promise<HsNode> {
    return waitFor(`control to list ${name}`, async () => (await this.nodes()).find((n) => n.givenName === name), timeoutMs, 250);
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (c && c.exitCode === null && c.signalCode === null) {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
    }
    // ip netns exec runs headscale as its child: make sure nothing is left in the namespace.
    await sh('ip', ['netns', 'pids', NS]).then(async (r) => {
      for (const pid of r.stdout.split('\n').filter(Boolean)) await sh('kill', ['-9', pid]);
    });
    await sh('ip', ['link', 'del', HOST_IF]);
    await sh('ip', ['netns', 'del', NS]);
    for (const dir of [['-i', HOST_IF], ['-o', HOST_IF]]) {
      await sh('iptables', ['-w', '-D', 'FORWARD', ...dir, '-m', 'comment', '--comment', 'tslink-e2e-control', '-j', 'ACCEPT']);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function headscaleConfig(dir: string): string {
  // JSON is YAML: no YAML library needed to write it.
  return JSON.stringify({
    server_url: CONTROL_URL,
    listen_addr: '0.0.0.0:8080',
    metrics_listen_addr: '127.0.0.1:9090',
    grpc_listen_addr: '127.0.0.1:50443',
    grpc_allow_insecure: false,
    noise: { private_key_path: join(dir, 'noise_private.key') },
    prefixes: { v4: '100.64.0.0/10', v6: 'fd7a:115c:a1e0::/48', allocation: 'sequential' },
    derp: {
      server: {
        enabled: true,
        region_id: 999,
        region_code: 'e2e',
        region_name: 'tslink e2e DERP',
        verify_clients: true,
        stun_listen_addr: '0.0.0.0:3478',
        private_key_path: join(dir, 'derp_server_private.key'),
        automatically_add_embedded_derp_region: true,
        ipv4: CTL_ADDR,
      },
      urls: [],
      paths: [],
      auto_update_enabled: false,
    },
    disable_check_updates: true,
    node: { expiry: 0, ephemeral: { inactivity_timeout: '30m' } },
    database: { type: 'sqlite', sqlite: { path: join(dir, 'db.sqlite'), write_ahead_log: true } },
    log: { level: 'info', format: 'text' },
    policy: { mode: 'file', path: join(dir, 'policy.json') },
    dns: {
      magic_dns: true,
      base_domain: BASE_DOMAIN,
      override_local_dns: false,
      nameservers: { global: [], split: {} },
      search_domains: [],
      extra_records: [{ name: EXTRA_RECORD.name, type: 'A', value: EXTRA_RECORD.address }],
    },
    unix_socket: join(dir, 'headscale.sock'),
    unix_socket_permission: '0770',
    logtail: { enabled: false },
  }, null, 2);
}

/** `tailscale` against a node's own daemon socket (the plugin's run directory). */
export function nodeCli(dataDir: string, endpointId: string, args: readonly string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return sh(join(REAL_TS_DIR, 'tailscale'), [`--socket=${join(dataDir, 'run', shortId(endpointId), 'tailscaled.sock')}`, ...args], { timeoutMs });
}
