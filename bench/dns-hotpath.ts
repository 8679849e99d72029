/**
 * CPU per query of the answering path, in-process, no sockets: ployz-dns `respond()` (parse header
 * and question, map lookup, copy precomputed answer) against the same work done with dns2
 * (`Packet.parse`, build a response, `toBuffer`). Run: node --conditions=ployz-source bench/dns-hotpath.ts
 * (bench/dns.sh runs it). Prints ns/query and the ratio.
 */
import { ProjectionState, projectDns } from '@ployz/routing';
import dns2 from 'dns2';
import { compileAnswers, respond } from 'ployz-dns';

const { Packet } = dns2;
const AT = '2026-01-01T00:00:00Z';
const REV = 'rev-aaaaaaaaaaaaaaaa';

const instances = [0, 1].map((slot) => ({
  id: `web-${slot}`,
  namespace: 'default',
  service: 'web',
  slot,
  machine: 'm1',
  revision: REV,
  deploy: 'dep-1',
  container_id: null,
  ip: `10.210.1.${10 + slot}`,
  ip6: null,
  ports: { http: 8080 },
  state: 'running' as const,
  ready: true,
  draining: false,
  error: null,
  created_at: AT,
  updated_at: AT,
}));
const state = ProjectionState.fromSnapshot({
  seq: 1,
  machines: [
    {
      id: 'm1',
      public_key: `${'A'.repeat(43)}=`,
      overlay_ip: 'fd00::1',
      subnet: '10.210.1.0/24',
      endpoints: [],
      region: 'local',
      region_role: 'home_data',
      lifecycle: 'active',
      created_at: AT,
      updated_at: AT,
    },
  ],
  revisions: [],
  releases: [
    {
      namespace: 'default',
      service: 'web',
      revision: REV,
      deploy: 'dep-1',
      slots: instances.map((i) => ({ slot: i.slot, machine: 'm1', instance: i.id })),
      updated_at: AT,
    },
  ],
  instances,
});
const table = compileAnswers(projectDns(state));

const request = new Packet();
request.header.id = 0x1234;
request.header.rd = 1;
request.questions.push(
  new Packet.Question({ name: 'web.default.ployz.internal', type: Packet.TYPE.A, class: Packet.CLASS.IN }),
);
const query = request.toBuffer();

function measure(label: string, fn: () => number): number {
  for (let i = 0; i < 20_000; i++) fn(); // warm up
  const runs: number[] = [];
  for (let round = 0; round < 5; round++) {
    const n = 200_000;
    const started = process.hrtime.bigint();
    let sink = 0;
    for (let i = 0; i < n; i++) sink += fn();
    const elapsed = Number(process.hrtime.bigint() - started);
    if (sink === -1) console.log('');
    runs.push(elapsed / n);
  }
  const best = Math.min(...runs);
  console.log(
    `  ${label.padEnd(44)} ${best.toFixed(0).padStart(6)} ns/query  (${(1e9 / best / 1000).toFixed(0)}k/s per core)`,
  );
  return best;
}

console.log('answering path, in-process (A query, 2 answers):');
const ours = measure('ployz-dns respond() (precomputed wire)', () => {
  const outcome = respond(table, true, query, '10.0.0.1', true);
  return outcome.kind === 'answer' ? outcome.response.length : 0;
});
const theirs = measure('dns2 parse + build response + toBuffer', () => {
  const parsed = Packet.parse(query);
  const response = Packet.createResponseFromRequest(parsed);
  const question = parsed.questions[0];
  if (question === undefined) return 0;
  for (const ip of ['10.210.1.10', '10.210.1.11']) {
    response.answers.push({
      name: question.name,
      type: Packet.TYPE.A,
      class: Packet.CLASS.IN,
      ttl: 0,
      address: ip,
    } as never);
  }
  return response.toBuffer().length;
});
console.log(`  ratio dns2 / ployz-dns CPU per query: ${(theirs / ours).toFixed(1)}×`);
