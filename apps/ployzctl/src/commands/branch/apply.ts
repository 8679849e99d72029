import { Flags } from '@oclif/core';
import { branchArgs, branchFlags, branchRequest } from '../../branch-request.ts';
import { DaemonCommand } from '../../daemon-command.ts';
import { streamDeploy } from '../deploy/index.ts';

export default class BranchApply extends DaemonCommand {
  static override description =
    "Create a branch namespace as a deploy like any other (lease, probe, applying, phases, commit, routing events, cleanup), shown live: the source's last committed revisions (overridable with -f), its volumes copy-on-write clones of the source's snapshots at its last commit (instant whatever their size; writes in the branch never reach the source) or empty, its own hostnames (--host-suffix or -f). Its commit records the lineage (deploy show).";
  static override examples = [
    '<%= config.bin %> branch apply shop shop-pr-7 --host-suffix pr-7',
    '<%= config.bin %> branch apply shop shop-pr-7 --volume cache=empty -f pr-7.toml',
    '<%= config.bin %> branch apply shop shop-pr-7 --json   # NDJSON deploy events, last line done|error',
  ];
  static override ndjson = true;
  static override args = branchArgs;
  static override flags = {
    ...branchFlags,
    json: Flags.boolean({ description: 'one JSON event per line (NDJSON)', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(BranchApply);
    const input = await branchRequest(args, flags);
    await streamDeploy(flags.json, this.client(flags).stream('branchApply', input));
  }
}
