// Live: a tail of task events (created, started, succeeded, failed, dead)
// for one queue or all, read from GET /v1/events with fetch() and a stream
// reader so the token stays in the Authorization header.
import { h, clear, append, link, table } from './dom.js';
import * as api from './api.js';
import { errorBox, badge } from './ui.js';

const KEEP = 500;

export async function live(main, _arg, params) {
  const queue = h('input', { type: 'text', name: 'queue', value: params.get('queue') || '', placeholder: 'all queues', 'data-testid': 'live-queue' });
  const status = h('span', { class: 'muted', 'data-testid': 'live-status' });
  const rows = h('tbody', {});
  const err = h('div', {});
  const counts = {};
  const countBox = h('span', { class: 'muted' });
  let ctl = null;
  let paused = false;
  const pauseBtn = h('button', { type: 'button', text: 'Pause' });

  function add(type, ev) {
    if (paused) return;
    counts[type] = (counts[type] || 0) + 1;
    countBox.textContent = Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(' · ');
    const tr = h('tr', { 'data-event': type },
      h('td', { text: ev.time ? new Date(ev.time).toLocaleTimeString() : '' }), h('td', {}, badge(type)),
      h('td', {}, ev.queue ? link(ev.queue, 'queue', ev.queue) : ''), h('td', {}, ev.id ? link(ev.id, 'task', ev.id) : ''),
      h('td', { class: 'num', text: ev.attempt || '' }), h('td', { class: 'num', text: ev.status || '' }));
    rows.insertBefore(tr, rows.firstChild);
    while (rows.childNodes.length > KEEP) rows.removeChild(rows.lastChild);
  }

  async function connect() {
    if (ctl) ctl.abort();
    ctl = new AbortController();
    const mine = ctl;
    clear(err);
    clear(rows);
    status.textContent = 'connecting…';
    let backoff = 1000;
    while (!mine.signal.aborted) {
      try {
        const q = queue.value.trim();
        await api.stream('/events' + api.query({ queue: q }), (type, data) => add(type, data || {}), mine.signal,
          () => { status.textContent = 'connected' + (q ? ` to queue “${q}”` : ' to all queues'); });
        backoff = 1000;
        status.textContent = 'stream ended; reconnecting…';
      } catch (e) {
        if (mine.signal.aborted) return;
        if (e.status && e.status < 500) { // refused: retrying will not help
          status.textContent = 'stopped';
          append(err, errorBox(e, 'GET /v1/events'));
          return;
        }
        status.textContent = 'disconnected; retrying…';
      }
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 15000);
    }
  }
  pauseBtn.addEventListener('click', () => { paused = !paused; pauseBtn.textContent = paused ? 'Resume' : 'Pause'; });
  const form = h('form', { class: 'toolbar' }, h('label', { class: 'field' }, h('span', { text: 'Queue' }), queue), h('button', { type: 'submit', text: 'Follow' }), pauseBtn, status, countBox);
  form.addEventListener('submit', (e) => { e.preventDefault(); connect(); });
  append(main, h('h1', { text: 'Live' }), form, err, table(['Time', 'Event', 'Queue', 'Task', 'Attempt', 'Status'], [], { 'data-testid': 'live' }));
  main.querySelector('[data-testid=live] tbody').replaceWith(rows);
  connect();
  return () => { if (ctl) ctl.abort(); };
}
