import { defineProject } from 'vitest/config';

/** Per-workspace vitest project: resolves workspace packages from source. */
export function project(name: string, options: { timeoutMs?: number; serial?: boolean } = {}) {
  return defineProject({
    resolve: { conditions: ['ployz-source'] },
    ssr: { resolve: { conditions: ['ployz-source'] } },
    test: {
      name,
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      testTimeout: options.timeoutMs ?? 30_000,
      hookTimeout: 120_000,
      ...(options.serial ? { fileParallelism: false } : {}),
    },
  });
}
