import { describeStorageAdapter } from '@org/maestrano-sdk/testing/storage';
import { mongoAdapter } from '../src/index.js';
import { mongoInspector } from './inspector.js';
import { backend, mongoUrl, openTestDb, unavailable } from './support.js';
import { hostPort, TcpProxy } from './tcp-proxy.js';

// The shared storage conformance suite against FerretDB 1.24 (started by the global setup)
// or a real MongoDB (MONGODB_URL). Test names show `mongo-ferretdb` / `mongo-mongodb`.
// The main adapter reaches the server through a loopback TCP proxy, which the outage case
// cuts and restores (the server itself is shared with other test files running in parallel;
// test/outage.test.ts stops and restarts a FerretDB process of its own).
let handle: Awaited<ReturnType<typeof openTestDb>> | undefined;
let proxy: TcpProxy | undefined;

describeStorageAdapter({
  name: backend,
  unavailable,
  async setup({ clock }) {
    const url = mongoUrl ?? '';
    const opened = await openTestDb('conformance');
    handle = opened;
    const target = hostPort(url);
    const tcp = new TcpProxy(target.host, target.port);
    await tcp.start();
    proxy = tcp;
    const adapter = mongoAdapter(
      { url: tcp.rewrite(url), dbName: opened.name, clientOptions: { serverSelectionTimeoutMS: 3_000 } },
      { clock },
    );
    await adapter.ensureIndexes();
    return {
      adapter,
      inspect: mongoInspector(opened.db),
      // A second "process": its own client and connection pool on the same database.
      createPeer: async () => mongoAdapter({ url, dbName: opened.name }, { clock }),
      outage: { cut: () => tcp.cut(), restore: () => tcp.restore() },
      teardown: async () => {
        await proxy?.cut();
        await opened.drop();
      },
    };
  },
  async reset() {
    if (!handle) return;
    for (const collection of await handle.db.collections()) await collection.deleteMany({});
  },
});
