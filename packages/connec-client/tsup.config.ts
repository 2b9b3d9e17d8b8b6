import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', entities: 'src/entities.ts' },
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
});
