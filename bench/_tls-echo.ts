// The reference of `npm run bench -- fleet`: plain node:tls round trips over the same number of
// connections, from processes laid out like the simulated peers. Each client holds one mutual
// TLS 1.3 connection (the same ML-DSA certificates, so the same TLS stack) to the bench's own
// server and answers every newline-framed message with a reply of the given size; no
// signature, no check, no broker in between. Started with a JSON job file; prints `ready N`
// once its connections are up and runs until killed.
import { readFile } from 'node:fs/promises';
import { connect } from 'node:tls';
import { readCertificates, tlsContextOptions } from '../keys/index.ts';

interface Job {
  port: number;
  anchorsPath: string;
  replyBytes: number;
  peers: Array<{ keyPath: string; certPath: string }>;
}

const job = JSON.parse(await readFile(process.argv[2] as string, 'utf8')) as Job;
const anchors = await readCertificates(job.anchorsPath);
const reply = `${'r'.repeat(Math.max(1, job.replyBytes))}\n`;
let up = 0;
for (let i = 0; i < job.peers.length; i += 16) {
  await Promise.all(
    job.peers.slice(i, i + 16).map(
      (p) =>
        new Promise<void>((resolve, reject) => {
          const s = connect(
            {
              host: '127.0.0.1',
              port: job.port,
              servername: 'localhost',
              ...tlsContextOptions({ keyPath: p.keyPath, certPath: p.certPath, anchors }),
            },
            () => {
              up++;
              resolve();
            },
          );
          let buf = '';
          s.setEncoding('utf8');
          s.on('data', (d: string) => {
            buf += d;
            for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
              buf = buf.slice(nl + 1);
              s.write(reply);
            }
          });
          s.once('error', reject);
        }),
    ),
  );
}
process.stdout.write(`ready ${up}\n`);
