/**
 * node --import tsx docs/snippets/main.ts maestrano.json 3000
 * (in this repository, add --conditions=@org/source to run on the packages' sources)
 */
// #region main
import { startApp } from './server.js';

const app = await startApp({ configFile: process.argv[2] ?? 'maestrano.json', port: Number(process.argv[3] ?? 3000) });
console.log(`app on ${app.url}; Maestrano routes under ${app.url}/maestrano/`);
process.once('SIGINT', () => void app.stop());
// #endregion main
