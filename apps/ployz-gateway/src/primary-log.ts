/**
 * The primary's structured log: the JSON lines pino writes with the workers' base (`level` as
 * pino's number, `time`, `pid`, `worker`, `name`, the call's fields, `msg`; an Error as pino's
 * serializer shows it: `type`, `message`, `stack`, `code`), on stdout (synchronous for files and
 * pipes on Linux). The primary writes a handful of lines in its life; pino, with the stream and
 * worker-thread machinery it loads, is ~9 MB of its RSS (issue 22), so the workers log with pino
 * and the primary with this.
 */

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
type Level = keyof typeof LEVELS;

export type LogFields = Record<string, unknown>;
export type PrimaryLog = Record<Level, (fields: LogFields, msg: string) => void>;

function serialize(_key: string, value: unknown): unknown {
  if (!(value instanceof Error)) return value;
  const out: Record<string, unknown> = { type: value.name, message: value.message, stack: value.stack };
  const code = (value as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  return out;
}

/** A logger at `level` (pino's names; `silent` writes nothing). */
export function primaryLog(level: string, name: string): PrimaryLog {
  const threshold = level in LEVELS ? LEVELS[level as Level] : Number.POSITIVE_INFINITY;
  // stdout gone (EPIPE): the lines are lost, the primary goes on supervising.
  process.stdout.on('error', () => undefined);
  const write = (n: number) => (fields: LogFields, msg: string) => {
    if (n < threshold) return;
    const line = { level: n, time: Date.now(), pid: process.pid, worker: 'primary', name, ...fields, msg };
    process.stdout.write(`${JSON.stringify(line, serialize)}\n`);
  };
  return {
    trace: write(LEVELS.trace),
    debug: write(LEVELS.debug),
    info: write(LEVELS.info),
    warn: write(LEVELS.warn),
    error: write(LEVELS.error),
    fatal: write(LEVELS.fatal),
  };
}
