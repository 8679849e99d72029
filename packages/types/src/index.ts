export * from './errors.ts';
export * from './exit-status.ts';
export * from './image-ref.ts';
export * from './manifest-issues.ts';
export { MANIFEST_DEFAULTS } from './manifest-normalise.ts';
export {
  assertManifestSize,
  MANIFEST_MAX_BYTES,
  type ManifestErrorDetails,
  type ManifestFormat,
  manifestFormatOf,
  type ParseManifestOptions,
  parseManifest,
  validateManifest,
} from './manifest-parse.ts';
export { RESERVED_LISTEN_PORTS } from './manifest-rules.ts';
export * from './manifest-spec.ts';
export { parseDuration, parseSize } from './quantities.ts';
export * from './records.ts';
