#!/usr/bin/env node
// Summarises a V8 .cpuprofile (node --cpu-prof): the functions with the most self time, and the
// inclusive time of every function whose name matches a pattern. V8 samples the main thread by
// wall clock, so time blocked in a synchronous native call (an fsync inside better-sqlite3, a
// readFileSync) counts against the JS function that made it; "(idle)" is the event loop waiting.
//
//   node bench/cpuprofile-top.mjs FILE.cpuprofile [N=25] [pattern for inclusive times]
import { readFileSync } from 'node:fs';

const [file, nArg, pattern] = process.argv.slice(2);
if (!file) {
  console.error('usage: cpuprofile-top.mjs FILE.cpuprofile [N] [regexp]');
  process.exit(2);
}
const prof = JSON.parse(readFileSync(file, 'utf8'));
const n = Number(nArg ?? 25);
const byId = new Map(prof.nodes.map((node) => [node.id, node]));
const parent = new Map();
for (const node of prof.nodes) for (const c of node.children ?? []) parent.set(c, node.id);

// Time per sample: timeDeltas[i] is the gap before sample i.
const self = new Map();
const total = prof.timeDeltas.reduce((a, b) => a + b, 0);
prof.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));

const label = (node) => {
  const f = node.callFrame;
  const where = f.url ? `${f.url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'} ${where}`.trim();
};

const selfByLabel = new Map();
for (const [id, t] of self) {
  const l = label(byId.get(id));
  selfByLabel.set(l, (selfByLabel.get(l) ?? 0) + t);
}
const pct = (t) => `${((t / total) * 100).toFixed(1).padStart(5)}%`;
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled`);
console.log('self time:');
for (const [l, t] of [...selfByLabel].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`  ${pct(t)}  ${l}`);

if (pattern) {
  // Inclusive: a sample counts once for each distinct matching label on its stack.
  const re = new RegExp(pattern);
  const incl = new Map();
  prof.samples.forEach((id, i) => {
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const l = label(byId.get(cur));
      if (re.test(l)) seen.add(l);
    }
    for (const l of seen) incl.set(l, (incl.get(l) ?? 0) + (prof.timeDeltas[i] ?? 0));
  });
  console.log(`inclusive time of functions matching /${pattern}/:`);
  for (const [l, t] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`  ${pct(t)}  ${l}`);
}
