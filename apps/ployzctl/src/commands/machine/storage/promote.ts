import { Args, Flags } from '@oclif/core';
import type { StoragePromotePlanView, StoragePromoteResult } from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import { DaemonCommand } from '../../../daemon-command.ts';
import { promotePlanLines, promoteProgressLine, promoteResultLines } from '../../../store-output.ts';

export default class MachineStoragePromote extends DaemonCommand {
  static override description =
    'Plan moving the store (NATS JetStream) from one replica to three (issue 19): every asset with its message count and bytes, and the guardrails — three distinct active machines, each reachable and healthy now, round trip under the bound, their regions (failure domains). Never 2 replicas (REPLICAS_INVALID); only 1 → 3 (STORE_PROMOTE_UNSUPPORTED). Prints the plan and changes nothing; exit 1 with STORE_PROMOTE_UNHEALTHY when a guardrail fails. With --yes it applies the plan: the three members started, every asset copied at R3 and verified, the commit point, every machine switched over; deploys are refused meanwhile (STORE_PROMOTING); a failure before the commit point leaves the installation on the old store.';
  static override examples = [
    '<%= config.bin %> machine storage promote --replicas 3 m1 m2 m3',
    '<%= config.bin %> machine storage promote --replicas 3 m1 m2 m3 --rtt-bound-ms 20 --json',
    '<%= config.bin %> machine storage promote --replicas 3 m1 m2 m3 --yes',
  ];
  static override strict = false;
  static override args = {
    machines: Args.string({ description: 'the three storage machines (see machine ls)', required: true }),
  };
  static override flags = {
    replicas: Flags.integer({ description: 'replica count to promote to (3)', required: true }),
    'rtt-bound-ms': Flags.integer({
      description: 'refuse members whose round trip is over this (default 50)',
    }),
    yes: Flags.boolean({
      description: 'apply the plan (run it on one of the three machines)',
      default: false,
    }),
  };

  async run(): Promise<StoragePromotePlanView | StoragePromoteResult> {
    const { argv, flags } = await this.parse(MachineStoragePromote);
    const input = {
      replicas: flags.replicas,
      machines: argv.map(String),
      ...(flags['rtt-bound-ms'] === undefined ? {} : { rtt_bound_ms: flags['rtt-bound-ms'] }),
    };
    const plan = await this.client(flags).call('storagePromotePlan', input);
    if (flags.yes && plan.refusal === null) {
      if (!this.jsonEnabled()) for (const line of promotePlanLines(plan).slice(0, -1)) this.log(line);
      let result: StoragePromoteResult | null = null;
      for await (const item of this.client(flags).stream('storagePromoteApply', input)) {
        if (item.kind === 'progress') {
          if (!this.jsonEnabled()) this.log(promoteProgressLine(item.progress));
        } else result = item.result;
      }
      if (result === null)
        throw new PloyzError('INTERNAL', 'the daemon ended the promotion without a result');
      if (!this.jsonEnabled()) for (const line of promoteResultLines(result)) this.log(line);
      return result;
    }
    if (!this.jsonEnabled()) for (const line of promotePlanLines(plan)) this.log(line);
    // A failed guardrail: the plan printed, then its code (exit 1; --json: the error with the checks).
    if (plan.refusal !== null) {
      throw new PloyzError('STORE_PROMOTE_UNHEALTHY', plan.refusal.message, {
        details: { checks: plan.checks.filter((c) => c.blocking && !c.ok) },
      });
    }
    return plan;
  }
}
