/**
 * `npm run demo`: drives the whole Maestrano integration checklist headlessly against fresh
 * data (a new sandbox and a new CRM database) and prints each item with its outcome and key
 * figures. Exits non-zero when any item fails. DATABASE_URL selects PostgreSQL.
 */
import { type ChecklistItem, runChecklist } from './demo/checklist.js';

const tty = process.stdout.isTTY === true;
const green = (s: string) => (tty ? `\x1b[32m${s}\x1b[0m` : s);
const red = (s: string) => (tty ? `\x1b[31m${s}\x1b[0m` : s);

let barShown = false;
function progressBar(entity: string, done: number, total: number | null): void {
  const width = 30;
  const ratio = total && total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(ratio * width);
  const line = `  import ${entity.padEnd(9)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}${total !== null ? `/${total}` : ''}`;
  if (tty) {
    process.stdout.write(`\r${line}`);
    barShown = true;
  } else if (total === null || done === total) {
    console.log(line);
  }
}

function printItem(item: ChecklistItem): void {
  if (barShown) {
    process.stdout.write('\n');
    barShown = false;
  }
  const mark = item.passed ? green('PASS') : red('FAIL');
  console.log(`  ${mark}  ${item.id.padEnd(6)} ${item.title}\n        ${item.detail}`);
}

console.log('Maestrano integration checklist — Acme CRM against a fresh sandbox\n');
const started = Date.now();
const items = await runChecklist({
  databaseUrl: process.env.DATABASE_URL,
  onItem: printItem,
  onProgress: (p) => progressBar(p.entity, p.done, p.total),
});
const failed = items.filter((i) => !i.passed);
console.log(
  `\n${items.length - failed.length} passed, ${failed.length} failed (${((Date.now() - started) / 1000).toFixed(1)} s)`,
);
process.exit(failed.length === 0 ? 0 : 1);
