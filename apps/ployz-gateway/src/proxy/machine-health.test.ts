import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:net';
import { type Backend, projectRoutes, type Route, type RouteTable } from '@ployz/routing';
import { describe, expect, it } from 'vitest';
import { Balancer } from './balance.ts';
import { MachineHealth, type ProbeOutcome, tcpProbe } from './machine-health.ts';

function backend(machine: string, host: string, port = 8080): Backend {
  return { instance: `${machine}-${host}`, machine, host, port, key: `${host}:${port}` };
}

/** A table with one route over `backends` (only what MachineHealth and Balancer read). */
function tableOf(backends: Backend[]): RouteTable {
  const route: Route = { id: 'web.test/', backends } as unknown as Route;
  const empty = projectRoutes({ machines: [], revisions: [], releases: [], instances: [], seq: 0 } as never);
  return { ...empty, exact: new Map([['web.test', [route]]]), wildcard: new Map() } as RouteTable;
}

function scripted(outcomes: Record<string, ProbeOutcome>) {
  const probed: string[] = [];
  const changes: [string, boolean, number][] = [];
  const health = new MachineHealth({
    self: 'm1',
    intervalMs: 0,
    timeoutMs: 100,
    misses: 2,
    probe: async (host) => {
      probed.push(host);
      return outcomes[host] ?? 'answered';
    },
    onChange: (machine, down, backends) => changes.push([machine, down, backends.length]),
  });
  return { health, probed, changes };
}

describe('MachineHealth: down-marking of other machines', () => {
  it('probes one backend per other machine a round, rotating; never its own machine', async () => {
    const { health, probed } = scripted({});
    health.update(
      tableOf([
        backend('m1', '10.0.1.2'),
        backend('m2', '10.0.2.2'),
        backend('m2', '10.0.2.3'),
        backend('m3', '10.0.3.2'),
      ]),
    );
    await health.round();
    await health.round();
    expect(probed.sort()).toEqual(['10.0.2.2', '10.0.2.3', '10.0.3.2', '10.0.3.2']);
  });

  it('two misses in a row mark a machine down (once); its first answer marks it up', async () => {
    const outcomes: Record<string, ProbeOutcome> = { '10.0.3.2': 'silent' };
    const { health, changes } = scripted(outcomes);
    health.update(
      tableOf([backend('m2', '10.0.2.2'), backend('m3', '10.0.3.2'), backend('m3', '10.0.3.2', 9090)]),
    );
    await health.round();
    expect(health.down.size).toBe(0);
    await health.round();
    expect([...health.down]).toEqual(['m3']);
    await health.round();
    expect(changes).toEqual([['m3', true, 2]]);
    outcomes['10.0.3.2'] = 'answered';
    await health.round();
    expect(health.down.size).toBe(0);
    expect(changes).toEqual([
      ['m3', true, 2],
      ['m3', false, 2],
    ]);
  });

  it('a miss between answers does not count toward down', async () => {
    const outcomes: Record<string, ProbeOutcome> = {};
    const { health } = scripted(outcomes);
    health.update(tableOf([backend('m2', '10.0.2.2')]));
    for (const o of ['silent', 'answered', 'silent', 'answered'] as const) {
      outcomes['10.0.2.2'] = o;
      await health.round();
    }
    expect(health.down.size).toBe(0);
  });

  it('a machine leaving the table is forgotten, and no longer counted down', async () => {
    const { health, changes } = scripted({ '10.0.3.2': 'silent' });
    health.update(tableOf([backend('m2', '10.0.2.2'), backend('m3', '10.0.3.2')]));
    await health.round();
    await health.round();
    expect(health.down.has('m3')).toBe(true);
    health.update(tableOf([backend('m2', '10.0.2.2')]));
    expect(health.down.size).toBe(0);
    expect(changes.at(-1)).toEqual(['m3', false, 1]);
  });

  it('without a machine id (a gateway outside ployzd) nothing is probed', async () => {
    const probed: string[] = [];
    const health = new MachineHealth({
      self: undefined,
      intervalMs: 0,
      timeoutMs: 100,
      misses: 2,
      probe: async (host) => {
        probed.push(host);
        return 'silent';
      },
      onChange: () => {},
    });
    health.update(tableOf([backend('m2', '10.0.2.2')]));
    await health.round();
    expect(probed).toEqual([]);
  });
});

describe('tcpProbe', () => {
  it('a listener and a refusal are answers', async () => {
    const server: Server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    expect(await tcpProbe('127.0.0.1', port, 1000)).toBe('answered');
    await new Promise((r) => server.close(r));
    expect(await tcpProbe('127.0.0.1', port, 1000)).toBe('answered'); // refused: RST came back
    // Silence (a machine off the network) is test/machine-down.test.ts's: a netns dropping every packet.
  });
});

describe('Balancer with machines down', () => {
  const backends = [backend('m1', '10.0.1.2'), backend('m2', '10.0.2.2'), backend('m3', '10.0.3.2')];
  const route = { id: 'web.test/', backends } as unknown as Route;

  it('passes over the backends of a down machine; retries visit them last', () => {
    const down = new Set<string>();
    const balancer = new Balancer(down);
    const firsts = Array.from(
      { length: 6 },
      () => balancer.backend(route, balancer.start(route), []).machine,
    );
    expect(firsts).toEqual(['m1', 'm2', 'm3', 'm1', 'm2', 'm3']);
    down.add('m2');
    const after = Array.from({ length: 6 }, () => balancer.backend(route, balancer.start(route), []).machine);
    expect(after).not.toContain('m2');
    const start = balancer.start(route);
    const tried: Backend[] = [];
    for (let a = 0; a < 3; a++) tried.push(balancer.backend(route, start, tried));
    expect(tried.map((b) => b.machine).at(-1)).toBe('m2');
    expect(new Set(tried).size).toBe(3);
    // A machine marked down after the first attempt went there: the retry goes elsewhere.
    const first = balancer.backend(route, 2, []);
    expect(first.machine).toBe('m3');
    down.add('m3');
    expect(balancer.backend(route, 2, [first]).machine).toBe('m1');
  });

  it('when every machine of a route is down, requests still go somewhere', () => {
    const balancer = new Balancer(new Set(['m1', 'm2', 'm3']));
    const picked = Array.from(
      { length: 3 },
      () => balancer.backend(route, balancer.start(route), []).machine,
    );
    expect(new Set(picked).size).toBe(3);
  });
});
