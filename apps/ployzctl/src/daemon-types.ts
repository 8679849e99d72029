/** The shapes ployzctl reads from ployzd's local API (mirrors apps/ployzd DaemonStatus). */
export interface MachineIdentityView {
  installation: string;
  authority: string;
  machine_id: string;
  public_key: string;
  overlay_ip: string;
  subnet: string;
  region: string;
  created_at: string;
}

export interface ComponentStatusView {
  component: string;
  container_name: string;
  container_id: string | null;
  state: string;
  reason: string | null;
  detail: string | null;
  since: string | null;
  running: boolean;
  health: string;
}

export interface StatusView {
  daemon: { pid: number; version: string; started_at: string; socket: string; state_dir: string };
  initialised: boolean;
  machine: (MachineIdentityView & { record_stored: boolean }) | null;
  reconcile: {
    at: string;
    adopted: number;
    created: number;
    recreated: number;
    problems: number;
    error: { code: string; message: string } | null;
  } | null;
  components: ComponentStatusView[];
  nats: {
    url: string;
    state: string;
    since: string;
    last_error: string | null;
    rtt_ms: number | null;
  } | null;
  agent: { subject: string; commands: string[]; listening: boolean } | null;
}

export interface MachineRecordView {
  id: string;
  public_key: string;
  overlay_ip: string;
  subnet: string;
  endpoints: string[];
  region: string;
  region_role: string;
  lifecycle: string;
  created_at: string;
  updated_at: string;
}
