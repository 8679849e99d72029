import { connect } from '@nats-io/transport-node';
import { startNats } from '@ployz/testkit';
import { isPloyzError } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../src/index.ts';
import { commit, SCOPE } from './records.fixture.ts';

let nats: Awaited<ReturnType<typeof startNats>>;
let store: Store;

beforeAll(async () => {
  nats = await startNats();
  store = await Store.fromConnection(await connect({ servers: nats.url }), SCOPE);
});
afterAll(async () => {
  await store?.close();
  await nats?.stop();
});

describe('deploy commits', () => {
  it('appends once; the identical commit again is a no-op', async () => {
    const first = await store.commits.append(commit('dep-1.final'));
    expect(first.duplicate).toBe(false);
    const again = await store.commits.append(commit('dep-1.final'));
    expect(again).toMatchObject({ duplicate: true, seq: first.seq });
    expect(await store.commits.lastSeq()).toBe(first.seq);
    expect((await store.commits.get('shop', 'dep-1.final'))?.commit).toEqual(first.commit);
  });

  it('a different payload under the same id is COMMIT_CONFLICT, inside the dedup window', async () => {
    await store.commits.append(commit('dep-2.final', { deploy_id: 'dep-2' }));
    const err = await store.commits
      .append(commit('dep-2.final', { deploy_id: 'dep-2', manifest_hash: 'other' }))
      .catch((e: unknown) => e);
    expect(isPloyzError(err, 'COMMIT_CONFLICT')).toBe(true);
    expect((await store.commits.get('shop', 'dep-2.final'))?.commit.manifest_hash).toBe('h1');
  });

  it('a different payload under the same id is COMMIT_CONFLICT after the dedup window too', async () => {
    // Outside the window only the per-subject check remains: publish with a fresh msg id by
    // hand so the server's dedup cannot help, exactly as after the window has passed.
    await store.commits.append(commit('dep-3.final', { deploy_id: 'dep-3' }));
    const subject = store.commits.subject('shop', 'dep-3.final');
    const raw = await store.js
      .publish(subject, new TextEncoder().encode('{}'), {
        msgID: 'fresh',
        expect: { lastSubjectSequence: 0 },
      })
      .catch((e: unknown) => e);
    expect(raw).toBeInstanceOf(Error);
    const err = await store.commits
      .append(commit('dep-3.final', { deploy_id: 'dep-3', actor: 'someone-else' }))
      .catch((e: unknown) => e);
    expect(isPloyzError(err, 'COMMIT_CONFLICT')).toBe(true);
  });

  it('the same id in another namespace inside the window is a conflict, not a silent drop', async () => {
    const err = await store.commits
      .append(commit('dep-1.final', { namespace: 'blog' }))
      .catch((e: unknown) => e);
    expect(isPloyzError(err, 'COMMIT_CONFLICT')).toBe(true);
  });

  it('lists one namespace without the others, in order, and after a sequence', async () => {
    const a = await store.commits.append(
      commit('dep-10.p1', { namespace: 'blog', deploy_id: 'dep-10', kind: 'checkpoint', phase: 'p1' }),
    );
    await store.commits.append(commit('dep-20.final', { namespace: 'other', deploy_id: 'dep-20' }));
    const b = await store.commits.append(commit('dep-10.final', { namespace: 'blog', deploy_id: 'dep-10' }));
    const blog = await store.commits.list('blog');
    expect(blog.map((c) => c.commit.id)).toEqual(['dep-10.p1', 'dep-10.final']);
    expect(blog.map((c) => c.seq)).toEqual([a.seq, b.seq]);
    expect((await store.commits.list('blog', { afterSeq: a.seq })).map((c) => c.commit.id)).toEqual([
      'dep-10.final',
    ]);
    expect(await store.commits.list('empty-ns')).toEqual([]);
    expect(await store.commits.list('blog', { afterSeq: b.seq })).toEqual([]);
    expect((await store.commits.list('shop')).map((c) => c.commit.id)).toEqual([
      'dep-1.final',
      'dep-2.final',
      'dep-3.final',
    ]);
  });

  it('commits cannot be deleted or purged', async () => {
    const err = await store.jsm.streams.deleteMessage(store.names.deployCommits, 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(await store.commits.get('shop', 'dep-1.final')).not.toBeNull();
  });
});
