/** Mounting the Maestrano routes on Hono (served by @hono/node-server). */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { appPage, buildMaestrano } from './app.js';

const mno = await buildMaestrano(process.argv[2] ?? 'maestrano.json');

const app = new Hono();
// Every Maestrano route of every tenant; the raw Request goes straight to the SDK.
app.all('/maestrano/*', (c) => mno.handler(c.req.raw));
app.all('*', (c) => appPage(mno, c.req.raw));

const port = Number(process.argv[3] ?? 3000);
serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, (info) => {
  console.log(`app on http://127.0.0.1:${info.port}`);
});
