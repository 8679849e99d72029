#!/usr/bin/env node
// Writes oclif.manifest.json after `tsc` (the last step of `pnpm build`): every command's flags and
// args, with its module path in dist/cli/ (the bundled commands, bin/bundle-commands.js), so
// `node bin/run.js` imports only the command it runs.
// Commands are read from src/ (Node 24 type stripping; @ployz/* resolve to their dist builds).
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Config } from '@oclif/core';

const root = join(import.meta.dirname, '..');
const config = await Config.load({
  root,
  ignoreManifest: true,
  errorOnManifestCreate: true,
  respectNoCacheDefault: true,
});
const { manifest } = config.rootPlugin;
for (const [id, command] of Object.entries(manifest.commands)) {
  const rel = command.relativePath ?? [];
  if (rel[0] !== 'src') throw new Error(`command ${id}: unexpected path ${rel.join('/')}`);
  command.relativePath = ['dist', 'cli', ...rel.slice(1, -1), String(rel.at(-1)).replace(/\.ts$/, '.js')];
  if (!existsSync(join(root, ...command.relativePath))) {
    throw new Error(
      `command ${id}: ${command.relativePath.join('/')} is missing; run tsc and bin/bundle-commands.js first`,
    );
  }
}
await writeFile(join(root, 'oclif.manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
console.log(`oclif.manifest.json: ${Object.keys(manifest.commands).length} commands`);
