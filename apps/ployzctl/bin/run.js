#!/usr/bin/env node
// ployzctl: the oclif CLI. Commands are TypeScript files under src/commands, loaded by Node 24's
// type stripping; run with `node --conditions=ployz-source bin/run.js` inside the repo.
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
