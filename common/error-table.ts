// One table per part lists the stable error codes its error class may carry, with a
// one-line meaning, the exit code a CLI maps it to (1 unless given) and what to do. The
// table types the class's `code` (`keyof`), gives `exitCode`, and doc/errors-<part>.md
// is generated from it (scripts/error-docs.ts), so code, exit code and doc cannot drift.

/** One code: what it means, and where a CLI exits other than 1 or a fix is worth saying. */
export interface CodeSpec {
  readonly meaning: string;
  /** Exit code of a CLI that fails with this code (doc/cli.md); 1 when absent. */
  readonly exit?: number;
  /** What to do about it, when the meaning alone does not say. */
  readonly fix?: string;
}

/** A code's entry in a section: its meaning alone, or the whole spec. */
export type CodeEntry = string | CodeSpec;

/** Sections of a part's table, in the order its doc shows them: heading → codes. */
export type CodeSections = Readonly<Record<string, Readonly<Record<`E_${string}`, CodeEntry>>>>;

/** The codes of every section, as one union. */
export type SectionCodes<S extends CodeSections> = { [K in keyof S]: keyof S[K] & string }[keyof S];

export interface CodeTableDoc {
  /** The part's folder (`layers`, `control/wire`); names the doc `errors-<part with - for />.md`. */
  readonly part: string;
  /** The file that defines the table (the generated doc names it). */
  readonly source: string;
  /** The error classes these codes type, e.g. `LayerError` (the source scan maps them). */
  readonly errorClasses: readonly string[];
  /** The doc's title line, without `# `. */
  readonly title: string;
  /** Markdown paragraphs before the tables: who raises the codes, how CLIs print them. */
  readonly intro: string;
  /** Markdown printed under a section's heading, before its table. */
  readonly notes?: Readonly<Record<string, string>>;
  /** Markdown after the last table. */
  readonly outro?: string;
}

export interface CodeTable<C extends string = string> extends CodeTableDoc {
  readonly sections: readonly { readonly heading: string; readonly codes: readonly C[] }[];
  readonly codes: Readonly<Record<C, CodeSpec>>;
}

/**
 * Declares a part's codes. `const` keeps the literal keys, so `keyof typeof T.codes` is the
 * union that types the part's error class and `new LayerError('E_TYPO', …)` fails tsc.
 * A code listed in two sections is a mistake the table refuses at load.
 */
export function defineCodes<const S extends CodeSections>(
  doc: CodeTableDoc,
  sections: S,
): CodeTable<SectionCodes<S>> {
  const codes: Record<string, CodeSpec> = {};
  const out: { heading: string; codes: string[] }[] = [];
  for (const [heading, entries] of Object.entries(sections)) {
    const list: string[] = [];
    for (const [code, entry] of Object.entries(entries as Record<string, CodeEntry>)) {
      if (!/^E_[A-Z0-9_]+$/.test(code)) throw new TypeError(`${doc.part}: ${code} is not an E_ code`);
      if (code in codes) throw new TypeError(`${doc.part}: ${code} is listed twice`);
      codes[code] = typeof entry === 'string' ? { meaning: entry } : entry;
      list.push(code);
    }
    out.push({ heading, codes: list });
  }
  return { ...doc, sections: out, codes } as unknown as CodeTable<SectionCodes<S>>;
}

/** The exit code a CLI uses for `code` per `table`, 1 when the table gives none. */
export function exitCodeOf(table: Readonly<Record<string, CodeSpec>>, code: string): number {
  return Object.hasOwn(table, code) ? (table[code]?.exit ?? 1) : 1;
}
