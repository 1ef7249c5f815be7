// Prints "NAME ENTRY" for each of the five commands, from package.json's "bin": the one list
// install-bin.sh (the PATH shims) and install-docs.sh (man pages, completions) both read.
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
for (const [name, entry] of Object.entries(pkg.bin)) console.log(`${name} ${entry}`);
