/** Live capacity of this machine for placement probes: CPU, memory and disk free. */
import { readFile, statfs } from 'node:fs/promises';
import { availableParallelism, freemem, loadavg, totalmem } from 'node:os';

export interface Capacity {
  cpus: number;
  load1: number;
  memory_total_bytes: number;
  memory_available_bytes: number;
  disk_path: string;
  disk_total_bytes: number;
  disk_free_bytes: number;
}

/** MemAvailable from /proc/meminfo (what a new process can use), else free memory. */
export function parseMemAvailable(meminfo: string): number | null {
  const match = /^MemAvailable:\s+(\d+)\s+kB$/m.exec(meminfo);
  return match?.[1] ? Number(match[1]) * 1024 : null;
}

export async function measureCapacity(diskPath: string): Promise<Capacity> {
  const meminfo = await readFile('/proc/meminfo', 'utf8').catch(() => '');
  const fs = await statfs(diskPath);
  return {
    cpus: availableParallelism(),
    load1: loadavg()[0] ?? 0,
    memory_total_bytes: totalmem(),
    memory_available_bytes: parseMemAvailable(meminfo) ?? freemem(),
    disk_path: diskPath,
    disk_total_bytes: fs.blocks * fs.bsize,
    disk_free_bytes: fs.bavail * fs.bsize,
  };
}
