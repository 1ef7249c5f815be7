// The registry mirror here lacks the non-Linux-glibc builds of Biome, so npm leaves them
// out of package-lock.json and a later `npm ci` refuses the lock as out of sync. This
// adds the missing optional, platform-bound entries (npm skips them on other platforms).
// Run after any `npm install` that rewrites the lock: node scripts/lock-platforms.mjs
import fs from 'node:fs';
const lock = JSON.parse(fs.readFileSync('package-lock.json', 'utf8'));
const biome = lock.packages['node_modules/@biomejs/biome'];
const plat = {
  'android-arm64': ['android', 'arm64'],
  'android-x64': ['android', 'x64'],
  'darwin-arm64': ['darwin', 'arm64'],
  'darwin-x64': ['darwin', 'x64'],
  'linux-arm64-musl': ['linux', 'arm64', 'musl'],
  'linux-x64-musl': ['linux', 'x64', 'musl'],
  'win32-arm64': ['win32', 'arm64'],
  'win32-x64': ['win32', 'x64'],
  'linux-arm64': ['linux', 'arm64', 'glibc'],
  'linux-x64': ['linux', 'x64', 'glibc'],
};
for (const name of Object.keys(biome.optionalDependencies)) {
  const key = `node_modules/${name}`;
  if (lock.packages[key]) continue;
  const [os, cpu, libc] = plat[name.replace('@biomejs/cli-', '')];
  const e = {
    version: biome.optionalDependencies[name],
    cpu: [cpu],
    dev: true,
    license: 'MIT OR Apache-2.0',
    optional: true,
    os: [os],
    engines: { node: '>=14.21.3' },
  };
  if (libc) e.libc = [libc];
  lock.packages[key] = e;
}
lock.packages = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)),
);
fs.writeFileSync('package-lock.json', `${JSON.stringify(lock, null, 2)}\n`);
