/** The operations listener's TCP side needs the bearer token (issue 22); the unix socket does not. */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Metrics } from '../../src/ops/metrics.js';
import { OPS_TOKEN_FILE, loadOpsToken, tokenWhere } from '../../src/ops/ops-auth.js';
import { OPS_BODY_LIMIT, OPS_MAX_CONNECTIONS, buildOpsServer, type OpsSources } from '../../src/ops/server.js';
import { tempDir } from './fakes.js';

const TOKEN = 'a'.repeat(24) + '0123456789abcdef0123456789abcdef';
const WHERE = '/var/lib/tslink-test/ops-token';
const watcher = { connected: true, lastEventAgeMs: 10, processed: 1, dropped: 0, reconnects: 0, queued: 0 };
const src: OpsSources = {
  metrics: new Metrics(),
  endpoints: () => [],
  watcher: () => watcher,
  recovered: () => true,
};

describe('operations listener authentication', () => {
  const tcp = buildOpsServer(src, { auth: { token: TOKEN, where: WHERE } });
  const unix = buildOpsServer(src);
  after(async () => {
    await tcp.close();
    await unix.close();
  });
  const ROUTES = ['/readyz', '/v1/endpoints', '/v1/endpoints/web', '/metrics', '/nope'];

  it('refuses every route but /healthz without a token, saying where the token is', async () => {
    for (const url of ROUTES) {
      const r = await tcp.inject({ method: 'GET', url });
      assert.equal(r.statusCode, 401, url);
      assert.equal(r.headers['www-authenticate'], 'Bearer realm="tslink"');
      const body = r.json<{ error: string }>();
      assert.match(body.error, /needs the header "Authorization: Bearer <token>"/);
      assert.ok(body.error.includes(WHERE), body.error);
      assert.ok(!r.body.includes(TOKEN));
    }
    assert.equal((await tcp.inject({ method: 'HEAD', url: '/metrics' })).statusCode, 401);
  });

  it('refuses a wrong token, whatever its length or form, without echoing it', async () => {
    const wrong = [
      `Bearer ${TOKEN.slice(0, -1)}b`, // same length, last character differs
      `Bearer ${TOKEN.slice(0, -1)}`, // a prefix
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN} ${TOKEN}`,
      `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`,
      TOKEN,
      'Bearer ',
      `Bearer ${'z'.repeat(8000)}`,
    ];
    for (const authorization of wrong) {
      const r = await tcp.inject({ method: 'GET', url: '/metrics', headers: { authorization } });
      assert.equal(r.statusCode, 401, authorization.slice(0, 40));
      assert.match(r.json<{ error: string }>().error, /the bearer token is wrong; the token is in /);
      assert.ok(!r.body.includes('zzzz') && !r.body.includes(TOKEN));
    }
  });

  it('answers with the right token', async () => {
    for (const authorization of [`Bearer ${TOKEN}`, `bearer  ${TOKEN} `]) {
      const ready = await tcp.inject({ method: 'GET', url: '/readyz', headers: { authorization } });
      assert.equal(ready.statusCode, 200);
      const m = await tcp.inject({ method: 'GET', url: '/metrics', headers: { authorization } });
      assert.equal(m.statusCode, 200);
      assert.match(m.body, /^tslink_docker_event_stream_connected 1$/m);
      assert.equal((await tcp.inject({ method: 'GET', url: '/v1/endpoints', headers: { authorization } })).json<{ endpoints: unknown[] }>().endpoints.length, 0);
      assert.equal((await tcp.inject({ method: 'GET', url: '/nope', headers: { authorization } })).statusCode, 404);
    }
  });

  it('keeps /healthz open: a liveness probe has no secret', async () => {
    for (const url of ['/healthz', '/healthz?probe=1']) {
      const r = await tcp.inject({ method: 'GET', url });
      assert.equal(r.statusCode, 200, url);
      assert.deepEqual(r.json(), { status: 'ok' });
    }
    assert.equal((await tcp.inject({ method: 'GET', url: '/healthz', headers: { authorization: 'Bearer wrong-wrong-wrong' } })).statusCode, 200);
  });

  it('asks no token on the unix socket variant (its file mode guards it)', async () => {
    for (const url of ['/healthz', '/readyz', '/v1/endpoints', '/metrics']) {
      assert.equal((await unix.inject({ method: 'GET', url })).statusCode, 200, url);
    }
  });

  it('bounds connections, timeouts and bodies', async () => {
    for (const app of [tcp, unix]) {
      assert.equal(app.server.maxConnections, OPS_MAX_CONNECTIONS);
      assert.equal(OPS_MAX_CONNECTIONS, 64);
      assert.ok(app.server.keepAliveTimeout > 0 && app.server.keepAliveTimeout <= 10_000);
      assert.ok(app.server.requestTimeout > 0 && app.server.requestTimeout <= 10_000);
      assert.ok(app.server.headersTimeout > 0 && app.server.headersTimeout <= 10_000);
      assert.equal(app.initialConfig.bodyLimit, OPS_BODY_LIMIT);
    }
    const big = await tcp.inject({ method: 'POST', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, payload: JSON.stringify({ x: 'y'.repeat(OPS_BODY_LIMIT) }) });
    assert.ok(big.statusCode === 413 || big.statusCode === 404, String(big.statusCode));
  });

  it('works over real TCP: 401 without the token, 200 with it', async () => {
    const app = buildOpsServer(src, { auth: { token: TOKEN, where: WHERE } });
    try {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = app.server.address() as { port: number };
      const base = `http://127.0.0.1:${port}`;
      assert.equal((await fetch(`${base}/metrics`)).status, 401);
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      assert.equal((await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
    } finally {
      await app.close();
    }
  });
});

describe('operations token file', () => {
  it('is made at the first start with mode 0600 (whatever the umask) and reused at the next', async () => {
    const dir = tempDir();
    const umask = process.umask(0o000);
    let first;
    try {
      first = await loadOpsToken(dir);
    } finally {
      process.umask(umask);
    }
    const file = join(dir, OPS_TOKEN_FILE);
    assert.equal(first.file, file);
    assert.equal(first.created, true);
    assert.match(first.token, /^[0-9a-f]{64}$/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(readFileSync(file, 'utf8'), first.token);
    const second = await loadOpsToken(dir);
    assert.deepEqual(second, { token: first.token, file, created: false, narrowed: false });
    assert.notEqual((await loadOpsToken(tempDir())).token, first.token);
  });

  it('takes a token a person wrote (trimmed), and narrows a file readable by others to 0600', async () => {
    const dir = tempDir();
    const file = join(dir, OPS_TOKEN_FILE);
    writeFileSync(file, `  my-own-token-0123456789\n`, { mode: 0o644 });
    const t = await loadOpsToken(dir);
    assert.equal(t.token, 'my-own-token-0123456789');
    assert.equal(t.narrowed, true);
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  it('refuses an unusable file, naming it but never quoting it', async () => {
    const secretish = 'short-secret';
    const cases: [string, (file: string) => void, RegExp][] = [
      ['empty', (f) => writeFileSync(f, '\n'), /is empty/],
      ['too short', (f) => writeFileSync(f, secretish), /holds no usable token/],
      ['blanks inside', (f) => writeFileSync(f, `${secretish} ${secretish} ${secretish}`), /holds no usable token/],
      ['huge', (f) => writeFileSync(f, 'x'.repeat(10_000)), /is 10000 bytes long/],
      ['a link', (f) => symlinkSync('/etc/hostname', f), /is a symbolic link/],
    ];
    for (const [name, make, why] of cases) {
      const dir = tempDir();
      const file = join(dir, OPS_TOKEN_FILE);
      make(file);
      await assert.rejects(loadOpsToken(dir), (e: Error) => {
        assert.match(e.message, why, name);
        assert.ok(e.message.includes(file), name);
        assert.match(e.message, /delete it and tslink makes a new one/);
        assert.ok(!e.message.includes(secretish), name);
        return true;
      });
    }
  });

  it('is told by its host path for a managed plugin', () => {
    assert.equal(tokenWhere('/tmp/x/ops-token', false), '/tmp/x/ops-token');
    assert.match(tokenWhere('/data/ops-token', true), /\/var\/lib\/docker-plugins\/tailscale\/ops-token on the host/);
  });
});
