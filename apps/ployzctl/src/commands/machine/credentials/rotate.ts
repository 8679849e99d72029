import type { CredentialsRotateResult } from '@ployz/protocol';
import { DaemonCommand } from '../../../daemon-command.ts';

export default class MachineCredentialsRotate extends DaemonCommand {
  static override description = [
    "Rotate this machine's NATS credentials: new NKeys for ployzd, ployz-gateway and ployz-dns.",
    '',
    'ployz-nats first accepts the old and the new keys, the components move to the new ones (the',
    'edge apps re-read their seed file when they reconnect; no container is recreated, traffic keeps',
    'flowing), then the old keys are refused. Run it after a seed may have leaked, or on a schedule.',
    'Interrupted, it is finished at the next ployzd start; run again, it rotates again.',
  ].join('\n');
  static override examples = [
    '<%= config.bin %> machine credentials rotate',
    '<%= config.bin %> machine credentials rotate --json',
  ];

  async run(): Promise<CredentialsRotateResult> {
    const { flags } = await this.parse(MachineCredentialsRotate);
    const result = await this.client(flags).call('machineCredentialsRotate', {});
    if (!this.jsonEnabled()) {
      this.log(`rotated the NATS credentials of machine ${result.machine}; the old keys are refused`);
      for (const id of ['ployzd', 'gateway', 'dns'] as const) {
        const moved =
          id === 'ployzd'
            ? 'reconnects by itself'
            : result.reconnected[id]
              ? 'reconnected'
              : 'NOT seen on its new key yet';
        this.log(`  ${id.padEnd(8)} ${result.public_keys[id]}  (${moved})`);
      }
      if (!result.reconnected.gateway || !result.reconnected.dns) {
        this.log(
          'check `ployzctl status`: an edge app not seen on its new key is not following routing changes',
        );
      }
    }
    return result;
  }
}
