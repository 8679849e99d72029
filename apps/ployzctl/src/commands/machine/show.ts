import type { MachineShowResult } from '@ployz/protocol';
import { DaemonCommand } from '../../daemon-command.ts';

export default class MachineShow extends DaemonCommand {
  static override description = "Show this machine's identity and its stored machine record.";
  static override examples = ['<%= config.bin %> machine show', '<%= config.bin %> machine show --json'];

  async run(): Promise<MachineShowResult> {
    const { flags } = await this.parse(MachineShow);
    const result = await this.client(flags).call('machineShow', {});
    if (!this.jsonEnabled()) {
      const m = result.machine;
      this.log(`id            ${m.machine_id}`);
      this.log(`installation  ${m.installation} (authority ${m.authority})`);
      this.log(`region        ${m.region}`);
      this.log(`public key    ${m.public_key}`);
      this.log(`overlay ip    ${m.overlay_ip}`);
      this.log(`subnet        ${m.subnet}`);
      this.log(`created       ${m.created_at}`);
      if (result.record)
        this.log(`endpoints     ${result.record.endpoints.join(', ') || '(none: no LAN address found)'}`);
      this.log(
        `record        ${result.record ? `stored (${result.record.lifecycle}, ${result.record.region_role})` : 'not stored yet (NATS not connected?)'}`,
      );
    }
    return result;
  }
}
