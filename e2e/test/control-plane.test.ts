/**
 * The control plane seen from a workload (issue 13, docs/adr/0011-trust-model.md): a container on
 * the ployz bridge reaches DNS and the gateway's serving port on `.2`, and nothing else of the
 * system — NATS, its monitoring port and the admin listeners refuse it — while the host (`.1`)
 * still reaches NATS (the daemon stays connected) and the health endpoints (healthchecks pass).
 * NATS itself refuses a connection without credentials, and the gateway's identity reads the
 * routing assets but cannot write an instance record.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defineCommands, RpcClient } from '@ployz/protocol';
import { connectStore, inboxPrefixOf, openStore } from '@ployz/store';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DaemonHarness, docker } from './daemon-harness.ts';

/** Runs inside the workload container (node from the hello image): one JSON line of results. */
const PROBE = `
const net = require('node:net');
const dgram = require('node:dgram');
const host = process.argv[1];
const ports = process.argv.slice(2).map(Number);
const tcp = (port) => new Promise((resolve) => {
  const s = net.connect({ host, port });
  const done = (r) => { s.destroy(); resolve(r); };
  s.setTimeout(5000, () => done('timeout'));
  s.on('connect', () => done('open'));
  s.on('error', (e) => done(e.code));
});
const dns = () => new Promise((resolve) => {
  const s = dgram.createSocket('udp4');
  // id 0x1234, RD, one question: localhost. A IN
  const q = Buffer.from('123401000001000000000000096c6f63616c686f73740000010001', 'hex');
  const t = setTimeout(() => { s.close(); resolve('timeout'); }, 5000);
  s.on('message', (m) => { clearTimeout(t); s.close(); resolve(m.readUInt16BE(0) === 0x1234 ? 'answered' : 'bad id'); });
  s.send(q, 53, host);
});
const http = () => fetch('http://' + host + ':8080/', { headers: { host: 'nobody.invalid' }, signal: AbortSignal.timeout(5000) })
  .then((r) => 'http ' + r.status, (e) => String(e.cause?.code ?? e));
(async () => {
  const out = { tcp: {} };
  for (const p of ports) out.tcp[p] = await tcp(p);
  out.dns = await dns();
  out.http = await http();
  console.log(JSON.stringify(out));
})();
`;

interface ProbeResult {
  tcp: Record<string, string>;
  dns: string;
  http: string;
}

async function probeFromWorkload(h: DaemonHarness, host: string, ports: number[]): Promise<ProbeResult> {
  const out = await docker(
    'run',
    '--rm',
    '--network',
    h.bridge,
    '--label',
    `ployz.test=${h.installation}`,
    '--entrypoint',
    'node',
    'ployz/hello:latest',
    '-e',
    PROBE,
    host,
    ...ports.map(String),
  );
  return JSON.parse(out.split('\n').at(-1) ?? '') as ProbeResult;
}

describe('control plane closed to workloads (real dockerd)', () => {
  it('a workload on the bridge reaches DNS and the gateway, not NATS, monitoring or the admin ports', async () => {
    await using h = await DaemonHarness.create();
    await h.startInitialised();
    // The networking healthcheck includes the guard rule; the gateway/dns ones reach their admin
    // port on .2 from inside the netns, so the rule must not break them.
    await h.waitFor(
      (s) =>
        s.nats?.state === 'connected' &&
        s.machine?.record_stored === true &&
        s.components.every((c) => c.component === 'nats' || c.health === 'healthy'),
      'nats connected, healthchecks passing',
      90_000,
    );
    const rule = await docker('exec', `${h.prefix}networking`, 'iptables', '-S', 'PLOYZ-GUARD');
    expect(rule).toContain(`-s ${h.subnet} -p tcp -j REJECT --reject-with tcp-reset`);

    const dotTwo = h.subnet.replace(/0\/24$/, '2');
    const result = await probeFromWorkload(h, dotTwo, [4222, 6222, 7422, 8222, 9180, 9053, 53, 8080]);
    expect(result.tcp).toEqual({
      4222: 'ECONNREFUSED',
      6222: 'ECONNREFUSED',
      7422: 'ECONNREFUSED',
      8222: 'ECONNREFUSED',
      9180: 'ECONNREFUSED',
      9053: 'ECONNREFUSED',
      53: 'open',
      8080: 'open',
    });
    expect(result.dns).toBe('answered');
    expect(result.http).toMatch(/^http \d{3}$/);

    // NATS (from the host's bridge address): anonymous refused; the gateway reads, cannot write.
    const servers = `nats://${dotTwo}:4222`;
    await expect(connectStore({ servers, timeoutMs: 5000 })).rejects.toMatchObject({
      code: 'STORE_UNAVAILABLE',
      cause: { message: expect.stringMatching(/authorization/i) },
    });
    const gatewaySeed = (await readFile(join(h.stateDir, 'nats-auth', 'gateway.nk'), 'utf8')).trim();
    expect(gatewaySeed).toMatch(/^SU/);
    const asGateway = await openStore({
      servers,
      nkeySeed: gatewaySeed,
      inboxPrefix: inboxPrefixOf('gateway'),
      installation: h.installation,
      authority: 'auth-default',
      ensure: false,
    });
    try {
      expect((await asGateway.routing.snapshot()).machines.map((m) => m.id)).toEqual(['m1']);
      await expect(
        asGateway.js.publish(`$KV.${asGateway.names.instances}.web.api.i1`, '{"hijack":true}'),
      ).rejects.toThrow(/permission/i);
      await expect(asGateway.jsm.streams.delete(`KV_${asGateway.names.instances}`)).rejects.toThrow(
        /permission|timeout/i,
      );
    } finally {
      await asGateway.close();
    }

    // Crafted machine commands with ployzd's own identity (full publish rights): the handlers
    // refuse what the manifest would refuse, and create nothing.
    const ployzdSeed = (await readFile(join(h.stateDir, 'nats-auth', 'ployzd.nk'), 'utf8')).trim();
    const asPloyzd = await connectStore({ servers, nkeySeed: ployzdSeed, timeoutMs: 5000 });
    try {
      const raw = defineCommands({ deploy_start: { request: z.unknown(), response: z.unknown() } });
      const rpc = new RpcClient({
        nc: asPloyzd.nc,
        scope: { installation: h.installation, authority: 'auth-default' },
        commands: raw,
      });
      const body = (service: Record<string, unknown>, instance: string) => ({
        namespace: 'shop',
        service: {
          name: 'web',
          image: 'ployz/hello:latest',
          env: { PORT: '8080' },
          mounts: [],
          ...service,
        },
        per_slot_volumes: [],
        revision: 'rev-0123456789abcdef',
        deploy: 'dep-0000000000test0000',
        instance,
        slot: 0,
        machine: 'm1',
      });
      const outside = [{ kind: 'volume', volume: '../../../etc', target: '/data', read_only: false }];
      await expect(
        rpc.call('m1', 'deploy_start', body({ mounts: outside }, 'shop-web-0-aaaa0000'), {
          timeoutMs: 10_000,
        }),
      ).rejects.toMatchObject({ code: 'RPC_BAD_REQUEST' });
      await expect(
        rpc.call('m1', 'deploy_start', body({ name: 'Web_Admin' }, 'shop-web-0-bbbb0000'), {
          timeoutMs: 10_000,
        }),
      ).rejects.toMatchObject({ code: 'RPC_BAD_REQUEST' });
      const workloads = await docker(
        'ps',
        '-aq',
        '--filter',
        `label=ployz.installation=${h.installation}`,
        '--filter',
        'label=ployz.kind=workload',
      );
      expect(workloads).toBe('');
    } finally {
      await asPloyzd.close();
    }

    // The host side is untouched: after the probe the daemon is still connected to NATS.
    const after = await h.waitFor((s) => s.nats?.state === 'connected', 'nats still connected');
    expect(after.components.find((c) => c.component === 'networking')?.health).toBe('healthy');
  });
});
