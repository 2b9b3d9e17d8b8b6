import { describe, expect, it } from 'vitest';
import { runChecklist } from '../src/demo/checklist.js';

// `npm run demo` in CI: the whole integration checklist against a fresh sandbox and a fresh
// CRM database (embedded SQLite), over real HTTP with real SAML signatures.
describe('Acme CRM – the Maestrano integration checklist', () => {
  it('demo – passes every checklist item from 1.1.1 to 4', { timeout: 240_000 }, async () => {
    const items = await runChecklist();
    const failed = items.filter((i) => !i.passed).map((i) => `${i.id} ${i.title}: ${i.detail}`);
    expect(failed).toEqual([]);
    expect(items.map((i) => i.id).sort()).toEqual(
      ['1.1.1', '1.2.1', '1.2.2', '1.2.3', '1.3.1', '1.4.1', '2.1.1', '2.1.2', '2.2.1', '2.2.2', '3.1.1', '3.2.1', '3.3.1', '3.3.2', '4'].sort(),
    );
  });
});
