// The process tree under a pid, read from /proc/<pid>/task/<tid>/children: how the sandbox
// runner finds the sandbox's PID 1 and every process to signal when there is no cgroup.
import { readdir, readFile } from 'node:fs/promises';

export async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const task of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const text = await readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '');
    for (const p of text.split(' ')) if (p.trim() !== '') out.push(Number(p));
  }
  return out;
}

/** The first descendant `depth` levels below `pid` (bounded retries while the tree forms). */
export async function descendantAt(pid: number, depth: number): Promise<number | undefined> {
  for (let attempt = 0; attempt < 50; attempt++) {
    let cur: number | undefined = pid;
    for (let i = 0; i < depth && cur !== undefined; i++) cur = (await childrenOf(cur))[0];
    if (cur !== undefined) return cur;
    await new Promise((r) => setTimeout(r, 10));
  }
  return undefined;
}

/** Every descendant of `pid` (bounded: a fork bomb must not stall the stop). */
export async function descendantsOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0 && out.length < 10_000) {
    const cur = queue.shift() as number;
    for (const c of await childrenOf(cur)) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}
