#!/usr/bin/env node
// ployzctl: the oclif CLI.
// - Built (`pnpm turbo run build --filter ployzctl...`): `node bin/run.js` loads only the command
//   it runs, bundled in dist/cli/ (bin/bundle-commands.js), through oclif.manifest.json
//   (written by bin/write-manifest.js).
// - Sources: `node --conditions=ployz-source bin/run.js` (tests, the e2e harness) ignores the
//   manifest and loads the TypeScript commands under src/ with Node 24's type stripping.
// scripts/ployzctl picks the built form when it is fresh and falls back to the sources.
// Node's on-disk compile cache (V8 code cache, in the OS temp dir) spares recompiling oclif,
// zod and our modules at every run.
import { enableCompileCache } from 'node:module';

enableCompileCache();
const conditions = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
const fromSource = conditions.includes('ployz-source');

// Not a top-level await: a command that ends by exit code lets the event loop drain first, and
// Node would then warn about an unsettled top-level await.
void import('@oclif/core').then(({ execute }) =>
  execute({
    dir: import.meta.url,
    loadOptions: { root: import.meta.dirname, ignoreManifest: fromSource },
  }),
);
