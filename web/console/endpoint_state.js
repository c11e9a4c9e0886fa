// What an endpoint is doing, from its detail document (GET /v1/endpoints/{id}): a label and a
// kind for the badge, and the worker phases in display order.
export const LIVE_PHASES = ['initializing', 'starting', 'idle', 'running', 'stopping'];
export const ENDED_PHASES = ['stopped', 'failed'];

export const PHASE_LABELS = {
  initializing: 'downloading model',
  starting: 'starting',
  idle: 'idle',
  running: 'running',
  stopping: 'stopping',
  stopped: 'stopped',
  failed: 'failed',
};

export function endpointState(detail) {
  const w = (detail && detail.workers) || {};
  const n = (p) => Number(w[p] || 0);
  const queued = detail && detail.queue ? Number(detail.queue.inQueue || 0) : 0;
  if (n('running')) return {label: 'running', kind: 'ok'};
  if (n('initializing')) return {label: 'downloading model', kind: 'busy'};
  if (n('starting')) return {label: 'starting', kind: 'busy'};
  if (n('idle')) return {label: 'ready', kind: 'ok'};
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
