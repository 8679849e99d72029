/**
 * Invalid manifests, each with the exact issue code and path expected. Most are one change to a
 * valid base manifest, checked both as JSON and as TOML text.
 */
import { stringify as toToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import {
  assertManifestSize,
  isPloyzError,
  MANIFEST_MAX_BYTES,
  type ManifestIssue,
  type PloyzError,
  parseManifest,
} from '../src/index.ts';
import { type BaseInput, baseInput } from './manifest-fixture.ts';

function issuesOf(text: string, filename: string): ManifestIssue[] {
  try {
    parseManifest(text, { filename });
  } catch (e) {
    if (!isPloyzError(e)) throw e;
    expect(['MANIFEST_INVALID', 'MANIFEST_SYNTAX']).toContain(e.code);
    return (e.details?.issues ?? []) as ManifestIssue[];
  }
  throw new Error('expected the manifest to be rejected');
}

const svc = (m: BaseInput, i: number) => m.services[i] as Record<string, unknown>;
const web = (m: BaseInput) => svc(m, 0);
const db = (m: BaseInput) => svc(m, 1);
const phase = (m: BaseInput, i: number) => m.phases[i] as Record<string, unknown>;
const volume = (m: BaseInput, i: number) => m.volumes[i] as Record<string, unknown>;

type Case = [name: string, mutate: (m: BaseInput) => void, code: string, path: string];

const cases: Case[] = [
  [
    'namespace not a DNS label',
    (m) => {
      m.namespace = 'Demo';
    },
    'NAME_NOT_DNS_LABEL',
    'namespace',
  ],
  ['namespace missing', (m) => void delete m.namespace, 'REQUIRED', 'namespace'],
  [
    'namespace a number',
    (m) => {
      m.namespace = 5;
    },
    'TYPE_INVALID',
    'namespace',
  ],
  [
    'no services',
    (m) => {
      m.services = [];
      m.phases = [];
    },
    'LENGTH_INVALID',
    'services',
  ],
  [
    'unknown top-level field',
    (m) => {
      m.servics = [];
    },
    'UNKNOWN_FIELD',
    'servics',
  ],
  [
    'service name uppercase',
    (m) => {
      web(m).name = 'Web';
      m.phases = [];
    },
    'NAME_NOT_DNS_LABEL',
    'services[0].name',
  ],
  [
    'service name too long',
    (m) => {
      web(m).name = 'a'.repeat(64);
      m.phases = [];
    },
    'NAME_NOT_DNS_LABEL',
    'services[0].name',
  ],
  [
    'service name leading dash',
    (m) => {
      web(m).name = '-web';
      m.phases = [];
    },
    'NAME_NOT_DNS_LABEL',
    'services[0].name',
  ],
  ['image missing', (m) => void delete web(m).image, 'REQUIRED', 'services[0].image'],
  [
    'image with a space',
    (m) => {
      web(m).image = 'ployz hello';
    },
    'IMAGE_INVALID',
    'services[0].image',
  ],
  [
    'image with capital letters in the repository',
    (m) => {
      web(m).image = 'Ployz/Hello:1';
    },
    'IMAGE_INVALID',
    'services[0].image',
  ],
  [
    'image with a bad registry port',
    (m) => {
      web(m).image = '127.0.0.1:99999/team/app:1.2';
    },
    'IMAGE_INVALID',
    'services[0].image',
  ],
  [
    'pull_policy not one of the three',
    (m) => {
      web(m).image = 'registry.example.com/team/app:1.2';
      web(m).pull_policy = 'sometimes';
    },
    'VALUE_INVALID',
    'services[0].pull_policy',
  ],
  [
    'pull_policy on a local image',
    (m) => {
      web(m).pull_policy = 'always';
    },
    'PULL_POLICY_NO_REGISTRY',
    'services[0].pull_policy',
  ],
  [
    'misspelled field',
    (m) => {
      web(m).imgae = 'x';
    },
    'UNKNOWN_FIELD',
    'services[0].imgae',
  ],
  [
    'duplicate service name',
    (m) => void m.services.push({ name: 'web', image: 'x' }),
    'SERVICE_NAME_DUPLICATE',
    'services[2].name',
  ],
  [
    'command as a string',
    (m) => {
      web(m).command = 'npm start';
    },
    'TYPE_INVALID',
    'services[0].command',
  ],
  [
    'env name with a digit first',
    (m) => {
      web(m).env = { '1BAD': 'x' };
    },
    'ENV_NAME_INVALID',
    'services[0].env["1BAD"]',
  ],
  [
    'env value a list',
    (m) => {
      web(m).env = { LIST: ['a'] };
    },
    'ENV_VALUE_INVALID',
    'services[0].env.LIST',
  ],
  [
    'env value a table',
    (m) => {
      web(m).env = { T: { a: 1 } };
    },
    'ENV_VALUE_INVALID',
    'services[0].env.T',
  ],
  [
    'port name uppercase',
    (m) => {
      web(m).ports = { HTTP: 8080 };
    },
    'PORT_NAME_INVALID',
    'services[0].ports.HTTP',
  ],
  [
    'port number too big',
    (m) => {
      web(m).ports = { http: 70000 };
    },
    'OUT_OF_RANGE',
    'services[0].ports.http.port',
  ],
  [
    'port protocol unknown',
    (m) => {
      web(m).ports = { http: { port: 8080, protocol: 'sctp' } };
    },
    'VALUE_INVALID',
    'services[0].ports.http.protocol',
  ],
  [
    'ports as a list',
    (m) => {
      web(m).ports = [8080];
    },
    'TYPE_INVALID',
    'services[0].ports',
  ],
  [
    'route with http and tcp',
    (m) => {
      web(m).routes = [{ http: { hostnames: ['a.localhost'] }, tcp: { listen: 9000 } }];
    },
    'ROUTE_KIND_INVALID',
    'services[0].routes[0]',
  ],
  [
    'route with neither',
    (m) => {
      web(m).routes = [{}];
    },
    'ROUTE_KIND_INVALID',
    'services[0].routes[0]',
  ],
  [
    'route without hostnames',
    (m) => {
      web(m).routes = [{ http: { hostnames: [] } }];
    },
    'LENGTH_INVALID',
    'services[0].routes[0].http.hostnames',
  ],
  [
    'hostname with a space',
    (m) => {
      web(m).routes = [{ http: { hostnames: ['bad host'] } }];
    },
    'HOSTNAME_INVALID',
    'services[0].routes[0].http.hostnames[0]',
  ],
  [
    'hostname label with leading dash',
    (m) => {
      web(m).routes = [{ http: { hostnames: ['ok.localhost', '-a.example.com'] } }];
    },
    'HOSTNAME_INVALID',
    'services[0].routes[0].http.hostnames[1]',
  ],
  [
    'route path without leading slash',
    (m) => {
      web(m).routes = [{ http: { hostnames: ['web.localhost'], path: 'api' } }];
    },
    'ROUTE_PATH_INVALID',
    'services[0].routes[0].http.path',
  ],
  [
    'route names an unknown port',
    (m) => {
      web(m).routes = [{ http: { hostnames: ['web.localhost'], port: 'admin' } }];
    },
    'PORT_REF_UNKNOWN',
    'services[0].routes[0].http.port',
  ],
  [
    'route must name one of several ports',
    (m) => {
      web(m).ports = { http: 8080, admin: 9000 };
      web(m).readiness = { http: { path: '/healthz', port: 'http' } };
    },
    'PORT_REF_REQUIRED',
    'services[0].routes[0].http',
  ],
  [
    'same hostname and path in two services',
    (m) => {
      db(m).routes = [{ http: { hostnames: ['WEB.localhost'], path: '/' } }];
    },
    'ROUTE_DUPLICATE',
    'services[1].routes[0].http.hostnames[0]',
  ],
  [
    'same path up to a trailing slash',
    (m) => {
      web(m).routes = [{ http: { hostnames: ['web.localhost'], path: '/api' } }];
      db(m).routes = [{ http: { hostnames: ['web.localhost'], path: '/api/' } }];
    },
    'ROUTE_DUPLICATE',
    'services[1].routes[0].http.hostnames[0]',
  ],
  [
    'tcp route on the gateway port',
    (m) => {
      db(m).routes = [{ tcp: { listen: 80 } }];
    },
    'ROUTE_PORT_RESERVED',
    'services[1].routes[0].tcp.listen',
  ],
  [
    'tcp listen port used twice',
    (m) => {
      db(m).routes = [{ tcp: { listen: 5432 } }];
      web(m).routes = [{ tcp: { listen: 5432 } }];
    },
    'ROUTE_DUPLICATE',
    'services[1].routes[0].tcp.listen',
  ],
  [
    'tcp listen port zero',
    (m) => {
      db(m).routes = [{ tcp: { listen: 0 } }];
    },
    'OUT_OF_RANGE',
    'services[1].routes[0].tcp.listen',
  ],
  [
    'http route to a udp port',
    (m) => {
      web(m).ports = { http: { port: 8080, protocol: 'udp' } };
      web(m).readiness = { exec: { command: ['true'] } };
    },
    'PORT_PROTOCOL_MISMATCH',
    'services[0].routes[0].http.port',
  ],
  [
    'readiness with http and exec',
    (m) => {
      web(m).readiness = { http: { path: '/healthz' }, exec: { command: ['true'] } };
    },
    'READINESS_KIND_INVALID',
    'services[0].readiness',
  ],
  [
    'readiness interval without unit',
    (m) => {
      web(m).readiness = { http: { path: '/healthz' }, interval: '5' };
    },
    'DURATION_INVALID',
    'services[0].readiness.interval',
  ],
  [
    'readiness interval as a number',
    (m) => {
      web(m).readiness = { http: { path: '/healthz' }, interval: 5 };
    },
    'DURATION_INVALID',
    'services[0].readiness.interval',
  ],
  [
    'readiness retries zero',
    (m) => {
      web(m).readiness = { http: { path: '/healthz' }, retries: 0 };
    },
    'OUT_OF_RANGE',
    'services[0].readiness.retries',
  ],
  [
    'readiness names an unknown port',
    (m) => {
      web(m).readiness = { http: { path: '/healthz', port: 'metrics' } };
    },
    'PORT_REF_UNKNOWN',
    'services[0].readiness.http.port',
  ],
  [
    'readiness http without path',
    (m) => {
      web(m).readiness = { http: {} };
    },
    'REQUIRED',
    'services[0].readiness.http.path',
  ],
  [
    'exec readiness with an empty command',
    (m) => {
      web(m).readiness = { exec: { command: [] } };
    },
    'LENGTH_INVALID',
    'services[0].readiness.exec.command',
  ],
  [
    'negative replicas',
    (m) => {
      web(m).placement = { replicas: -1 };
    },
    'OUT_OF_RANGE',
    'services[0].placement.replicas',
  ],
  [
    'fractional replicas',
    (m) => {
      web(m).placement = { replicas: 1.5 };
    },
    'TYPE_INVALID',
    'services[0].placement.replicas',
  ],
  [
    'unknown placement mode',
    (m) => {
      web(m).placement = { mode: 'everywhere' };
    },
    'VALUE_INVALID',
    'services[0].placement.mode',
  ],
  [
    'global with a replica count',
    (m) => {
      web(m).placement = { mode: 'global', replicas: 2 };
    },
    'PLACEMENT_INVALID',
    'services[0].placement.replicas',
  ],
  [
    'mount of an undeclared volume',
    (m) => {
      db(m).mounts = [{ volume: 'nope', target: '/data' }];
    },
    'VOLUME_REF_UNKNOWN',
    'services[1].mounts[0].volume',
  ],
  [
    'relative mount target',
    (m) => {
      db(m).mounts = [{ volume: 'pgdata', target: 'data' }];
    },
    'MOUNT_TARGET_INVALID',
    'services[1].mounts[0].target',
  ],
  [
    'mount with volume and tmpfs',
    (m) => {
      db(m).mounts = [{ volume: 'pgdata', tmpfs: {}, target: '/data' }];
    },
    'MOUNT_KIND_INVALID',
    'services[1].mounts[0]',
  ],
  [
    'two mounts on one target',
    (m) => {
      db(m).mounts = [
        { volume: 'pgdata', target: '/data' },
        { tmpfs: {}, target: '/data/' },
      ];
    },
    'MOUNT_TARGET_DUPLICATE',
    'services[1].mounts[1].target',
  ],
  [
    'single-scope volume on a multi-replica service',
    (m) => {
      db(m).placement = { replicas: 2 };
    },
    'VOLUME_SCOPE_CONFLICT',
    'services[1].mounts[0].volume',
  ],
  [
    'single-scope volume on a global service',
    (m) => {
      db(m).placement = { mode: 'global' };
    },
    'VOLUME_SCOPE_CONFLICT',
    'services[1].mounts[0].volume',
  ],
  [
    'single-scope volume on two services',
    (m) => {
      web(m).mounts = [{ volume: 'pgdata', target: '/data', read_only: true }];
    },
    'VOLUME_SCOPE_CONFLICT',
    'services[1].mounts[0].volume',
  ],
  [
    'volume quota without a unit word',
    (m) => {
      volume(m, 0).quota = '10 gigs';
    },
    'SIZE_INVALID',
    'volumes[0].quota',
  ],
  [
    'volume quota zero',
    (m) => {
      volume(m, 0).quota = 0;
    },
    'OUT_OF_RANGE',
    'volumes[0].quota',
  ],
  [
    'volume owner by name instead of numbers',
    (m) => {
      volume(m, 0).owner = 'postgres:postgres';
    },
    'VALUE_INVALID',
    'volumes[0].owner',
  ],
  [
    'volume owner beyond 2^31',
    (m) => {
      volume(m, 0).owner = '4294967295:0';
    },
    'VALUE_INVALID',
    'volumes[0].owner',
  ],
  [
    'volume mode with setuid bits',
    (m) => {
      volume(m, 0).mode = '4755';
    },
    'VALUE_INVALID',
    'volumes[0].mode',
  ],
  [
    'volume mode as a decimal number',
    (m) => {
      volume(m, 0).mode = 750;
    },
    'TYPE_INVALID',
    'volumes[0].mode',
  ],
  [
    'keep_snapshots zero',
    (m) => {
      volume(m, 0).keep_snapshots = 0;
    },
    'OUT_OF_RANGE',
    'volumes[0].keep_snapshots',
  ],
  [
    'unknown volume scope',
    (m) => {
      volume(m, 0).scope = 'global';
    },
    'VALUE_INVALID',
    'volumes[0].scope',
  ],
  [
    'duplicate volume',
    (m) => void m.volumes.push({ name: 'pgdata' }),
    'VOLUME_NAME_DUPLICATE',
    'volumes[1].name',
  ],
  [
    'phase lists an unknown service',
    (m) => {
      phase(m, 0).services = ['db', 'cache'];
    },
    'SERVICE_REF_UNKNOWN',
    'phases[0].services[1]',
  ],
  [
    'phase lists an unknown volume',
    (m) => {
      phase(m, 0).volumes = ['pgdata', 'logs'];
    },
    'VOLUME_REF_UNKNOWN',
    'phases[0].volumes[1]',
  ],
  [
    'phase after an unknown phase',
    (m) => {
      phase(m, 1).after = ['migrate'];
    },
    'PHASE_REF_UNKNOWN',
    'phases[1].after[0]',
  ],
  [
    'phases in a cycle',
    (m) => {
      phase(m, 0).after = ['app'];
    },
    'PHASE_CYCLE',
    'phases[0].after',
  ],
  [
    'phase after itself',
    (m) => {
      phase(m, 1).after = ['app'];
    },
    'PHASE_CYCLE',
    'phases[1].after',
  ],
  [
    'service in two phases',
    (m) => {
      phase(m, 1).services = ['web', 'db'];
    },
    'PHASE_ITEM_DUPLICATE',
    'phases[1].services[1]',
  ],
  [
    'duplicate phase id',
    (m) => {
      phase(m, 1).id = 'data';
    },
    'PHASE_ID_DUPLICATE',
    'phases[1].id',
  ],
  [
    'reserved phase id',
    (m) => {
      phase(m, 0).id = 'default';
      phase(m, 1).after = ['default'];
    },
    'PHASE_ID_RESERVED',
    'phases[0].id',
  ],
  [
    'unknown commit policy',
    (m) => {
      phase(m, 0).commit_policy = 'sometimes';
    },
    'VALUE_INVALID',
    'phases[0].commit_policy',
  ],
  [
    'docker-style restart spelling',
    (m) => {
      web(m).restart = 'on-failure';
    },
    'VALUE_INVALID',
    'services[0].restart',
  ],
  [
    'stop grace in words',
    (m) => {
      web(m).stop_grace = '10 seconds';
    },
    'DURATION_INVALID',
    'services[0].stop_grace',
  ],
  [
    'zero cpus',
    (m) => {
      web(m).resources = { cpus: 0 };
    },
    'OUT_OF_RANGE',
    'services[0].resources.cpus',
  ],
  [
    'memory in words',
    (m) => {
      web(m).resources = { memory: '1 gig' };
    },
    'SIZE_INVALID',
    'services[0].resources.memory',
  ],
  [
    'tmpfs size negative',
    (m) => {
      db(m).mounts = [{ tmpfs: { size: '-1MiB' }, target: '/tmp' }];
    },
    'SIZE_INVALID',
    'services[1].mounts[0].tmpfs.size',
  ],
];

describe('invalid manifests: exact code and path', () => {
  it('has at least 40 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  it('the unmutated base manifest is valid in both formats', () => {
    expect(() => parseManifest(JSON.stringify(baseInput()), { format: 'json' })).not.toThrow();
    expect(() => parseManifest(toToml(baseInput()), { format: 'toml' })).not.toThrow();
  });

  describe.each([
    ['json', (m: BaseInput) => JSON.stringify(m, null, 2), 'deploy.json'],
    ['toml', (m: BaseInput) => toToml(m), 'deploy.toml'],
  ] as const)('as %s', (_format, render, filename) => {
    it.each(cases)('%s → %s at %s', (_name, mutate, code, path) => {
      const m = baseInput();
      mutate(m);
      const issues = issuesOf(render(m), filename);
      expect(issues.map((i) => ({ code: i.code, path: i.path }))).toEqual([{ code, path }]);
      const issue = issues[0];
      expect(issue?.file).toBe(filename);
      expect(issue?.line).toBeGreaterThanOrEqual(1);
      expect(issue?.message.length).toBeGreaterThan(5);
    });
  });
});

describe('TOML-only shapes', () => {
  it('a date where a string belongs is a type error with its line', () => {
    const text = 'namespace = "demo"\n\n[[services]]\nname = "a"\nimage = 1979-05-27\n';
    expect(issuesOf(text, 'deploy.toml')).toEqual([
      {
        code: 'TYPE_INVALID',
        path: 'services[0].image',
        message: 'expected a string, got a date',
        file: 'deploy.toml',
        line: 5,
        column: 1,
      },
    ]);
  });

  it('[services] as a table instead of [[services]] is a type error', () => {
    const text = 'namespace = "demo"\n[services]\nname = "a"\nimage = "i"\n';
    expect(issuesOf(text, 'deploy.toml').map((i) => [i.code, i.path, i.line])).toEqual([
      ['TYPE_INVALID', 'services', 2],
    ]);
  });

  it('issues carry the line of the field in nested array tables', () => {
    const text = [
      'namespace = "demo"', // 1
      '[[services]]', // 2
      'name = "a"', // 3
      'image = "i"', // 4
      'ports = { http = 80 }', // 5
      '[[services]]', // 6
      'name = "b"', // 7
      'image = "i"', // 8
      'ports = { http = 80 }', // 9
      '[[services.routes]]', // 10
      'http = { hostnames = ["x.localhost"] }', // 11
      '[[services.routes]]', // 12
      'tcp = { listen = 80 }', // 13
    ].join('\n');
    expect(issuesOf(text, 'deploy.toml').map((i) => [i.code, i.path, i.line])).toEqual([
      ['ROUTE_PORT_RESERVED', 'services[1].routes[1].tcp.listen', 13],
    ]);
  });
});

describe('syntax errors', () => {
  it('TOML syntax errors carry file, line and column', () => {
    const text = 'namespace = "demo"\n[[services]]\nname = "a"\nimage = "i\n';
    try {
      parseManifest(text, { filename: 'app/deploy.toml' });
      expect.unreachable();
    } catch (e) {
      expect(isPloyzError(e, 'MANIFEST_SYNTAX')).toBe(true);
      const issue = (e as { details: { issues: ManifestIssue[] } }).details.issues[0];
      expect(issue).toMatchObject({ code: 'SYNTAX', file: 'app/deploy.toml', line: 4 });
      expect(issue?.column).toBeGreaterThanOrEqual(1);
      expect((e as Error).message).toMatch(/^app\/deploy\.toml:4:\d+: invalid TOML: /);
    }
  });

  it('JSON syntax errors carry line and column', () => {
    const text = '{\n  "namespace": "demo",\n  "services": [ oops ]\n}';
    const issues = issuesOf(text, 'deploy.json');
    expect(issues).toEqual([
      {
        code: 'SYNTAX',
        path: '',
        message: 'invalid JSON: unexpected character',
        file: 'deploy.json',
        line: 3,
        column: 17,
      },
    ]);
  });

  it('a manifest over the size limit is MANIFEST_TOO_LARGE with its size and the limit', () => {
    // Multi-byte characters: under the limit in characters, over it in UTF-8 bytes.
    const text = `namespace = "demo"\n# ${'é'.repeat(MANIFEST_MAX_BYTES / 2)}\n`;
    const size = Buffer.byteLength(text);
    expect(text.length).toBeLessThan(MANIFEST_MAX_BYTES);
    try {
      parseManifest(text, { filename: 'deploy.toml' });
      expect.unreachable();
    } catch (e) {
      expect(isPloyzError(e, 'MANIFEST_TOO_LARGE')).toBe(true);
      expect((e as PloyzError).details).toEqual({ file: 'deploy.toml', size, limit: MANIFEST_MAX_BYTES });
      expect((e as Error).message).toContain(`${size} bytes; the limit is ${MANIFEST_MAX_BYTES} bytes`);
    }
    expect(() => assertManifestSize('x'.repeat(MANIFEST_MAX_BYTES))).not.toThrow();
  });

  it('an unknown file extension is FORMAT_UNKNOWN', () => {
    expect(issuesOf('namespace: demo', 'deploy.yaml').map((i) => i.code)).toEqual(['FORMAT_UNKNOWN']);
  });
});

describe('all problems at once', () => {
  it('reports every problem of a manifest in one error, in source order', () => {
    const m = baseInput();
    m.namespace = 'Demo';
    web(m).image = '';
    db(m).placement = { replicas: 3 };
    phase(m, 1).after = ['nope'];
    m.services.push({ name: 'db', image: 'x' });
    const issues = issuesOf(toToml(m), 'deploy.toml');
    expect(issues.map((i) => [i.code, i.path])).toEqual([
      ['NAME_NOT_DNS_LABEL', 'namespace'],
      ['IMAGE_INVALID', 'services[0].image'],
      ['VOLUME_SCOPE_CONFLICT', 'services[1].mounts[0].volume'],
      ['SERVICE_NAME_DUPLICATE', 'services[2].name'],
      ['PHASE_REF_UNKNOWN', 'phases[1].after[0]'],
    ]);
  });

  it('the error message names the first problem and counts the rest', () => {
    const m = baseInput();
    m.namespace = 'Demo';
    web(m).image = '';
    try {
      parseManifest(JSON.stringify(m), { filename: 'deploy.json' });
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).toMatch(
        /^the manifest does not validate: deploy\.json:1: namespace: .* \(and 1 more problem\)$/,
      );
    }
  });
});

describe('helpful messages', () => {
  it('unknown fields suggest the closest allowed field', () => {
    const text =
      'namespace = "demo"\n[[services]]\nname = "a"\nimgae = "i"\n[services.placement]\nreplica = 2\n';
    expect(issuesOf(text, 'deploy.toml').map((i) => [i.code, i.path, i.line, i.message])).toEqual([
      ['REQUIRED', 'services[0].image', 2, '`image` is required'],
      ['UNKNOWN_FIELD', 'services[0].imgae', 4, 'unknown field `imgae`; did you mean `image`?'],
      [
        'UNKNOWN_FIELD',
        'services[0].placement.replica',
        6,
        'unknown field `replica`; did you mean `replicas`?',
      ],
    ]);
  });

  it('unknown fields with no close match list what is allowed', () => {
    const text =
      '{"namespace": "demo", "services": [{"name": "a", "image": "i"}], "volumes": [{"name": "v", "zzz": 1}]}';
    expect(issuesOf(text, 'deploy.json').map((i) => i.message)).toEqual([
      'unknown field `zzz`; allowed here: name, quota, scope, owner, mode, keep_snapshots',
    ]);
  });

  it('a duplicate key in JSON is a syntax error (JSON.parse would keep the last silently)', () => {
    const text = '{"namespace": "demo",\n "services": [],\n "services": [{"name": "a", "image": "i"}]}';
    expect(issuesOf(text, 'deploy.json').map((i) => [i.code, i.line, i.column, i.message])).toEqual([
      ['SYNTAX', 3, 2, 'invalid JSON: duplicate key "services"'],
    ]);
  });
});

describe('positions', () => {
  it('TOML issues point at the indented key', () => {
    const text = 'namespace = "demo"\n[[services]]\n  name = "a"\n  image = "i"\n  restart = "sometimes"\n';
    expect(issuesOf(text, 'deploy.toml').map((i) => [i.code, i.line, i.column])).toEqual([
      ['VALUE_INVALID', 5, 3],
    ]);
  });

  it('JSON issues point at the offending value', () => {
    const text =
      '{\n  "namespace": "demo",\n  "services": [{ "name": "a", "image": "i", "restart": "sometimes" }]\n}';
    expect(issuesOf(text, 'deploy.json').map((i) => [i.code, i.line, i.column])).toEqual([
      ['VALUE_INVALID', 3, 56],
    ]);
  });
});
