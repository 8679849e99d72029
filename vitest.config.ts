import { defineConfig } from 'vitest/config';

// One run over every workspace. Sources are resolved through the `ployz-source` export condition,
// so tests never need a build first.
export default defineConfig({
  resolve: { conditions: ['ployz-source'] },
  ssr: { resolve: { conditions: ['ployz-source'] } },
  test: {
    projects: ['packages/*', 'apps/*', 'e2e'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
