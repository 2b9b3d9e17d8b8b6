/**
 * Benchmark: list 20,000 Connec! people in 200 pages through @org/connec-client versus a bare
 * fetch + JSON.parse loop over the same pages, in one run, and compare the peak heap while
 * iterating 20,000 versus 200,000 records (streaming, not accumulating).
 *
 *   node --conditions=@org/source --import tsx bench/connec-client/list.ts
 *
 * Goals: time ratio client/bare <= 1.15; heap ratio 200k/20k <= 1.5. The machine may be shared:
 * rounds alternate the two sides and the ratio is printed for the fastest round of each (least
 * disturbed) and for the medians. BENCH_ROUNDS sets the number of rounds (default 11).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createConnecClient } from '@org/connec-client';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const PAGE = 100;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 11);

async function startServer(): Promise<{ origin: string; stop: () => void }> {
  const child = fork(fileURLToPath(new URL('./server.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
  });
  return { origin: `http://127.0.0.1:${port}`, stop: () => child.disconnect() };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};

async function main(): Promise<void> {
  const server = await startServer();
  const credentials = { apiId: 'bench-app', apiKey: 'bench-key' };
  const auth = `Basic ${Buffer.from(`${credentials.apiId}:${credentials.apiKey}`).toString('base64')}`;
  const client = createConnecClient({ host: server.origin, credentials, externalIds: true });
  const firstUrl = (n: number) => `${server.origin}/api/v2/cld-n${n}/people?%24top=${PAGE}`;

  async function bare(n: number): Promise<number> {
    let count = 0;
    let url: string | undefined = firstUrl(n);
    while (url) {
      const res = await fetch(url, {
        headers: { authorization: auth, accept: 'application/vnd.api+json', 'connec-external-ids': 'true' },
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = JSON.parse(await res.text()) as { people: unknown[]; pagination: { next?: string } };
      count += body.people.length;
      url = body.pagination.next;
    }
    return count;
  }

  async function viaClient(n: number, onRecord?: (i: number) => void): Promise<number> {
    let count = 0;
    for await (const person of client.group(`cld-n${n}`).people.list({ top: PAGE })) {
      if (person.first_name === undefined) throw new Error('unexpected record');
      count += 1;
      onRecord?.(count);
    }
    return count;
  }

  try {
    // Warm up both paths (JIT, connection pool, server page cache).
    if ((await bare(20_000)) !== 20_000 || (await viaClient(20_000)) !== 20_000) throw new Error('count mismatch');

    const bareTimes: number[] = [];
    const clientTimes: number[] = [];
    const bareCpu: number[] = [];
    const clientCpu: number[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      // Alternate the order so neither side always runs on a warmer machine.
      const order = round % 2 === 0 ? (['bare', 'client'] as const) : (['client', 'bare'] as const);
      for (const side of order) {
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        const count = side === 'bare' ? await bare(20_000) : await viaClient(20_000);
        const elapsed = performance.now() - t0;
        const cpu = process.cpuUsage(cpu0);
        if (count !== 20_000) throw new Error(`${side} listed ${count} records`);
        (side === 'bare' ? bareTimes : clientTimes).push(elapsed);
        (side === 'bare' ? bareCpu : clientCpu).push((cpu.user + cpu.system) / 1000);
      }
    }
    const bareMin = Math.min(...bareTimes);
    const clientMin = Math.min(...clientTimes);

    // Heap: sample heapUsed every 50 records (peak, garbage included) and, every 20 pages, the
    // live heap right after a forced GC (what the iteration actually retains).
    async function heap(n: number): Promise<{ peak: number; live: number; base: number }> {
      gc();
      const base = process.memoryUsage().heapUsed;
      let peak = base;
      let live = base;
      const count = await viaClient(n, (i) => {
        if (i % 50 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed);
        if (i % (PAGE * 20) === 0) {
          gc();
          live = Math.max(live, process.memoryUsage().heapUsed);
        }
      });
      if (count !== n) throw new Error(`listed ${count} of ${n}`);
      return { peak, live, base };
    }
    const small = await heap(20_000);
    const large = await heap(200_000);
    const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`;

    console.log(`connec-client list benchmark: 20,000 records in ${20_000 / PAGE} pages, ${ROUNDS} interleaved rounds`);
    console.log(`  bare fetch + JSON.parse : min ${bareMin.toFixed(1)} ms, median ${median(bareTimes).toFixed(1)} ms`);
    console.log(`  @org/connec-client      : min ${clientMin.toFixed(1)} ms, median ${median(clientTimes).toFixed(1)} ms (zod validation of every record)`);
    console.log(`  time ratio client/bare  : ${(clientMin / bareMin).toFixed(3)}x (min), ${(median(clientTimes) / median(bareTimes)).toFixed(3)}x (median)  goal <= 1.15x`);
    console.log(
      `  CPU of this process     : bare ${median(bareCpu).toFixed(0)} ms, client ${median(clientCpu).toFixed(0)} ms (median; ratio ${(median(clientCpu) / median(bareCpu)).toFixed(3)}x, server excluded)`,
    );
    console.log(`  peak heap  20,000       : ${mb(small.peak)} (live after GC ${mb(small.live)}, start ${mb(small.base)})`);
    console.log(`  peak heap 200,000       : ${mb(large.peak)} (live after GC ${mb(large.live)}, start ${mb(large.base)})`);
    console.log(`  heap ratio 200k/20k     : ${(large.peak / small.peak).toFixed(3)}x peak, ${(large.live / small.live).toFixed(3)}x live  goal <= 1.5x`);
  } finally {
    server.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
