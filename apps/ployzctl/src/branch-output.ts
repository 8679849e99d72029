/**
 * Human rendering of `ployzctl branch preview|apply|promote`: the lineage (lineage-output.ts), how
 * the routes change, then the deploy plan. Pure: values in, lines out (tested in
 * branch-output.test.ts).
 */
import type { BranchPlanView } from '@ployz/protocol';
import { planLines } from './deploy-output.ts';
import { lineageLines } from './lineage-output.ts';

/** A branch's or a promote's preview: its lineage, how its routes change, then the deploy plan. */
export function branchPlanLines(view: BranchPlanView): string[] {
  const out: string[] = [];
  if (view.plan.lineage !== null) out.push(...lineageLines(view.plan.lineage));
  if (view.routes.length > 0) {
    out.push('Routes:');
    for (const r of view.routes) {
      const to = r.to === null ? `(${r.detail})` : `→ ${r.to} (${r.detail})`;
      out.push(`  ${r.service.padEnd(20)} ${r.kind} ${r.from} ${to}`);
    }
  }
  return [...out, ...planLines(view.plan)];
}
