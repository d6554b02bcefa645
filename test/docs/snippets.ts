/**
 * Finds the fenced code blocks of the Markdown files that users read, with the directive that
 * may precede each. The rules are in docs/snippets.md; test/docs/snippets.test.ts runs the blocks.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export const ROOT = new URL('../../', import.meta.url).pathname;

/** README.md, docs/*.md, and the README of every package, app and sample. */
export function documentedFiles(): string[] {
  const files = [join(ROOT, 'README.md')];
  const inDir = (dir: string, keep: (name: string) => boolean): string[] =>
    readdirSync(join(ROOT, dir))
      .filter(keep)
      .sort()
      .map((name) => join(ROOT, dir, name));
  files.push(...inDir('docs', (name) => name.endsWith('.md')));
  for (const parent of ['packages', 'apps', 'examples']) {
    for (const dir of inDir(parent, () => true)) {
      try {
        readFileSync(join(dir, 'README.md'));
        files.push(join(dir, 'README.md'));
      } catch {
        // no README in this one
      }
    }
  }
  return files.map((file) => relative(ROOT, file));
}

export type Directive =
  { readonly kind: 'skip'; readonly reason: string } | { readonly kind: 'runs-for'; readonly seconds: number };

export interface Snippet {
  /** Repository-relative file and the line of the opening fence, for the test name. */
  readonly file: string;
  readonly line: number;
  /** The first word of the info string (`sh`, `js`, ...); '' when the fence has none. */
  readonly lang: string;
  /** The rest of the info string, for example `browser` in "```js browser". */
  readonly flags: readonly string[];
  readonly code: string;
  readonly directive: Directive | undefined;
  /** A malformed directive: the test fails with this rather than ignore it. */
  readonly directiveError: string | undefined;
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)\s*(.*)$/;
const DIRECTIVE = /^\s*<!--\s*snippet:\s*(.*?)\s*-->\s*$/;

export function snippetsOf(file: string): Snippet[] {
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
  const snippets: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i] as string);
    if (open === null) continue;
    const [, indent = '', fence = '```', lang = '', rest = ''] = open;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const line = lines[j] as string;
      if (line.trim().startsWith(fence) && line.trim().replace(/[`~]/g, '') === '') break;
      body.push(line.startsWith(indent) ? line.slice(indent.length) : line.trimStart());
    }
    let k = i - 1;
    while (k >= 0 && (lines[k] as string).trim() === '') k--;
    const marker = k >= 0 ? DIRECTIVE.exec(lines[k] as string) : null;
    const parsed = marker === null ? undefined : parseDirective(marker[1] as string);
    snippets.push({
      file,
      line: i + 1,
      lang: lang.toLowerCase(),
      flags: rest.split(/\s+/).filter((f) => f !== ''),
      code: body.join('\n') + '\n',
      directive: parsed !== undefined && 'kind' in parsed ? parsed : undefined,
      directiveError: parsed !== undefined && 'error' in parsed ? parsed.error : undefined,
    });
    i = j;
  }
  return snippets;
}

function parseDirective(text: string): Directive | { error: string } {
  const skip = /^skip\s+(.{10,})$/.exec(text);
  if (skip !== null) return { kind: 'skip', reason: skip[1] as string };
  const runsFor = /^runs-for\s+(\d{1,3})s?$/.exec(text);
  if (runsFor !== null) return { kind: 'runs-for', seconds: Number(runsFor[1]) };
  return {
    error: `unknown snippet directive "${text}": use "skip <a reason of 10 characters or more>" or "runs-for <seconds>" (docs/snippets.md)`,
  };
}
