/**
 * Images without a registry: a machine that lacks a workload image gets it from another machine
 * over the mesh, as the bytes of `docker save` streamed into its own `docker load`.
 *
 * The receiving machine answers `image_has` (is the image there, by id), then one transfer:
 * `image_receive_open` (it starts a `docker load`), `image_receive_chunk` × N (sequence-numbered
 * slices of the tar, base64; each is acknowledged once written into the load, which is the flow
 * control: the sender keeps at most `window` unacknowledged), `image_receive_close` (byte count
 * and sha256 checked, the load finished, the resulting image id compared with the sender's, the
 * name tagged) — or `image_receive_abort`. A NATS message carries at most 1 MiB, so a chunk is
 * IMAGE_CHUNK_BYTES before base64. Every body names the machine it is for.
 *
 * The same `image` event reports progress in a deploy (DeployEvent) and in `ployzctl image push`.
 *
 * Images from a registry (an image that names its registry host, @ployz/types image-ref.ts): the
 * machine that will run an instance pulls it itself with `image_pull` — a long poll that starts
 * the pull (or joins the one under way) and answers within `wait_ms` with its progress, so the
 * coordinator asks again until it is `present` or `pulled`; a pull that fails is
 * IMAGE_PULL_FAILED naming the image and the machine. `image_pull_check` asks the registry, from
 * that machine, whether it would serve the image (the preview's question); nothing is pulled. The
 * credentials are the installation's (sealed in NATS KV), read and unsealed by the pulling
 * machine: they never travel in an RPC body.
 */
import { MachineId } from '@ployz/types';
import { z } from 'zod';
import { defineCommands } from './rpc.ts';

export const IMAGE_RPC = {
  has: 'image_has',
  open: 'image_receive_open',
  chunk: 'image_receive_chunk',
  close: 'image_receive_close',
  abort: 'image_receive_abort',
  pull: 'image_pull',
  pullCheck: 'image_pull_check',
} as const;

/** Bytes of the tar in one chunk: 512 KiB is 699 052 base64 characters, well inside NATS's 1 MiB. */
export const IMAGE_CHUNK_BYTES = 512 * 1024;
/** Chunks in flight (sent, not yet acknowledged) at most: 4 MiB of the tar. */
export const IMAGE_WINDOW = 8;

/** `name[:tag]` or `name@sha256:…` as Docker writes them (no spaces, no shell characters). */
export const ImageRef = z
  .string()
  .min(1)
  .max(512)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$/, 'an image reference: name[:tag] or name@digest');
export const ImageId = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'an image id: sha256:<64 hex>');
export const TransferId = z.string().regex(/^[0-9a-f]{32}$/);
const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const Bytes = z.number().int().nonnegative();
/**
 * One chunk's bytes in base64: at most ceil(IMAGE_CHUNK_BYTES / 3) × 4 characters. Its alphabet is
 * not checked here (a regex over 700 kB was a fifth of a transfer's CPU): a character outside it
 * changes the decoded bytes, and the sha256 at close refuses the transfer.
 */
const ChunkData = z.string().max(Math.ceil(IMAGE_CHUNK_BYTES / 3) * 4);

export const ImageHasBody = z.strictObject({
  machine: MachineId,
  image: ImageRef,
  /** The sender's id of the image; null: only whether the name resolves here. */
  image_id: ImageId.nullable(),
});
export type ImageHasBody = z.infer<typeof ImageHasBody>;

export const ImageHasResult = z.strictObject({
  /** The machine holds `image_id` (or, without one, the name resolves). */
  present: z.boolean(),
  /** What the name resolves to on the machine now, or null. */
  local_id: ImageId.nullable(),
});
export type ImageHasResult = z.infer<typeof ImageHasResult>;

export const ImageOpenBody = z.strictObject({
  machine: MachineId,
  transfer: TransferId,
  image: ImageRef,
  image_id: ImageId,
  /** The image's size as the sender's engine reports it (the tar is about as large), for progress. */
  size_bytes: Bytes.nullable(),
});
export type ImageOpenBody = z.infer<typeof ImageOpenBody>;

export const ImageOpenResult = z.strictObject({
  /** The machine already holds the image (now under its name too): send nothing. */
  present: z.boolean(),
  /** Chunks the receiver accepts ahead of the next one it writes. */
  window: z.number().int().min(1).max(64),
});
export type ImageOpenResult = z.infer<typeof ImageOpenResult>;

export const ImageChunkBody = z.strictObject({
  machine: MachineId,
  transfer: TransferId,
  /** 0, 1, 2…: the receiver writes chunks in this order whatever order they arrive in. */
  seq: z.number().int().nonnegative(),
  data: ChunkData,
});
export type ImageChunkBody = z.infer<typeof ImageChunkBody>;

export const ImageChunkResult = z.strictObject({
  seq: z.number().int().nonnegative(),
  /** Bytes written into the load so far (every chunk before the next expected one). */
  received_bytes: Bytes,
});
export type ImageChunkResult = z.infer<typeof ImageChunkResult>;

export const ImageCloseBody = z.strictObject({
  machine: MachineId,
  transfer: TransferId,
  chunks: z.number().int().nonnegative(),
  bytes: Bytes,
  sha256: Sha256,
});
export type ImageCloseBody = z.infer<typeof ImageCloseBody>;

export const ImageCloseResult = z.strictObject({
  image_id: ImageId,
  bytes: Bytes,
  /** From open to the image under its name. */
  seconds: z.number().nonnegative(),
});
export type ImageCloseResult = z.infer<typeof ImageCloseResult>;

export const ImageAbortBody = z.strictObject({
  machine: MachineId,
  transfer: TransferId,
  reason: z.string().max(1000),
});
export type ImageAbortBody = z.infer<typeof ImageAbortBody>;

export const ImagePullBody = z.strictObject({
  machine: MachineId,
  image: ImageRef,
  /** Pull even when the machine holds the image (`pull_policy = "always"`). */
  always: z.boolean(),
  /** Answer after at most this long with the progress so far (the caller asks again). */
  wait_ms: z.number().int().min(0).max(10_000),
  /**
   * The asker's id for one pull (the same on each of its polls): a pull that finished before
   * this id first asked is not its answer — a new one starts (a new deploy pulls anew).
   */
  attempt: z.string().regex(/^[0-9a-f]{8,32}$/),
});
export type ImagePullBody = z.infer<typeof ImagePullBody>;

export const ImagePullResult = z.strictObject({
  /** present: held, nothing pulled; pulling: under way (ask again); pulled: done now. */
  state: z.enum(['present', 'pulling', 'pulled']),
  /** What the name resolves to on the machine once present or pulled. */
  image_id: ImageId.nullable(),
  /** Layer bytes downloaded so far, and the sum of the layer sizes the registry announced. */
  bytes: Bytes,
  total_bytes: Bytes.nullable(),
  layers: z.number().int().nonnegative(),
  layers_done: z.number().int().nonnegative(),
  /** Since the pull started. */
  seconds: z.number().nonnegative(),
});
export type ImagePullResult = z.infer<typeof ImagePullResult>;

export const ImagePullCheckBody = z.strictObject({ machine: MachineId, image: ImageRef });
export type ImagePullCheckBody = z.infer<typeof ImagePullCheckBody>;

/** Why a machine cannot pull an image (IMAGE_PULL_FAILED's `details.reason` too). */
export const PullFailure = z.enum(['unreachable', 'unauthorized', 'not_found', 'failed']);
export type PullFailure = z.infer<typeof PullFailure>;

export const ImagePullCheckResult = z.strictObject({
  /** The registry answers for the image with a manifest, with this machine's credentials. */
  available: z.boolean(),
  /** The manifest's digest when available. */
  digest: z.string().nullable(),
  reason: PullFailure.nullable(),
  detail: z.string(),
});
export type ImagePullCheckResult = z.infer<typeof ImagePullCheckResult>;

export const imageCommands = defineCommands({
  [IMAGE_RPC.has]: {
    request: ImageHasBody,
    response: ImageHasResult,
    description: 'whether this machine holds an image (by id)',
  },
  [IMAGE_RPC.open]: {
    request: ImageOpenBody,
    response: ImageOpenResult,
    description: 'start receiving an image into docker load (present already: nothing to send)',
  },
  [IMAGE_RPC.chunk]: {
    request: ImageChunkBody,
    response: ImageChunkResult,
    description: 'one slice of the image tar; answered once written into the load',
  },
  [IMAGE_RPC.close]: {
    request: ImageCloseBody,
    response: ImageCloseResult,
    description: 'end of the tar: finish the load, check bytes, sha256 and image id, tag the name',
  },
  [IMAGE_RPC.abort]: {
    request: ImageAbortBody,
    response: z.strictObject({ aborted: z.boolean() }),
    description: 'give up a transfer: the load is cancelled and nothing is registered',
  },
  [IMAGE_RPC.pull]: {
    request: ImagePullBody,
    response: ImagePullResult,
    description: 'pull an image from its registry (or join the pull under way); answers within wait_ms',
  },
  [IMAGE_RPC.pullCheck]: {
    request: ImagePullCheckBody,
    response: ImagePullCheckResult,
    description: "whether the image's registry serves it to this machine (its manifest); nothing pulled",
  },
});
export type ImageCommands = typeof imageCommands;

/** Progress of one image to one machine, in a deploy and in `ployzctl image push`. */
export const ImageEvent = z.object({
  type: z.literal('image'),
  machine: z.string(),
  image: z.string(),
  image_id: z.string().nullable(),
  /**
   * present: the machine holds it, nothing sent; sending: the transfer starts; progress: bytes so
   * far; loaded: the machine holds it now; failed: the transfer stopped (nothing registered);
   * unavailable: the machine did not answer; pulling: the machine pulls it from its registry;
   * pulled: the pull is done (progress events in between carry the layer bytes).
   */
  action: z.enum(['present', 'sending', 'progress', 'loaded', 'failed', 'unavailable', 'pulling', 'pulled']),
  bytes: Bytes,
  total_bytes: Bytes.nullable(),
  detail: z.string().optional(),
});
export type ImageEvent = z.infer<typeof ImageEvent>;

/** What a deploy does about one image on one machine that gets a candidate (the plan's `images`). */
export const ImagePlan = z.object({
  image: z.string(),
  machine: z.string(),
  /** The coordinating machine's id of the image; null when it does not hold it. */
  image_id: z.string().nullable(),
  /**
   * present: the machine holds that id; send: it lacks it and gets it from the coordinator at
   * the probe step; missing: neither holds it (the start fails IMAGE_MISSING); unknown: the
   * machine did not answer. For an image from a registry: pull: the machine pulls it at the probe
   * step (`image_id` is then the machine's own id when it holds one); unavailable: the preview
   * asked the registry from that machine and it would not serve the image (`detail` says why) —
   * the deploy would fail IMAGE_PULL_FAILED before writing anything.
   */
  action: z.enum(['present', 'send', 'missing', 'unknown', 'pull', 'unavailable']),
  /** About what a send carries (the image's size on the coordinator). */
  size_bytes: Bytes.nullable(),
  detail: z.string(),
});
export type ImagePlan = z.infer<typeof ImagePlan>;

// ---------------------------------------------------------------- local API: image push

export const ImagePushRequest = z.object({
  image: ImageRef,
  /** One machine; null: every eligible machine that lacks it. */
  machine: MachineId.nullable().default(null),
});
export type ImagePushRequest = z.infer<typeof ImagePushRequest>;

export const ImagePushOutcome = z.object({
  machine: z.string(),
  action: z.enum(['present', 'sent', 'failed', 'unavailable']),
  bytes: Bytes,
  seconds: z.number().nonnegative(),
  detail: z.string(),
});
export type ImagePushOutcome = z.infer<typeof ImagePushOutcome>;

export const ImagePushResult = z.looseObject({
  image: z.string(),
  image_id: z.string(),
  /** The machine the image was sent from (the one whose ployzd was asked). */
  from: z.string(),
  machines: z.array(ImagePushOutcome),
});
export type ImagePushResult = z.infer<typeof ImagePushResult>;

/** `214.0 MB`: decimal units, as Docker prints sizes (image events, `image push`, the preview). */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
