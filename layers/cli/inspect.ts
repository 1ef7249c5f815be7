// `mway-layer inspect FILE.mwl`: manifest, signers (unverified), member sizes and payload files;
// a module's actions with what each may do (its declared privileges).
import { lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineCommand } from 'citty';
import { commonArgs, output } from '../../common/index.ts';
import { parseCertificates } from '../../keys/index.ts';
import { extractFiles } from '../extract.ts';
import { readLayer } from '../layer-file.ts';
import { signerJson } from './shared.ts';

interface FileEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink';
  mode: string;
  size: number;
}

async function listTree(root: string): Promise<FileEntry[]> {
  const out: FileEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const n of (await readdir(join(root, rel))).sort()) {
      const r = rel === '' ? n : `${rel}/${n}`;
      const st = await lstat(join(root, r));
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file';
      out.push({
        path: `/${r}`,
        type,
        mode: (st.mode & 0o7777).toString(8).padStart(4, '0'),
        size: type === 'file' ? st.size : 0,
      });
      if (st.isDirectory() && out.length < 100_000) await walk(r);
    }
  };
  await walk('');
  return out;
}

export default defineCommand({
  args: {
    ...commonArgs,
    file: { type: 'positional', required: true, description: 'Layer .mwl' },
    files: { type: 'boolean', default: true, description: 'List the payload files (--no-files to skip)' },
  },
  async run({ args }) {
    const l = await readLayer(args.file);
    const signers = l.signatures.map((s) => {
      const leaf =
        s.chain?.[0] === undefined
          ? undefined
          : parseCertificates(new Uint8Array(Buffer.from(s.chain[0], 'base64')))[0];
      return {
        created: s.created,
        alg: s.alg,
        fingerprint: s.signer,
        subject: leaf?.subject,
        role: leaf?.role,
        ...(leaf === undefined ? {} : signerJson(leaf)),
      };
    });
    let files: FileEntry[] | undefined;
    if (args.files !== false) {
      const tmp = await mkdtemp(join(tmpdir(), 'mway-inspect-'));
      try {
        const x = await extractFiles(args.file, join(tmp, 'x'));
        // The listing shows the image's own modes, setuid/setgid included (extract removes them).
        const image = new Map(x.stripped.map((s) => [s.path, s.mode]));
        files = (await listTree(join(tmp, 'x'))).map((f) => ({ ...f, mode: image.get(f.path) ?? f.mode }));
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    }
    const members = l.members.map((m) => ({ name: m.name, offset: m.offset, size: m.size }));
    const value = {
      path: l.path,
      size: l.fileSize,
      manifest: l.manifest,
      signers,
      members,
      ...(files === undefined ? {} : { files }),
    };
    output(args.json, value, () => {
      const m = l.manifest;
      const lines = [
        `${m.name} ${m.version} (${m.kind}, ${m.architecture}) created ${m.created}, layer format ${m.format}`,
        m.description === '' ? undefined : `  ${m.description}`,
        `payload: erofs ${m.payload.size} bytes`,
        `verity:  root ${m.payload.verity.rootHash}, ${m.payload.verity.dataBlocks} blocks, tree ${m.payload.verity.hashSize} bytes`,
        m.dependencies.length === 0
          ? undefined
          : `depends: ${m.dependencies.map((d) => `${d.name} ${d.range}`).join(', ')}`,
        m.provides.length === 0 ? undefined : `provides: ${m.provides.join(', ')}`,
        m.source === undefined ? undefined : `source:  ${m.source.ref} (${m.source.digest})`,
        ...m.services.map(
          (s) =>
            `service ${s.name}: ${s.execStart.join(' ')} (type ${s.type}${s.readiness === undefined ? '' : `, ready ${s.readiness.type}`}, restart ${s.restart}, user ${s.user}${s.writableRoot === 'no' ? '' : `, writable root ${s.writableRoot}`}; capabilities ${s.capabilityBoundingSet.length === 0 ? 'none' : s.capabilityBoundingSet.join(' ')})`,
        ),
        m.verb === undefined ? undefined : `verb:    mway ${m.verb.name}`,
        // What a module's actions may do is the thing to review before trusting it.
        ...m.actions.map((a) => {
          const p = a.privileges;
          const data = [
            ...(p.data.private ? ['private'] : []),
            ...(p.data.common ? ['common'] : []),
            ...p.data.groups.map((g) => `group/${g}`),
          ];
          return `action ${a.name}: ${a.argv.join(' ')} (user ${p.user}, network ${p.network}; capabilities ${p.capabilities.length === 0 ? 'none' : p.capabilities.join(' ')}; devices ${p.devices.length === 0 ? 'none' : p.devices.join(' ')}; data ${data.length === 0 ? 'none' : data.join(' ')}; timeout ${a.timeoutSec} s, output ≤ ${a.output.maxBytes} bytes; scope module:${m.name}.${a.name})`;
        }),
        ...signers.map(
          (s) =>
            `signed by ${s.subject === undefined ? s.fingerprint : `${String(s.subject)} (${String(s.role)})`} at ${s.created} [not verified]`,
        ),
        ...members.map((x) => `member ${x.name}: ${x.size} bytes at ${x.offset}`),
        ...(files ?? []).map((f) => `${f.mode} ${f.type.padEnd(7)} ${String(f.size).padStart(10)} ${f.path}`),
      ];
      return lines.filter((x) => x !== undefined).join('\n');
    });
  },
});
