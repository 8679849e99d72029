/**
 * ployzctl's library surface: the base of its daemon commands (commands live in src/commands).
 * The local API client is @ployz/protocol's `LocalApiClient`.
 */
export { DaemonCommand } from './daemon-command.ts';
