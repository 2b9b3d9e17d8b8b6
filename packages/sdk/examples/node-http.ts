/**
 * Mounting the Maestrano routes on a plain node:http server (Express: the same listener,
 * `app.use('/maestrano', toNodeListener(mno.handler))`).
 */
import { createServer } from 'node:http';
import { toNodeListener } from '@org/maestrano-sdk';
import { appPage, buildMaestrano } from './app.js';

const mno = await buildMaestrano(process.argv[2] ?? 'maestrano.json');
const maestrano = toNodeListener(mno.handler);
const app = toNodeListener((request) => appPage(mno, request));

const port = Number(process.argv[3] ?? 3000);
const server = createServer((req, res) => {
  if (req.url?.startsWith('/maestrano/')) void maestrano(req, res);
  else void app(req, res);
});
server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  console.log(`app on http://127.0.0.1:${typeof address === 'object' && address ? address.port : port}`);
});
