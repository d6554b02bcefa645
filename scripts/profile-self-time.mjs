#!/usr/bin/env node
/**
 * The share of a CPU profile's time spent in each function itself (self time), largest first:
 * how docs/benchmarks.md reads the profiles `herald bench --profile` writes (`node --cpu-prof`).
 *
 *   node scripts/profile-self-time.mjs FILE.cpuprofile [rows=30]
 *
 * Native calls show as their binding's name (`writeBuffer`, `writev`: the syscalls and what node
 * does around them in C++); `(idle)` is time the process waited for I/O.
 */
import { readFileSync } from 'node:fs';

const [file, rows = '30'] = process.argv.slice(2);
if (file === undefined) {
  console.error('usage: node scripts/profile-self-time.mjs FILE.cpuprofile [rows]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
const self = new Map();
let total = 0;
profile.samples.forEach((id, i) => {
  const elapsed = profile.timeDeltas[i] ?? 0;
  const { functionName, url, lineNumber } = nodes.get(id).callFrame;
  const where = url === '' ? '' : ` ${url.split('/').slice(-2).join('/')}:${lineNumber + 1}`;
  const name = `${functionName || '(anonymous)'}${where}`;
  self.set(name, (self.get(name) ?? 0) + elapsed);
  total += elapsed;
});
for (const [name, time] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(rows))) {
  console.log(`${((100 * time) / total).toFixed(1).padStart(5)} %  ${name}`);
}
