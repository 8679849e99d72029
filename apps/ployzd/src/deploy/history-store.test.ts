/** Deploy history on the real store (nats-server): paging newest first, `before`, and show by commit id. */
import { deployId } from '@ployz/identity';
import { openStore, type Store } from '@ployz/store';
import { fixtures, startNats } from '@ployz/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeDeployPort } from './adapters/store-port.ts';
import type { EngineOptions } from './context.ts';
import { listDeploys, showDeploy } from './history.ts';

let nats: Awaited<ReturnType<typeof startNats>>;
let store: Store;
let opts: EngineOptions;

beforeAll(async () => {
  nats = await startNats();
  store = await openStore({ servers: nats.url, installation: 'local', authority: 'auth-history' });
  opts = { store: storeDeployPort(store) } as EngineOptions;
});
afterAll(async () => {
  await store?.close();
  await nats?.stop();
});

describe('deploy history on the real store', () => {
  it('pages newest first with before, and show reads the commits its status lists', async () => {
    const base = Date.parse('2026-01-01T00:00:00.000Z');
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) {
      const at = new Date(base + i * 1000).toISOString();
      const id = deployId(base + i * 1000);
      ids.push(id);
      const commits = i === 3 ? [`${id}.final`] : [];
      await store.deployStatus.create({
        ...fixtures.deployStatus(id),
        namespace: i % 5 === 0 ? 'blog' : 'shop',
        state: 'committed',
        commits,
        started_at: at,
        updated_at: at,
      });
      if (i === 3) await store.commits.append(fixtures.commit(`${id}.final`, { deploy_id: id }));
    }
    const shop = ids.filter((_, i) => i % 5 !== 0).reverse();
    const first = await listDeploys(opts, { namespace: 'shop', limit: 8 });
    expect(first.map((s) => s.deploy_id)).toEqual(shop.slice(0, 8));
    const next = await listDeploys(opts, { namespace: 'shop', limit: 8, before: first.at(-1)?.deploy_id });
    expect(next.map((s) => s.deploy_id)).toEqual(shop.slice(8, 16));
    const all = await listDeploys(opts, { limit: 100 });
    expect(all.map((s) => s.deploy_id)).toEqual([...ids].reverse());

    const shown = await showDeploy(opts, ids[3] as string);
    expect(shown.commits.map((c) => c.id)).toEqual([`${ids[3]}.final`]);
  });
});
