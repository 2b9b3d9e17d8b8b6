/**
 * `npm run reliability`: runs the reliability suite (full sizes unless `--ci`), then prints
 * the table of figures and writes the same into docs/reliability.md with the command that
 * produced them. Exits non-zero when a test failed or any record was lost, duplicated or
 * charged twice.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Area, type Entry, type Figures, ZERO } from './lib/report.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ci = process.argv.includes('--ci');
const storm = process.env.RELIABILITY_STORM_RECORDS;
const command = `${storm ? `RELIABILITY_STORM_RECORDS=${storm} ` : ''}npm run reliability${ci ? ' -- --ci' : ''}`;
const dir = mkdtempSync(join(tmpdir(), 'mno-reliability-'));
const resultsFile = join(dir, 'figures.jsonl');
const vitestJson = join(dir, 'vitest.json');
const started = Date.now();

const code = await new Promise<number>((resolve) => {
  const child = spawn('npx', ['vitest', 'run', '--project', 'reliability', '--reporter=default', '--reporter=json', `--outputFile.json=${vitestJson}`], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, RELIABILITY_RESULTS: resultsFile, ...(ci ? {} : { RELIABILITY_FULL: '1' }) },
  });
  child.on('exit', (c) => resolve(c ?? 1));
});
const minutes = ((Date.now() - started) / 60_000).toFixed(1);

const entries: Entry[] = existsSync(resultsFile)
  ? readFileSync(resultsFile, 'utf8')
      .split('\n')
      .filter((l) => l.trim().length > 0)
      .map((l) => JSON.parse(l) as Entry)
  : [];
let tests = { total: 0, passed: 0, failed: 0, skipped: 0 };
if (existsSync(vitestJson)) {
  const v = JSON.parse(readFileSync(vitestJson, 'utf8')) as { numTotalTests: number; numPassedTests: number; numFailedTests: number; numPendingTests: number; numTodoTests: number };
  tests = { total: v.numTotalTests, passed: v.numPassedTests, failed: v.numFailedTests, skipped: v.numPendingTests + v.numTodoTests };
}
rmSync(dir, { recursive: true, force: true });

const AREAS: Record<Area, string> = {
  saml: 'SAML attacks (test IdP)',
  pysaml2: 'SAML attacks (pysaml2 IdP)',
  fuzz: 'Webhook fuzzing (fast-check)',
  faults: 'Faults (PostgreSQL, Connec!, worker, Account API)',
  load: 'Load (logins, notification storm)',
};
const sum = (list: Entry[]): Figures => {
  const out: Figures = { ...ZERO };
  for (const e of list) for (const k of Object.keys(ZERO) as (keyof Figures)[]) out[k] += e[k] ?? 0;
  return out;
};
const rows: [string, Figures][] = (Object.keys(AREAS) as Area[]).map((a) => [AREAS[a], sum(entries.filter((e) => e.area === a))]);
const total = sum(entries);
rows.push(['Total', total]);

const columns: [string, keyof Figures][] = [
  ['Cases tried', 'casesTried'],
  ['Refused correctly', 'refusedCorrectly'],
  ['Accepted (controls)', 'acceptedCorrectly'],
  ['Faults injected', 'faultsInjected'],
  ['Faults survived', 'faultsSurvived'],
  ['Records expected', 'recordsExpected'],
  ['Records lost', 'recordsLost'],
  ['Duplicates', 'duplicates'],
  ['Charges', 'charges'],
  ['Double charges', 'doubleCharges'],
];
const table = (r: [string, Figures][]) =>
  [
    `| Area | ${columns.map((c) => c[0]).join(' | ')} |`,
    `|---|${columns.map(() => '---:').join('|')}|`,
    ...r.map(([name, f]) => `| ${name === 'Total' ? '**Total**' : name} | ${columns.map((c) => String(f[c[1]])).join(' | ')} |`),
  ].join('\n');
// In area order, then by test name: the report does not change with the order the tests finished in.
const areaOrder = Object.keys(AREAS);
const details = [...entries]
  .sort((a, b) => areaOrder.indexOf(a.area) - areaOrder.indexOf(b.area) || a.name.localeCompare(b.name))
  .map((e) => `| ${AREAS[e.area]} | ${e.name} | ${columns.map((c) => String(e[c[1]] ?? 0)).join(' | ')} |`);

const clean = code === 0 && tests.failed === 0 && total.recordsLost === 0 && total.duplicates === 0 && total.doubleCharges === 0;
console.log(`\nReliability (${ci ? 'CI sizes' : 'full sizes'}, ${minutes} min): ${tests.passed}/${tests.total} tests passed, ${tests.failed} failed, ${tests.skipped} skipped\n`);
console.log(table(rows));
console.log(clean ? '\nOK: nothing lost, duplicated or charged twice.' : '\nFAILED: see above.');

const doc = `# Reliability report

Produced by \`${command}\` (from the repository root) on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC,
Node ${process.version}, ${ci ? 'CI sizes' : 'full sizes (`RELIABILITY_FULL=1`)'}, in ${minutes} min:
**${tests.passed}/${tests.total} tests passed**, ${tests.failed} failed, ${tests.skipped} skipped.
Run it again to regenerate this file; \`npm test\` runs the same suite with reduced load sizes
(project \`reliability\`, \`tests/reliability/\`).

${table(rows)}

Definitions: *cases tried* are hostile or malformed inputs (SAML responses, HTTP requests) and load
requests; *refused correctly* means the expected status and \`SsoError\`/error reason **and** every SDK
table unchanged (a hash of each \`maestrano_*\` table read with SQL before and after) and no
provisioning hook called; *accepted (controls)* are valid variants that must pass (so the refusals are
not an SDK that refuses everything); *records lost / duplicates* are counted against the database
(id maps and the app's append-only write log), *double charges* against the bills the sandbox's
Account API holds per idempotency key.

## What runs

| File | What |
|---|---|
| \`saml-attacks.test.ts\` | ACS of \`createMaestrano\` on PostgreSQL, responses from the SDK test IdP (RSA-2048): XSW1-XSW8 (SAML Raider layouts, XSW1/2 on a Response-level signature) and the test IdP's same-ID layouts, tampering, unsigned, Response-only signature, HMAC key confusion, rsa-md5/md5 substitution, another key with its own or the pinned certificate in KeyInfo, the pinned key with another certificate or another bare public key (ds:KeyValue) in the assertion's KeyInfo, a Response signed by another key around a genuine assertion, a Response whose own signature does not verify (altered, or another key without KeyInfo) around a genuine assertion, comments in NameID/attributes, XXE, billion laughs, DOCTYPE without entities, external DTD, UTF-16, assertions moved into another response/tenant/endpoint, unsolicited assertion in a Response claiming a request, audience/recipient/destination, missing AudienceRestriction, windows at skew ± 20 s, replay after a restart (new process state, same database), 10 MB body |
| \`saml-pysaml2.test.ts\` | The same attacks built from responses signed by pysaml2 + xmlsec1 (independent IdP) |
| \`webhook-fuzz.test.ts\` | fast-check over raw HTTP: methods, paths, credentials, content types/encodings, random bytes/JSON, mutated notifications, UTF-16/BOM, NUL and unpaired surrogates, deep nesting up to 260,000 levels, chunked bodies; 413 over 16 MiB on the Connec! notification route (\`limits.maxNotificationBodyBytes\`) and over 1 MiB on the other routes (declared and chunked), and at a configured 4 KiB. Seed fixed (\`RELIABILITY_SEED\` changes it) |
| \`faults.test.ts\` | SDK storage behind a TCP proxy that is cut: during notification intake (503, the sandbox retries) and in the middle of an import (resumes); Connec! 429 + Retry-After, 500/502/503, dropped connections, truncated JSON, latency during an import |
| \`charges.test.ts\` | Storage cut right after the bill POST succeeded (5 concurrent retries), Account API truncated answer (bill created, answer lost), 500, 3 × 503, 429, dropped connections, latency |
| \`worker-kill.test.ts\` | Worker processes killed with SIGKILL twice mid-batch (PostgreSQL inbox), a restarted worker finishes |
| \`load.test.ts\` | 200 concurrent first SSO logins over 20 new groups; notification storm from 16 concurrent senders into two worker processes (2,000 records in CI, 50,000 in full) |

## Per test

| Area | Test | ${columns.map((c) => c[0]).join(' | ')} |
|---|---|${columns.map(() => '---:').join('|')}|
${details.join('\n')}

## Defects found by this suite and fixed

| Defect | Fix | Regression test |
|---|---|---|
| A genuine signed assertion inside a Response whose own signature did not verify (altered SignatureValue, Response changed after signing, or signed by another key without KeyInfo) was accepted: node-saml treats a Response signature that fails as no signature | \`packages/sdk/src/sso/response.ts\`: when the Response carries a signature, node-saml is asked to require it (\`wantAuthnResponseSigned\`) | \`packages/sdk/test/sso/certificate.test.ts\` "a Response's own signature must verify when it is present", \`saml-attacks.test.ts\` |
| An unsolicited (IdP-initiated) signed assertion wrapped in an unsigned Response whose \`InResponseTo\` named the attacker's own request was accepted although \`allowIdpInitiated\` is false | \`packages/sdk/src/sso/response.ts\`: only the signed \`SubjectConfirmationData@InResponseTo\` binds an assertion to a request | \`packages/sdk/test/sso/errors.test.ts\` "in_response_to: an unsolicited assertion in a Response claiming…", \`saml-attacks.test.ts\` |
| A notification record nested a few thousand levels deep overflowed the stack while hashing: 500 instead of a 4xx | \`packages/sdk/src/sync/module.ts\`: a record nested deeper than 64 levels fails alone (iterative check): reported under \`invalid\`, re-read by id; a body of nothing else is answered 400 \`invalid_notification\` | \`packages/sdk/test/sync/notifications.test.ts\` "answers 400 (not a 500 stack overflow)…", \`webhook-fuzz.test.ts\` |
| \`toNodeListener\` answered 500 to a \`//\` request target (read as a scheme-relative URL) or an unparsable \`Host\` header | \`packages/sdk/src/http/node.ts\`: the target is always a path on the request's origin; an unusable URL is a 400 | \`packages/sdk/test/config/router.test.ts\` "answers a 4xx, never a 500, for a // request target…", \`webhook-fuzz.test.ts\` |
| A notification record with text PostgreSQL cannot store (NUL character, unpaired surrogate) was answered 503 (storage unavailable), which Connec! retries forever | \`packages/sdk/src/sync/module.ts\`: such a record fails alone (reported under \`invalid\`, re-read by id when its ids key storage); a body of nothing else is answered 400 \`invalid_notification\` | \`packages/sdk/test/sync/notifications.test.ts\` (same test as above), \`webhook-fuzz.test.ts\` "NUL and other control characters…" |
| An account webhook whose path id contained \`%00\` answered 500 on PostgreSQL storage | \`packages/sdk/src/http/router.ts\`: a path id with a control character matches no route (404) | \`packages/sdk/test/config/router.test.ts\` "never hands a handler an id with a control character…", \`webhook-fuzz.test.ts\` |
| A signature by the pinned key whose \`KeyInfo\` carried another certificate was accepted (it was listed as a control) | \`packages/sdk/src/sso/response.ts\`: every certificate embedded in the Response's or the assertion's signature must be the pinned one (DER bytes), else 400 \`embedded_certificate_mismatch\` | \`packages/sdk/test/sso/certificate.test.ts\`, \`saml-attacks.test.ts\` |
| A record whose lock a SIGKILLed worker still held was deferred every second; each deferral is an attempt, so it was dead-lettered (not applied) before the 30 s lock expired | \`packages/sdk/src/sync/module.ts\`: busy/unresolved deferrals back off exponentially up to the lock TTL | \`packages/sdk/test/sync/notifications.test.ts\` "a record whose lock a killed worker still holds…", \`worker-kill.test.ts\` |

## Notes

- Signatures are verified with the pinned certificate only, never with one embedded in \`KeyInfo\`; a
  signature by the pinned key whose \`KeyInfo\` carries another certificate is refused as well
  (\`embedded_certificate_mismatch\`): every certificate embedded in the Response's or the assertion's
  signature must be the pinned one (compared by DER bytes). A signature without a certificate is accepted.
- Comments injected in signed values keep the signature valid (exclusive C14N drops comments); the SDK reads
  the full text (\`textContent\`), so the identity is never truncated: the case counts as handled when the
  login is refused or is the genuine, full identity.
- "PostgreSQL stopped" never stops the shared server: each test owns a throwaway database, and the SDK's
  storage reaches it through a TCP proxy that the test cuts (every connection reset, new ones refused).
- Connec! timeouts are exercised as latency only (the tenant's Connec! timeout is 300 s).
- Storm size: 50,000 records by default with full sizes; \`RELIABILITY_STORM_RECORDS\` overrides it (the
  command above says which size produced these figures). The storm is part of the suite and of its
  time above: 16 senders deliver the whole backlog, the test then runs \`VACUUM ANALYZE\` on the SDK's tables
  (what autovacuum does on a production server; this machine's PostgreSQL runs with autovacuum off), and two
  worker processes drain it. The storm's row in the per-test table counts the records expected, lost and
  duplicated. Without that vacuum, PostgreSQL claims walk dead index entries and the workers apply about 80
  instead of about 500 records/s: keep autovacuum on ([storage adapters](storage-adapters.md)).
`;
writeFileSync(join(root, 'docs', 'reliability.md'), doc);
console.log(`\nWrote docs/reliability.md (${command}).`);
process.exit(clean ? 0 : 1);
