/** A valid two-service manifest input that the tests mutate into invalid ones. */
export function baseInput() {
  return {
    namespace: 'demo',
    services: [
      {
        name: 'web',
        image: 'ployz/hello:latest',
        env: { PORT: '8080' },
        ports: { http: 8080 } as Record<string, unknown>,
        routes: [{ http: { hostnames: ['web.localhost'], path: '/' } }] as Record<string, unknown>[],
        readiness: { http: { path: '/healthz' } } as Record<string, unknown>,
      } as Record<string, unknown>,
      {
        name: 'db',
        image: 'postgres:16',
        ports: { pg: 5432 } as Record<string, unknown>,
        mounts: [{ volume: 'pgdata', target: '/var/lib/postgresql/data' }] as Record<string, unknown>[],
      } as Record<string, unknown>,
    ],
    volumes: [{ name: 'pgdata', quota: '10GiB' }] as Record<string, unknown>[],
    phases: [
      { id: 'data', services: ['db'], volumes: ['pgdata'], commit_policy: 'checkpoint' },
      { id: 'app', services: ['web'], after: ['data'] },
    ] as Record<string, unknown>[],
  } as Record<string, unknown> & {
    services: Record<string, unknown>[];
    volumes: Record<string, unknown>[];
    phases: Record<string, unknown>[];
  };
}

export type BaseInput = ReturnType<typeof baseInput>;
