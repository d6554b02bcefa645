/**
 * Readings of a process and its live children from Linux `/proc`: for a server that runs as
 * several processes (`herald serve --workers N`: a primary and its workers), whose CPU time,
 * memory and write syscalls the bench must count whole, as it counts one process's.
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of `/proc/PID/stat` times (getconf CLK_TCK; 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** `pid` and its children, recursively (a worker may fork too). */
export function processTree(pid: number): number[] {
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    const p = tree[i] as number;
    try {
      const children = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim();
      if (children !== '') tree.push(...children.split(/\s+/).map(Number));
    } catch {
      // gone meanwhile: it has no children to count
    }
  }
  return tree;
}

/** Sums `read(pid)` over the tree; a process that ended meanwhile counts no more. */
function sumOver(pid: number, read: (p: number) => number): number {
  let total = 0;
  for (const p of processTree(pid)) {
    try {
      total += read(p);
    } catch {
      // ended between the listing and the reading
    }
  }
  return total;
}

/** User + system CPU time of the tree, µs (at the kernel's 10 ms resolution). */
export function treeCpuUs(pid: number): number {
  return sumOver(pid, (p) => {
    // Fields after the command name, which may hold spaces but ends with ') '.
    const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return ((Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND) * 1e6;
  });
}

/**
 * The number on a `Key: value` line of a `/proc` file (`status`, `io`), its first word (`VmRSS:
 * 40488 kB` reads 40488); undefined when the file has no such line. Throws when the process is gone.
 */
export function procNumber(pid: number | 'self', file: string, key: string): number | undefined {
  const line = readFileSync(`/proc/${pid}/${file}`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${key}:`));
  return line === undefined
    ? undefined
    : Number(
        line
          .slice(key.length + 1)
          .trim()
          .split(/\s+/)[0],
      );
}

/** Resident memory of the tree, bytes. */
export function treeRssBytes(pid: number): number {
  return sumOver(pid, (p) => (procNumber(p, 'status', 'VmRSS') ?? 0) * 1024);
}

/** Write-family syscalls of the tree (`/proc/PID/io` `syscw`). */
export function treeWriteSyscalls(pid: number): number {
  return sumOver(pid, (p) => procNumber(p, 'io', 'syscw') ?? 0);
}
