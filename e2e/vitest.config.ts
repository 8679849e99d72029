import { project } from '../vitest.shared.ts';

export default project('e2e', { timeoutMs: 300_000, serial: true });
