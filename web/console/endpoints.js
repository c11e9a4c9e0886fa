// #/endpoints: every endpoint with its model, state, workers by phase and queue.
import {get, q} from './api.js';
import {badge, h, renderIfChanged, table} from './dom.js';
import {endpointState, phaseCounts} from './endpoint_state.js';
import {PHASE_LABELS} from './phases.js';

export function phaseChips(workers) {
  const counts = phaseCounts(workers);
  if (!counts.length) return h('span', {class: 'muted'}, 'none');
  return h('span', {class: 'chips'}, counts.map(([phase, n]) =>
    h('span', {class: ['chip', `phase-${phase}`], title: PHASE_LABELS[phase] || phase}, `${n} ${phase}`)));
}

export function endpointsPage(main) {
  const body = h('div', {id: 'endpoints'}, h('p', {class: 'muted'}, 'Loading…'));
  main.append(
    h('div', {class: 'page-head'},
      h('h1', null, 'Endpoints'),
      h('a', {class: 'button primary', href: '#/new'}, 'New endpoint')),
    body);

  async function refresh() {
    const {endpoints} = await get('/v1/endpoints');
    // The list has the settings; workers and the queue are in each endpoint's detail.
    const details = await Promise.all(endpoints.map((e) =>
      get(`/v1/endpoints/${q(e.id)}`).catch(() => e)));
    const rows = details.map((d) => ({
      id: d.id, name: d.name, repo: d.repo, revision: d.revision, workers: d.workers || {},
      queue: d.queue || {}, state: endpointState(d),
    }));
    renderIfChanged(body, JSON.stringify(rows), () => {
      if (!rows.length) {
        return h('p', {class: 'empty'}, 'No endpoints yet. ',
          h('a', {href: '#/new'}, 'Create one'), ' from a Hugging Face model link.');
      }
      return table(['Name', 'Model', 'State', 'Workers', 'Queue'], rows.map((r) => ({
        props: {'data-endpoint-id': r.id},
        cells: [
          h('a', {href: `#/endpoints/${r.id}`, class: 'endpoint-name'}, r.name),
          h('span', {class: 'mono'}, `${r.repo}@${r.revision}`),
          badge(r.state.label, r.state.kind),
          phaseChips(r.workers),
          `${r.queue.inQueue ?? 0} queued · ${r.queue.inProgress ?? 0} running`,
        ],
      })), {class: 'endpoints'});
    });
  }
  return {refresh};
}
