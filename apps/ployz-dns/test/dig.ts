/** Runs the real `dig` (optionally inside a network namespace) and parses what it printed. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface DigResult {
  status: string;
  flags: string[];
  answer: string[][];
  authority: string[][];
  additional: string[][];
  raw: string;
}

export async function dig(
  server: { host: string; port: number },
  name: string,
  type = 'A',
  extra: string[] = [],
  netns?: string,
): Promise<DigResult> {
  const args = [
    `@${server.host}`,
    '-p',
    String(server.port),
    name,
    type,
    '+tries=1',
    '+time=3',
    '+nocookie',
    ...extra,
  ];
  const { stdout } = await run(
    netns === undefined ? 'dig' : 'ip',
    netns === undefined ? args : ['netns', 'exec', netns, 'dig', ...args],
    { timeout: 10_000 },
  );
  return parseDig(stdout);
}

export function parseDig(raw: string): DigResult {
  const status = /status: ([A-Z]+)/.exec(raw)?.[1] ?? 'NONE';
  const flags = (/;; flags: ([a-z ]+);/.exec(raw)?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
  const section = (title: string): string[][] => {
    const start = raw.indexOf(`;; ${title} SECTION:`);
    if (start < 0) return [];
    const lines: string[][] = [];
    for (const line of raw.slice(start).split('\n').slice(1)) {
      if (line.trim() === '') break;
      if (line.startsWith(';')) continue;
      lines.push(line.trim().split(/\s+/));
    }
    return lines;
  };
  return {
    status,
    flags,
    answer: section('ANSWER'),
    authority: section('AUTHORITY'),
    additional: section('ADDITIONAL'),
    raw,
  };
}
