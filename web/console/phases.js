// The worker phases, as the controller's API names them (docs/controller.md, "Workers, phases
// and the ledger"): the console's one list of them. Every module that names a phase takes it
// from here (style.css has a `phase-<name>` class for each).
export const PHASE = Object.freeze({
  INITIALIZING: 'initializing',  // placed; the host downloads the model (not billed)
  STARTING: 'starting',          // process started, no job taken yet
  IDLE: 'idle',
  RUNNING: 'running',            // holds jobs
  STOPPING: 'stopping',
  STOPPED: 'stopped',
  FAILED: 'failed',
});

// In display order.
export const LIVE_PHASES = [PHASE.INITIALIZING, PHASE.STARTING, PHASE.IDLE, PHASE.RUNNING,
  PHASE.STOPPING];
export const ENDED_PHASES = [PHASE.STOPPED, PHASE.FAILED];

// What the page shows for each phase.
export const PHASE_LABELS = Object.freeze({
  [PHASE.INITIALIZING]: 'downloading model',
  [PHASE.STARTING]: 'starting',
  [PHASE.IDLE]: 'idle',
  [PHASE.RUNNING]: 'running',
  [PHASE.STOPPING]: 'stopping',
  [PHASE.STOPPED]: 'stopped',
  [PHASE.FAILED]: 'failed',
});

export function isLivePhase(phase) {
  return LIVE_PHASES.includes(phase);
}

export function isEndedPhase(phase) {
  return ENDED_PHASES.includes(phase);
}
