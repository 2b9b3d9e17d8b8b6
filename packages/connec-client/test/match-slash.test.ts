// `match(field, RegExp)` sends the pattern between the `/…/` delimiters of a `$filter` regex literal
// (PROTOCOL §6.4), which ends at the first unescaped `/`. `RegExp.prototype.source` leaves a `/`
// inside a character class unescaped (`/[/]/.source === '[/]'`), so the client escapes every `/`
// of the pattern; the literal then means the same pattern on the server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sandbox, startSandbox } from '../../sandbox/src/index.js';
import { createConnecClient, match } from '../src/index.js';

/** The text between the delimiters of the one `/…/flags` literal in a `match` term. */
function literalBody(term: string): string {
  return term.slice(term.indexOf('/') + 1, term.lastIndexOf('/'));
}

describe('match() with a RegExp whose pattern holds a "/"', () => {
  let sb: Sandbox;
  let groupId: string;
  beforeAll(async () => {
    sb = await startSandbox({ port: 0, appUrl: 'http://127.0.0.1:9' });
    groupId = (await sb.admin.createGroup({})).id;
  });
  afterAll(() => sb.stop());

  it('escapes every "/" of the pattern, in a character class or after an escaped backslash, and keeps its meaning', () => {
    for (const pattern of [/^a[/]b$/, /[\\/]x/, /a\/b/, /[//]/, /\\\//, /[\]/]z/i]) {
      const term = match('title', pattern).toString();
      const body = literalBody(term);
      // no "/" preceded by an even number of backslashes (that is, unescaped) between the delimiters
      expect(/(^|[^\\])(\\\\)*\//.test(body), term).toBe(false);
      const sent = new RegExp(body, pattern.flags);
      for (const text of ['a/b', 'ab', '\\x', '/x', '/', '//', '\\/', ']z', '/Z']) expect(sent.test(text), `${term} on ${text}`).toBe(pattern.test(text));
    }
    expect(match('title', /^a[/]b$/i).toString()).toBe('title match /^a[\\/]b$/i');
  });

  it('finds "a/b" through the sandbox', async () => {
    const m = sb.credentials.marketplaces[0];
    if (!m) throw new Error('marketplace');
    const client = createConnecClient({ host: sb.url, credentials: { apiId: m.apiId, apiKey: m.apiKey }, retry: 0 });
    const g = client.group(groupId);
    await g.items.create({ name: 'a/b' });
    await g.items.create({ name: 'ab' });
    await g.items.create({ name: 'a\\b' });
    const slash = await g.items.list({ filter: match('name', /^a[/]b$/) });
    expect(slash.data.map((r) => r.name)).toEqual(['a/b']);
    const either = await g.items.list({ filter: match('name', /^a[\\/]b$/), orderBy: 'name' });
    expect(either.data.map((r) => r.name).sort()).toEqual(['a/b', 'a\\b']);
  });
});
