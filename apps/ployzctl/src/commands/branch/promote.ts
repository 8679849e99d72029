import { createInterface } from 'node:readline/promises';
import { Args, Flags } from '@oclif/core';
import type { BranchPlanView } from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import { branchPlanLines } from '../../branch-output.ts';
import { DaemonCommand } from '../../daemon-command.ts';
import { streamDeploy } from '../deploy/index.ts';

/** Asks on the terminal; false unless the answer is y or yes. */
async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export default class BranchPromote extends DaemonCommand {
  static override description =
    "Deploy a branch's services into the namespace it was branched from, as a normal deploy of that namespace (lease, probe, phases, commit with lineage, routing events, cleanup): each service the branch has replaces the source's (which keeps its own hostnames), a service only the source has stays. The source keeps its data unless --with-data: then each volume is first snapshotted and then replaced by the branch's data, so `deploy rollback` to the source's previous deploy restores its data. Prints the plan and asks unless --yes.";
  static override examples = [
    '<%= config.bin %> branch promote shop-pr-7 shop --preview   # the plan only',
    '<%= config.bin %> branch promote shop-pr-7 shop',
    '<%= config.bin %> branch promote shop-pr-7 shop --with-data --yes --json',
  ];
  static override ndjson = true;
  static override args = {
    branch: Args.string({ description: 'the branch to promote', required: true }),
    source: Args.string({ description: 'the namespace it was branched from', required: true }),
  };
  static override flags = {
    'with-data': Flags.boolean({
      description:
        "replace the source's volumes with the branch's data (the source's is snapshotted first, so a rollback restores it)",
      default: false,
    }),
    yes: Flags.boolean({ char: 'y', description: 'do not ask for confirmation', default: false }),
    preview: Flags.boolean({ description: 'only print the plan', default: false }),
    json: Flags.boolean({ description: 'one JSON event per line (NDJSON)', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(BranchPromote);
    const input = {
      branch: args.branch,
      source: args.source,
      with_data: flags['with-data'],
      actor: process.env.USER ?? 'ployzctl',
    };
    const client = this.client(flags);
    if (flags.preview || !flags.yes) {
      const view: BranchPlanView = await client.call('branchPromotePreview', input);
      if (flags.preview) {
        if (flags.json) process.stdout.write(`${JSON.stringify(view)}\n`);
        else for (const line of branchPlanLines(view)) this.log(line);
        return;
      }
      if (flags.json || !process.stdin.isTTY) {
        throw new PloyzError(
          'CONFIRMATION_REQUIRED',
          `promoting ${args.branch} into ${args.source} changes a live namespace: read the plan (ployzctl branch promote ${args.branch} ${args.source} --preview), then run it again with --yes`,
          { details: { branch: args.branch, source: args.source } },
        );
      }
      for (const line of branchPlanLines(view)) this.log(line);
      const data = flags['with-data'] ? ', its data too' : '';
      if (!(await confirm(`Promote ${args.branch} into ${args.source}${data}? [y/N] `))) {
        this.log('Nothing was deployed.');
        return;
      }
    }
    await streamDeploy(flags.json, client.stream('branchPromote', input));
  }
}
