// Option parsing shared by the benchmarks: `--name=value` or `--name value` (bench/run.ts
// hands a bare word after an option to the benchmark as that option's value).

/** The value of `--name`, or undefined when absent. */
export function flagValue(argv: string[], name: string): string | undefined {
  const eq = argv.find((a) => a.startsWith(`--${name}=`));
  if (eq !== undefined) return eq.slice(name.length + 3);
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** A positive integer option (`--peers 1000`), `dflt` when absent; anything else throws. */
export function intFlag(argv: string[], name: string, dflt: number): number {
  const raw = flagValue(argv, name);
  const v = raw === undefined ? dflt : Number(raw);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer, got ${raw}`);
  return v;
}
