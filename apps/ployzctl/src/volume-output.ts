/** How `ployzctl volume ls` and `volume show` print volumes for people (`--json` prints the records). */
import type { VolumeShowView } from '@ployz/protocol';
import type { VolumeRecord } from '@ployz/types';

export const VOLUME_HEADER = [
  'VOLUME'.padEnd(28),
  'MACHINE'.padEnd(12),
  'DRIVER'.padEnd(7),
  'QUOTA'.padEnd(10),
  'SNAPSHOTS'.padEnd(10),
  'NEWEST',
].join(' ');

export function bytes(n: number | null): string {
  if (n === null) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)}${units[u]}`;
}

export function age(at: string, now: Date): string {
  const s = Math.max(0, Math.round((now.getTime() - Date.parse(at)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

export function volumeRow(v: VolumeRecord): string {
  return [
    `${v.namespace}/${v.name}`.padEnd(28),
    v.machine.padEnd(12),
    v.driver.padEnd(7),
    bytes(v.quota_bytes).padEnd(10),
    String(v.snapshots.length).padEnd(10),
    v.snapshots.at(-1)?.deploy_id ?? (v.driver === 'dir' ? '(dir: no snapshots)' : '-'),
  ].join(' ');
}

const mode = (m: number | null) => (m === null ? '-' : `0${m.toString(8)}`);
const owner = (o: { uid: number; gid: number } | null) => (o === null ? '-' : `${o.uid}:${o.gid}`);

export function volumeDetailLines(view: VolumeShowView, now: Date): string[] {
  const { record: r, live } = view;
  const out = [
    `volume   ${r.namespace}/${r.name} (${r.scope}${r.slot === null ? '' : `, slot ${r.slot}`})`,
    `machine  ${r.machine}`,
    `driver   ${r.driver}  dataset ${live?.dataset ?? r.dataset}`,
    `quota    ${bytes(live?.quota_bytes ?? r.quota_bytes)}  used ${bytes(live?.used_bytes ?? null)}`,
    `owner    ${owner(live?.owner ?? r.owner)}  mode ${mode(live?.mode ?? r.mode)}`,
    `created  by ${r.created_by}; keeps the snapshots of the last ${r.keep_snapshots} deploys`,
  ];
  if (view.live_error !== null) out.push(`live     unknown: ${view.live_error}`);
  if (r.driver === 'dir')
    out.push('snapshots none: dir storage keeps no snapshots, so a rollback does not revert this data');
  else {
    out.push(`snapshots (${r.snapshots.length}, oldest first)`);
    const onMachine = new Set((live?.snapshots ?? []).map((s) => s.id));
    for (const s of r.snapshots) {
      const gone = live !== null && !onMachine.has(s.id) ? '  (missing on the machine)' : '';
      out.push(
        `  ${s.deploy_id.padEnd(24)} ${age(s.at, now).padStart(5)} ago  ${bytes(s.bytes).padStart(9)}  ${s.id}${gone}`,
      );
    }
  }
  return out;
}
