/**
 * Human lines for the route part of `ployzctl status`: conflicts between committed releases (the
 * gateway serves the winner; the loser's route is not served). Pure (tested in status-output.test.ts).
 */
import type { StatusView } from '@ployz/protocol';

export function routeLines(routes: StatusView['routes']): string[] {
  if (routes === null || routes === undefined) return [];
  if (routes.error !== null) return [`routes: conflicts unknown (${routes.error})`];
  if (routes.conflicts.length === 0) return ['routes: no conflicts'];
  return [
    `routes: ${routes.conflicts.length} conflict(s); the gateway serves the first claimant only`,
    ...routes.conflicts.map((c) => `  ${c.id}: served by ${c.winner}, not by ${c.loser}`),
  ];
}
