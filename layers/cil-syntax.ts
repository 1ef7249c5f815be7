// The Common Intermediate Language's surface syntax (SELinux CIL, secilc's reference guide
// "CIL Information": parenthesised lists of symbols and double-quoted strings, `;` to end of
// line a comment), read into a tree with line numbers so a layer's module can be checked
// statement by statement before secilc sees it. Nothing here knows what a statement means.

export interface CilAtom {
  kind: 'symbol' | 'string';
  text: string;
  line: number;
}

export interface CilList {
  kind: 'list';
  items: CilNode[];
  line: number;
}

export type CilNode = CilAtom | CilList;

/** Nesting beyond this is refused: a module is a flat list of short statements. */
export const CIL_MAX_DEPTH = 32;

export class CilSyntaxError extends SyntaxError {
  readonly line: number;

  constructor(message: string, line: number) {
    super(message);
    this.line = line;
  }
}

/** The top-level statements of `text`. Throws CilSyntaxError (with its line) on bad syntax. */
export function parseCil(text: string): CilList[] {
  const top: CilList[] = [];
  const stack: CilList[] = [];
  let line = 1;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i] as string;
    if (c === '\n') {
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') i++;
    else if (c === ';') {
      while (i < n && text[i] !== '\n') i++;
    } else if (c === '(') {
      if (stack.length >= CIL_MAX_DEPTH)
        throw new CilSyntaxError(`lists nested deeper than ${CIL_MAX_DEPTH}`, line);
      const list: CilList = { kind: 'list', items: [], line };
      const parent: CilList | undefined = stack.at(-1);
      if (parent === undefined) top.push(list);
      else parent.items.push(list);
      stack.push(list);
      i++;
    } else if (c === ')') {
      if (stack.pop() === undefined) throw new CilSyntaxError('unbalanced parenthesis: ) without (', line);
      i++;
    } else {
      const parent = stack.at(-1);
      if (parent === undefined) throw new CilSyntaxError(`${JSON.stringify(c)} outside a statement`, line);
      if (c === '"') {
        const end = text.indexOf('"', i + 1);
        if (end < 0) throw new CilSyntaxError('unterminated string', line);
        const s = text.slice(i + 1, end);
        parent.items.push({ kind: 'string', text: s, line });
        line += s.split('\n').length - 1;
        i = end + 1;
      } else {
        let j = i;
        while (j < n && !' \t\r\n();"'.includes(text[j] as string)) j++;
        parent.items.push({ kind: 'symbol', text: text.slice(i, j), line });
        i = j;
      }
    }
  }
  const open = stack.at(-1);
  if (open !== undefined) throw new CilSyntaxError('unbalanced parenthesis: ( never closed', open.line);
  return top;
}

/** Every symbol in `node`, depth first. */
export function symbolsOf(node: CilNode): CilAtom[] {
  if (node.kind === 'symbol') return [node];
  if (node.kind === 'string') return [];
  return (node as CilList).items.flatMap(symbolsOf);
}
