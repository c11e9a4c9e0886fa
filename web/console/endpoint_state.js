// What an endpoint is doing, from its detail document (GET /v1/endpoints/{id}): a label and a
// kind for the badge, and its workers by phase in display order.
import {ENDED_PHASES, LIVE_PHASES, PHASE, PHASE_LABELS} from './phases.js';

export function endpointState(detail) {
  const w = (detail && detail.workers) || {};
  const n = (p) => Number(w[p] || 0);
  const queued = detail && detail.queue ? Number(detail.queue.inQueue || 0) : 0;
  if (n(PHASE.RUNNING)) return {label: 'running', kind: 'ok'};
  // Its workers end before they are ready: the controller backs off (placementBackoff).
  if (detail && detail.placementBackoff && !n(PHASE.IDLE)) return {label: 'failing to start', kind: 'bad'};
  if (n(PHASE.INITIALIZING)) return {label: PHASE_LABELS[PHASE.INITIALIZING], kind: 'busy'};
  if (n(PHASE.STARTING)) return {label: 'starting', kind: 'busy'};
  if (n(PHASE.IDLE)) return {label: 'ready', kind: 'ok'};
  if (queued) return {label: 'cold start pending', kind: 'busy'};
  return {label: 'scaled to zero', kind: 'muted'};
}

// [[phase, count], ...] of the phases with workers, live ones first.
export function phaseCounts(workers) {
  const w = workers || {};
  const known = [...LIVE_PHASES, ...ENDED_PHASES];
  const others = Object.keys(w).filter((p) => !known.includes(p)).sort();
  return [...known, ...others].filter((p) => Number(w[p] || 0) > 0).map((p) => [p, Number(w[p])]);
}
