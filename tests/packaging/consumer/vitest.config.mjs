// No resolve conditions: packages resolve as in any app, to the installed tarballs' dist/.
export default { test: { include: ['src/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 60_000, fileParallelism: false } };
