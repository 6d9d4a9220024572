#!/usr/bin/env node
// Print every subhost overlay-boot knows of as an aligned table.
//
//   node examples/list-table.js
//
// Uses only the public API of overlay-boot (build first: npm run build).
import { list } from '../dist/index.js';

function uptime(seconds) {
  if (seconds === undefined) return '-';
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(s).padStart(2, '0')}s` : `${s}s`;
}

const rows = list().map((s) => [
  s.name, s.state, String(s.pid1 ?? '-'), uptime(s.uptimeSeconds),
  s.cables.map((c) => c.hostIf).join(',') || '-', s.services.join(' ') || '-', s.config,
]);
const header = ['NAME', 'STATE', 'PID1', 'UPTIME', 'CABLES', 'SERVICES', 'CONFIG'];
const table = [header, ...rows];
const widths = header.map((_, i) => Math.max(...table.map((r) => r[i].length)));
for (const row of table) {
  // The last column is not padded: no trailing blanks.
  console.log(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  '));
}
if (rows.length === 0) console.log('(no subhosts)');
