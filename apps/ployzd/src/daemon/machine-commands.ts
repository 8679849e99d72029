/**
 * The machine commands every ployzd answers (`ping`, `status`, `capacity`): the registry lives in
 * @ployz/protocol so callers and this daemon infer the same types. Plugins add theirs (the deploy
 * engine: deploy_start / deploy_ready / deploy_stop) through `DaemonContext.registerCommands`.
 */
export { CapacityView, type MachineCommands, machineCommands } from '@ployz/protocol';
