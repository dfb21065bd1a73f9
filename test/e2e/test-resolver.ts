/**
 * A stand-in for the internet's DNS, run in the control server's namespace (which containers
 * reach): `*.public.test` has an A record, every other name is NXDOMAIN.
 *   ip netns exec tslink-ctl node dist/test/e2e/test-resolver.js <address> <port>
 */
import { createSocket } from 'node:dgram';

export const PUBLIC_NAME = 'www.public.test';
export const PUBLIC_ADDRESS = '192.0.2.10';

/** The question's name and type, or undefined for a packet that is no query. */
function question(msg: Buffer): { name: string; type: number; end: number } | undefined {
  const labels: string[] = [];
  let at = 12;
  while (at < msg.length && msg[at]! > 0) {
    const len = msg[at]!;
    if (len > 63 || at + 1 + len > msg.length) return undefined;
    labels.push(msg.subarray(at + 1, at + 1 + len).toString('ascii').toLowerCase());
    at += 1 + len;
  }
  if (at + 5 > msg.length) return undefined;
  return { name: labels.join('.'), type: msg.readUInt16BE(at + 1), end: at + 5 };
}

export function answer(msg: Buffer): Buffer | undefined {
  if (msg.length < 17) return undefined;
  const q = question(msg);
  if (!q) return undefined;
  const known = q.name === PUBLIC_NAME || q.name.endsWith('.public.test');
  const header = Buffer.from(msg.subarray(0, 12));
  header.writeUInt16BE(0x8180 | (known ? 0 : 3), 2); // response, RD+RA, NOERROR or NXDOMAIN
  const a = known && q.type === 1;
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(a ? 1 : 0, 6);
  header.writeUInt32BE(0, 8);
  const parts = [header, msg.subarray(12, q.end)];
  if (a) parts.push(Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, ...PUBLIC_ADDRESS.split('.').map(Number)]));
  return Buffer.concat(parts);
}

if (process.argv[1]?.endsWith('test-resolver.js')) {
  const sock = createSocket('udp4');
  sock.on('message', (msg, from) => {
    const out = answer(msg);
    if (out) sock.send(out, from.port, from.address);
  });
  sock.bind(Number(process.argv[3] ?? 53), process.argv[2] ?? '0.0.0.0', () => console.log('listening'));
}
