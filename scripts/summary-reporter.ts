import type { Reporter, TestModule } from 'vitest/node';

/**
 * Prints one plain closing line (`N passed, N failed, N skipped`) after vitest's own
 * summary, plus the pass count per project so each storage backend's suite is visible, and
 * the slowest test files (tests and hooks, in seconds) so a CI run that grows longer says where.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const perProject = new Map<string, { passed: number; failed: number; skipped: number }>();
    const durations: Array<{ file: string; seconds: number }> = [];
    for (const mod of testModules) {
      durations.push({ file: `${mod.project.name}: ${mod.relativeModuleId}`, seconds: mod.diagnostic().duration / 1000 });
      const name = mod.project.name || 'root';
      const row = perProject.get(name) ?? { passed: 0, failed: 0, skipped: 0 };
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') {
          passed++;
          row.passed++;
        } else if (state === 'failed') {
          failed++;
          row.failed++;
        } else {
          skipped++;
          row.skipped++;
        }
      }
      perProject.set(name, row);
    }
    const lines = [...perProject.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, r]) => `  ${name.padEnd(16)} ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped`);
    const slowest = durations
      .sort((a, b) => b.seconds - a.seconds)
      .slice(0, 15)
      .map((d) => `  ${d.seconds.toFixed(1).padStart(7)} s  ${d.file}`);
    process.stdout.write(
      `\nslowest files:\n${slowest.join('\n')}\n\nper project:\n${lines.join('\n')}\n\n${passed} passed, ${failed} failed, ${skipped} skipped\n`,
    );
  }
}
