import type { MachineListEntry } from '@ployz/protocol';
import { DaemonCommand } from '../../daemon-command.ts';

export default class MachineLs extends DaemonCommand {
  static override description =
    "List the machines of this installation: the records in the store, and what is true now — whether each ployzd answers a ping (RTT) and wg0's last handshake with it (neither is stored).";
  static override examples = ['<%= config.bin %> machine ls', '<%= config.bin %> machine ls --json'];

  async run(): Promise<{ machines: MachineListEntry[] }> {
    const { flags } = await this.parse(MachineLs);
    const machines = await this.client(flags).call('machineList', {});
    if (!this.jsonEnabled()) {
      this.log(
        [
          'ID'.padEnd(20),
          'REGION'.padEnd(10),
          'ROLE'.padEnd(10),
          'LIFECYCLE'.padEnd(10),
          'SUBNET'.padEnd(18),
          'OVERLAY'.padEnd(28),
          'ENDPOINT'.padEnd(22),
          'HANDSHAKE'.padEnd(10),
          'PROBE',
        ].join(' '),
      );
      for (const m of machines) {
        this.log(
          [
            m.id.padEnd(20),
            m.region.padEnd(10),
            m.region_role.padEnd(10),
            m.lifecycle.padEnd(10),
            m.subnet.padEnd(18),
            m.overlay_ip.padEnd(28),
            (m.endpoints[0] ?? '-').padEnd(22),
            handshakeAge(m.live.handshake_at).padEnd(10),
            m.live.reachable
              ? `ok ${m.live.rtt_ms ?? '?'}ms`
              : `unreachable (${m.live.detail ?? 'no answer'})`,
          ].join(' '),
        );
      }
    }
    return { machines };
  }
}

/** `12s ago`, `3m ago`; `-` for none (this machine itself, or no handshake yet). */
function handshakeAge(at: string | null): string {
  if (at === null) return '-';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(at)) / 1000));
  return s < 120 ? `${s}s ago` : `${Math.round(s / 60)}m ago`;
}
