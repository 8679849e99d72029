/**
 * Pieces the failure-path deploy e2e files share: the gateway seen under another hostname, the
 * deploy id and state out of a deploy's NDJSON, `deploy show` / `deploy ls` rows, and the
 * upper directory of a container (where an immutable file makes the engine's removal fail).
 */
import type { DaemonHarness } from './daemon-harness.ts';
import { docker } from './daemon-harness.ts';
import { DeployHarness, type DeployLine } from './deploy-harness.ts';

/** The same running install, requested through the gateway with another `Host`. */
export class HostView extends DeployHarness {
  override readonly host: string;
  constructor(h: DaemonHarness, host: string) {
    super(h);
    this.host = host;
  }
}

export interface StatusRow {
  deploy_id: string;
  state: string;
  step: number;
  rollback_of: string | null;
  commits: string[];
  error: { code: string; message: string } | null;
}

export interface CommitRow {
  id: string;
  kind: 'checkpoint' | 'final';
  phase: string | null;
  rollback_of: string | null;
  services: { service: string; revision: string }[];
}

export interface DeployDetail {
  status: StatusRow;
  phases: { phase: string; state: string; commit_id: string | null; error: { code: string } | null }[];
  commits: CommitRow[];
}

/** The deploy id a run announced (its `deploy` event), or '' when it stopped before step 4. */
export function deployIdOf(lines: DeployLine[]): string {
  const announced = lines.find((l) => l.type === 'deploy');
  return typeof announced?.deploy_id === 'string' ? announced.deploy_id : '';
}

/** Instance ids a run reported with this action (`starting`, `ready`, `removed`, `discarded`…). */
export function instancesWith(lines: DeployLine[], action: string, service?: string): string[] {
  return lines
    .filter((l) => l.type === 'instance' && l.action === action && (!service || l.service === service))
    .map((l) => String(l.instance));
}

/** `docker inspect` of one field, or null once the container is gone. */
export async function inspectField(container: string, format: string): Promise<string | null> {
  try {
    return await docker('inspect', '--format', format, container);
  } catch {
    return null;
  }
}

/** Every response body of `n` requests through the gateway (errors as text). */
export async function sample(view: DeployHarness, n: number): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < n; i++) {
    try {
      const r = await view.viaGateway();
      seen.push(r.status === 200 ? (/\(version ([^)]+)\)/.exec(r.body)?.[1] ?? r.body) : `HTTP ${r.status}`);
    } catch (e) {
      seen.push(String(e));
    }
  }
  return seen;
}
