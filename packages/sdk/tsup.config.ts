import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', 'sso/index': 'src/sso/index.ts', 'testing/index': 'src/testing/index.ts', 'testing/storage': 'src/testing/storage.ts' },
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  external: ['vitest', '@org/connec-client'],
});
