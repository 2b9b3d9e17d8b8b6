// The same listing from a CommonJS app: require() of the ES modules (Node 20.19 and later).
const out = {};
for (const entry of process.argv.slice(2)) out[entry] = Object.keys(require(entry)).sort();
process.stdout.write(JSON.stringify(out));
