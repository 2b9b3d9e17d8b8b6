// Prints the runtime export names of every public entry point, as plain Node loads them.
const entries = process.argv.slice(2);
const out = {};
for (const entry of entries) out[entry] = Object.keys(await import(entry)).sort();
process.stdout.write(JSON.stringify(out));
