// Two network namespaces joined by a veth pair, like two machines on one LAN: loopback up,
// one /24 address each, multicast on and a default route through the link (so mDNS's
// multicast has somewhere to go). Needs root; both namespaces are deleted in teardown.
import type { ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { run } from '../../common/exec.ts';

const ip = (args: string[]) => run('ip', args, { timeout: 10_000 });

/** Namespace names `[A, B]`; A gets `10.<net>.0.1`, B `10.<net>.0.2`. */
export async function vethPair(t: ExecutionContext, prefix: string, net: number): Promise<[string, string]> {
  const tag = randomBytes(3).toString('hex');
  const nsA = `${prefix}a${tag}`;
  const nsB = `${prefix}b${tag}`;
  await ip(['netns', 'add', nsA]);
  t.teardown(() => ip(['netns', 'del', nsA]).then(() => undefined));
  await ip(['netns', 'add', nsB]);
  t.teardown(() => ip(['netns', 'del', nsB]).then(() => undefined));
  const [devA, devB] = [`${prefix}va${tag}`, `${prefix}vb${tag}`];
  await ip(['link', 'add', devA, 'netns', nsA, 'type', 'veth', 'peer', 'name', devB, 'netns', nsB]);
  for (const [ns, dev, addr] of [
    [nsA, devA, `10.${net}.0.1/24`],
    [nsB, devB, `10.${net}.0.2/24`],
  ] as const) {
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    await ip(['-n', ns, 'addr', 'add', addr, 'dev', dev]);
    await ip(['-n', ns, 'link', 'set', dev, 'up', 'multicast', 'on']);
    await ip(['-n', ns, 'route', 'add', 'default', 'dev', dev]);
  }
  return [nsA, nsB];
}
