/**
 * The guides cannot drift from the code: every ```ts block of docs/*.md must be a run of
 * consecutive lines of a file in docs/snippets/ (which `tsc -p docs/tsconfig.json` type-checks
 * and `snippets/sandbox.test.ts` runs), and every relative link must point to a file.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const docs = dirname(fileURLToPath(import.meta.url));
// reliability.md is a generated report (`npm run reliability`), not a guide.
const guides = readdirSync(docs).filter((f) => f.endsWith('.md') && f !== 'reliability.md');
const snippetDir = join(docs, 'snippets');
const snippets = readdirSync(snippetDir)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => ({ file: f, lines: readFileSync(join(snippetDir, f), 'utf8').split('\n').map((l) => l.trimEnd()) }));

const EXPECTED_GUIDES = [
  'billing.md',
  'connectors-and-mappers.md',
  'getting-started.md',
  'multi-tenant-and-dev-platform.md',
  'sso-and-provisioning.md',
  'storage-adapters.md',
  'testing-with-the-sandbox.md',
  'workers-at-scale.md',
];

function tsBlocks(markdown: string): string[][] {
  const blocks: string[][] = [];
  const re = /^```(?:ts|typescript)\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) {
    blocks.push((m[1] ?? '').replace(/\n$/, '').split('\n').map((l) => l.trimEnd()));
  }
  return blocks;
}

/** True when `block` appears in `lines` as consecutive lines, all shifted by one indentation. */
function containsBlock(lines: string[], block: string[]): boolean {
  const first = block[0] ?? '';
  for (let start = 0; start + block.length <= lines.length; start++) {
    const line = lines[start] ?? '';
    if (!line.endsWith(first) || line.slice(0, line.length - first.length).trim() !== '') continue;
    const indent = line.slice(0, line.length - first.length);
    if (block.every((b, i) => (b === '' ? lines[start + i] === '' : lines[start + i] === indent + b))) return true;
  }
  return false;
}

describe('docs guides', () => {
  it('has every guide', () => {
    expect(guides.sort()).toEqual(EXPECTED_GUIDES);
  });

  it.each(guides)('%s – every ts block is taken from a compiled snippet file', (guide) => {
    const blocks = tsBlocks(readFileSync(join(docs, guide), 'utf8'));
    expect(blocks.length).toBeGreaterThan(0);
    const orphans = blocks.filter((block) => !snippets.some((s) => containsBlock(s.lines, block))).map((b) => b.slice(0, 3).join('\n'));
    expect(orphans).toEqual([]);
  });

  it.each(guides)('%s – relative links point to existing files', (guide) => {
    const text = readFileSync(join(docs, guide), 'utf8');
    const broken: string[] = [];
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1] ?? '';
      if (/^[a-z]+:/.test(target) || target.startsWith('#')) continue;
      const path = resolve(docs, decodeURIComponent(target.split('#')[0] ?? ''));
      if (!existsSync(path)) broken.push(target);
    }
    expect(broken).toEqual([]);
  });

  it('the drift check itself rejects an edited block', () => {
    const [first] = tsBlocks(readFileSync(join(docs, 'billing.md'), 'utf8'));
    expect(first).toBeDefined();
    const edited = [...(first ?? []), 'extra();'];
    expect(snippets.some((s) => containsBlock(s.lines, first ?? []))).toBe(true);
    expect(snippets.some((s) => containsBlock(s.lines, edited))).toBe(false);
  });
});
