import type { StatusView } from '@ployz/protocol';
import { certificateStatusLines } from '../cert-output.ts';
import { DaemonCommand } from '../daemon-command.ts';
import { routeLines } from '../status-output.ts';
import { storeStatusLines } from '../store-output.ts';

function ago(iso: string | null | undefined): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

export default class Status extends DaemonCommand {
  static override description =
    'Show this machine: data-plane components (adopted / created / recreated / missing / unhealthy, why, since when, the version each runs and any skew from what this ployzd expects), NATS connectivity, identity and subnet, route conflicts between committed releases, and the renewal state of tls = "auto" certificates (each hostname whose renewal is failing), and the store: replicas, stream leader, assets lagging, a promotion in progress.';
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --json'];

  async run(): Promise<StatusView> {
    const { flags } = await this.parse(Status);
    const status = await this.client(flags).call('status', {});
    if (!this.jsonEnabled()) this.print(status);
    return status;
  }

  private print(s: StatusView): void {
    const supervisor = s.daemon.supervisor ?? 'none';
    const kept =
      supervisor === 'none' ? 'not supervised: nothing restarts it' : `supervised by ${supervisor}`;
    this.log(
      `ployzd ${s.daemon.version} (pid ${s.daemon.pid}, up since ${ago(s.daemon.started_at)}, ${kept})`,
    );
    if (!s.machine) {
      this.log('machine: not initialised — run: ployzctl machine init');
      return;
    }
    const m = s.machine;
    this.log(`machine: ${m.machine_id}  installation ${m.installation}  region ${m.region}`);
    this.log(`  overlay ${m.overlay_ip}  subnet ${m.subnet}  key ${m.public_key}`);
    if (s.reconcile?.error)
      this.log(`reconcile: FAILED ${s.reconcile.error.code}: ${s.reconcile.error.message}`);
    else if (s.reconcile) {
      this.log(
        `reconcile ${ago(s.reconcile.at)}: ${s.reconcile.adopted} adopted, ${s.reconcile.created} created, ${s.reconcile.recreated} recreated, ${s.reconcile.problems} problems`,
      );
    }
    const rows = s.components.map((c) => [
      c.component,
      c.state,
      c.reason ?? '-',
      ago(c.since),
      c.container_id?.slice(0, 12) ?? '-',
      c.version ?? c.image_id?.replace(/^sha256:/, '').slice(0, 12) ?? '-',
      c.detail ?? '',
    ]);
    const head = ['COMPONENT', 'STATE', 'REASON', 'SINCE', 'CONTAINER', 'VERSION', 'DETAIL'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
    const line = (r: string[]) =>
      r
        .map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd();
    this.log(line(head));
    for (const r of rows) this.log(line(r));
    for (const c of s.components) if (c.skew) this.log(`version skew: ${c.component} ${c.skew}`);
    if (s.nats) {
      const rtt = s.nats.rtt_ms === null ? '' : ` rtt ${s.nats.rtt_ms} ms`;
      const err = s.nats.last_error ? ` (last error: ${s.nats.last_error})` : '';
      this.log(`nats: ${s.nats.state} ${s.nats.url} since ${ago(s.nats.since)}${rtt}${err}`);
    }
    if (s.agent)
      this.log(
        `agent: ${s.agent.listening ? 'listening' : 'stopped'} on ${s.agent.subject} (${s.agent.commands.join(', ')})`,
      );
    if (s.join)
      this.log(
        s.join.address === null
          ? 'join: not listening (no invite key on this machine, no LAN address, or the join port is taken; see the log)'
          : `join: listening on ${s.join.address} (ployzctl machine invite)`,
      );
    for (const line of routeLines(s.routes)) this.log(line);
    for (const line of certificateStatusLines(s.certificates, new Date())) this.log(line);
    for (const line of storeStatusLines(s.store)) this.log(line);
  }
}
