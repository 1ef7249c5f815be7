// Shell completion (bash, zsh, fish) and man pages, generated from a binary's citty command
// tree — the same tables the strict parser reads, so a new verb or flag is completed and
// documented without a second list. `BINARY completion SHELL` prints a script; man/*.1 are
// written by `npm run docs:man` (scripts/man-pages.ts) and a test fails when they drift.
import { type ArgsDef, defineCommand } from 'citty';
import { type AnyCommand, activeRoot, loadCommand } from './cli.ts';
import { UsageError } from './usage-error.ts';

export interface ArgInfo {
  name: string;
  type: string;
  description: string;
  alias: string[];
  required: boolean;
}

export interface VerbNode {
  /** Names from the binary down (`['mway', 'group', 'add']`). */
  path: string[];
  description: string;
  flags: ArgInfo[];
  positionals: ArgInfo[];
  passesArgv: boolean;
  subs: VerbNode[];
}

async function resolve<T>(v: unknown): Promise<T> {
  return (typeof v === 'function' ? await (v as () => T)() : await v) as T;
}

/** The whole command tree of `root`, lazy subcommands loaded. */
export async function commandTree(root: AnyCommand, path?: string[]): Promise<VerbNode> {
  const meta = (await resolve<{ name?: string; description?: string } | undefined>(root.meta)) ?? {};
  const here = path ?? [meta.name ?? 'mway'];
  const args = ((await resolve<ArgsDef | undefined>(root.args)) ?? {}) as Record<
    string,
    Record<string, unknown>
  >;
  const info = Object.entries(args).map(([name, d]) => ({
    name,
    type: String(d.type ?? 'string'),
    description: String(d.description ?? ''),
    alias: typeof d.alias === 'string' ? [d.alias] : ((d.alias as string[] | undefined) ?? []),
    required: d.required === true,
  }));
  const subs: VerbNode[] = [];
  const table = (await resolve<Record<string, unknown> | undefined>(root.subCommands)) ?? {};
  for (const [name, sub] of Object.entries(table)) {
    subs.push(await commandTree(await loadCommand(sub, name), [...here, name]));
  }
  return {
    path: here,
    description: meta.description ?? '',
    flags: [
      ...info.filter((a) => a.type !== 'positional'),
      { name: 'help', type: 'boolean', description: 'Show this help', alias: ['h'], required: false },
    ],
    positionals: info.filter((a) => a.type === 'positional'),
    passesArgv: Object.values(args).some((d) => d.variadic === true),
    subs,
  };
}

function all(n: VerbNode): VerbNode[] {
  return [n, ...n.subs.flatMap(all)];
}

function flagWords(n: VerbNode): string[] {
  return n.flags.flatMap((f) => [
    `--${f.name}`,
    ...f.alias.map((a) => (a.length === 1 ? `-${a}` : `--${a}`)),
  ]);
}

const ident = (s: string) => s.replace(/[^A-Za-z0-9]/g, '_');

/** A bash completion script (also used by zsh through bashcompinit). */
function bash(tree: VerbNode): string {
  const bin = tree.path[0] as string;
  const fn = `_${ident(bin)}`;
  const cases = all(tree).map((n) => {
    const key = n.path.slice(1).join(' ');
    const subs = n.subs.map((s) => s.path.at(-1)).join(' ');
    return `    ${JSON.stringify(key)}) subs=${JSON.stringify(subs)}; flags=${JSON.stringify(flagWords(n).join(' '))} ;;`;
  });
  return `# bash completion for ${bin} (generated from its command tree: ${bin} completion bash)
${fn}_words() {
  case "$1" in
${cases.join('\n')}
    *) subs=""; flags="" ;;
  esac
}
${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" w subs flags i
  COMPREPLY=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    # After --, the words are another program's: complete file names only.
    if [ "$w" = "--" ]; then
      COMPREPLY=($(compgen -f -- "$cur"))
      return 0
    fi
    ${fn}_words "$path"
    case " $subs " in *" $w "*) path="\${path:+$path }$w" ;; esac
  done
  ${fn}_words "$path"
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  elif [ -n "$subs" ]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o filenames -F ${fn} ${bin}
`;
}

function zsh(tree: VerbNode): string {
  const bin = tree.path[0] as string;
  return `#compdef ${bin}
# zsh completion for ${bin}: the bash script through zsh's bashcompinit (${bin} completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bash(tree)}`;
}

const fishQuote = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

function fish(tree: VerbNode): string {
  const bin = tree.path[0] as string;
  const lines = [`# fish completion for ${bin} (generated from its command tree: ${bin} completion fish)`];
  const fn = `__${ident(bin)}_path`;
  // The verb path typed so far: the words that name subcommands, in order.
  const table = all(tree)
    .filter((n) => n.subs.length > 0)
    .map(
      (n) =>
        `    case ${fishQuote(n.path.slice(1).join(' '))}\n      set subs ${n.subs.map((s) => s.path.at(-1)).join(' ')}`,
    );
  lines.push(
    `function ${fn}`,
    '  set -l path ""',
    '  for w in (commandline -opc)[2..-1]',
    '    set -l subs',
    '    switch "$path"',
    ...table,
    '    end',
    '    if contains -- $w $subs',
    '      set path (string trim -- "$path $w")',
    '    end',
    '  end',
    '  echo $path',
    'end',
  );
  for (const n of all(tree)) {
    // `"$(…)"`: fish expands a command substitution inside double quotes only in this form
    // (3.4+); `"(…)"` is the literal text, and no condition ever held (found in fish 3.6).
    const cond = `-n ${fishQuote(`test "$(${fn})" = ${fishQuote(n.path.slice(1).join(' '))}`)}`;
    for (const s of n.subs) {
      lines.push(
        `complete -c ${bin} -f ${cond} -a ${fishQuote(s.path.at(-1) as string)} -d ${fishQuote(s.description)}`,
      );
    }
    for (const f of n.flags) {
      const short = f.alias
        .filter((a) => a.length === 1)
        .map((a) => ` -s ${a}`)
        .join('');
      const takes = f.type === 'boolean' ? '' : ' -r';
      lines.push(`complete -c ${bin} ${cond} -l ${f.name}${short}${takes} -d ${fishQuote(f.description)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

/** The completion script of `tree` for `shell`. */
export function completionScript(tree: VerbNode, shell: Shell): string {
  return shell === 'bash' ? bash(tree) : shell === 'zsh' ? zsh(tree) : fish(tree);
}

const roff = (s: string) =>
  s
    .replace(/\\/g, '\\e')
    .replace(/^([.'])/gm, '\\&$1')
    .replace(/-/g, '\\-')
    .replace(
      /[^\p{ASCII}]/gu,
      (c) => `\\[u${(c.codePointAt(0) as number).toString(16).toUpperCase().padStart(4, '0')}]`,
    );

function synopsis(n: VerbNode): string {
  const pos = n.positionals.map((p) => (p.required ? p.name.toUpperCase() : `[${p.name.toUpperCase()}]`));
  const subs = n.subs.length > 0 ? ['COMMAND'] : [];
  return [...n.path, '[OPTIONS]', ...subs, ...pos, ...(n.passesArgv ? ['[\\-\\- ARG...]'] : [])].join(' ');
}

function optionLines(n: VerbNode): string[] {
  const out: string[] = [];
  for (const p of n.positionals) out.push('.TP', `.I ${p.name.toUpperCase()}`, roff(p.description));
  for (const f of n.flags) {
    const names = [...f.alias.map((a) => (a.length === 1 ? `-${a}` : `--${a}`)), `--${f.name}`].join(', ');
    const value = f.type === 'boolean' ? '' : ` ${f.type === 'enum' ? 'VALUE' : 'VALUE'}`;
    out.push('.TP', `.B ${roff(names)}${value}`, roff(f.description + (f.required ? ' (required)' : '')));
  }
  return out;
}

/** The man page (section 1) of a binary: every verb with its synopsis, arguments and flags. */
export function manPage(tree: VerbNode, version: string): string {
  const bin = tree.path[0] as string;
  const lines = [
    `.\\" Generated from the ${bin} command tree by scripts/man-pages.ts; do not edit.`,
    `.TH ${bin.toUpperCase()} 1 "" "MilkyWay ${version}" "MilkyWay manual"`,
    '.SH NAME',
    `${roff(bin)} \\- ${roff(tree.description)}`,
    '.SH SYNOPSIS',
    `.B ${roff(synopsis(tree))}`,
    '.SH DESCRIPTION',
    roff(tree.description),
    '.PP',
    'Arguments are parsed strictly: an unknown flag, a missing or bad value, or an unexpected word is the usage error E_USAGE (exit 2). With \\-\\-json every verb prints one envelope, {"ok": true, "result": ...} (the verb\'s result; doc/cli-result.schema.json) or {"ok": false, "error": {"code", "message", "path"?, "details"?}}; a streaming verb prints one a line.',
  ];
  if (tree.flags.length > 0 || tree.positionals.length > 0) lines.push('.SH OPTIONS', ...optionLines(tree));
  const verbs = all(tree).slice(1);
  if (verbs.length > 0) {
    lines.push('.SH COMMANDS');
    for (const v of verbs) {
      lines.push(
        `.SS "${roff(v.path.join(' '))}"`,
        roff(v.description),
        '.PP',
        `.B ${roff(synopsis(v))}`,
        ...optionLines(v),
      );
      if (v.passesArgv) lines.push('.PP', 'Everything after \\-\\- is passed on verbatim, flags included.');
    }
  }
  lines.push(
    '.SH EXIT STATUS',
    '0 success; 1 the operation failed or the thing checked is invalid; 2 usage error; 70 internal error (a bug).',
    '.SH SEE ALSO',
    ['mway', 'mway-image', 'mway-layer', 'milkywaysrvd', 'milkyway-agent']
      .filter((b) => b !== bin)
      .map((b) => `.BR ${b} (1)`)
      .join(',\n'),
  );
  return `${lines.join('\n')}\n`;
}

/** `BINARY completion bash|zsh|fish`: the completion script of the binary it runs in. */
export const completionCommand = defineCommand({
  meta: { name: 'completion', description: 'Print the shell completion script: bash, zsh or fish' },
  args: { shell: { type: 'positional', required: true, description: 'bash | zsh | fish' } },
  async run({ args }) {
    const shell = args.shell as Shell;
    if (!SHELLS.includes(shell)) {
      throw new UsageError(`Unknown shell ${args.shell}: use bash, zsh or fish`, 'bad-value', args.shell);
    }
    const root = activeRoot();
    if (root === undefined) throw new UsageError('completion runs only from a binary', 'invalid');
    process.stdout.write(completionScript(await commandTree(root), shell));
    return 0;
  },
});
