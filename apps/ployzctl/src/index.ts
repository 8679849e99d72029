/** ployzctl's library surface: the local API client (commands live in src/commands). */
export { DaemonClient, DEFAULT_SOCKET } from './daemon-client.ts';
export { DaemonCommand } from './daemon-command.ts';
export type {
  ComponentStatusView,
  MachineIdentityView,
  MachineRecordView,
  StatusView,
} from './daemon-types.ts';
