// Facts a peer reports: os-release read as the shell reads it (cross-checked by sourcing the
// host's /etc/os-release with sh), uname's arch and release spelling.
import { readFile } from 'node:fs/promises';
import test from 'ava';
import { execa } from 'execa';
import { gatherFacts, parseOsRelease } from '../../../agent/remote/peer-facts.ts';

test("parseOsRelease() reads the host's /etc/os-release as sh does", async (t) => {
  const text = await readFile('/etc/os-release', 'utf8');
  const ours = parseOsRelease(text);
  const sh = await execa('sh', [
    '-c',
    '. /etc/os-release && printf "%s\\n%s\\n%s" "$ID" "$VERSION_ID" "$PRETTY_NAME"',
  ]);
  t.deepEqual([ours.ID ?? '', ours.VERSION_ID ?? '', ours.PRETTY_NAME ?? ''], sh.stdout.split('\n'));
});

test("parseOsRelease() unquotes values and gatherFacts() reports MilkyWayLinux's IMAGE_VERSION as coreos", async (t) => {
  t.deepEqual(parseOsRelease('NAME="MilkyWayLinux"\nID=milkyway\n# comment\nIMAGE_VERSION=\'1.2.0\'\n'), {
    NAME: 'MilkyWayLinux',
    ID: 'milkyway',
    IMAGE_VERSION: '1.2.0',
  });
  const f = await gatherFacts('/etc/os-release');
  const uname = await execa('uname', ['-m', '-r']);
  t.is(`${f.kernel} ${f.arch}`, uname.stdout.trim());
  t.is(f.coreos, undefined, 'a Debian host is not CoreOS');
  const missing = await gatherFacts('/nonexistent/os-release');
  t.is(missing.os.id, 'unknown');
});
