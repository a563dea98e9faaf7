// Overview: tasks finished per minute over the last hour, the success
// ratio, the backlog by state, the scheduler leader and the live
// dispatchers, from GET /v1/overview; refreshed every 5 seconds.
import { h, s, clear, append, ago, table } from './dom.js';
import * as api from './api.js';
import { errorBox } from './ui.js';

const REFRESH_MS = 5000;

export async function overview(main) {
  const body = h('div', { 'data-testid': 'overview' });
  const stamp = h('span', { class: 'muted' });
  append(main, h('h1', {}, 'Overview ', stamp), body);
  const ctl = new AbortController();
  let timer = null;
  async function load() {
    try {
      const o = await api.get('/overview', ctl.signal);
      clear(body);
      draw(body, o);
      stamp.textContent = 'updated ' + new Date().toLocaleTimeString();
    } catch (e) {
      if (e.name === 'AbortError') return;
      clear(body);
      append(body, errorBox(e, 'GET /v1/overview'));
    }
    timer = setTimeout(load, REFRESH_MS);
  }
  await load();
  return () => { ctl.abort(); clearTimeout(timer); };
}

function sum(minutes, k) { return minutes.reduce((n, m) => n + (m[k] || 0), 0); }

function draw(body, o) {
  const minutes = o.minutes || [];
  const succ = sum(minutes, 'succeeded');
  const failed = sum(minutes, 'failed');
  const deadN = sum(minutes, 'dead');
  const finished = succ + deadN;
  const ratio = finished ? (100 * succ / finished).toFixed(1) + ' %' : '–';
  const b = o.backlog || {};
  append(body,
    h('section', { class: 'cards' },
      card('Succeeded (1 h)', succ, 'succeeded'), card('Failed attempts (1 h)', failed, 'failed'),
      card('Dead (1 h)', deadN, 'dead'), card('Success ratio', ratio, 'ratio', 'succeeded / (succeeded + dead) over the last hour'),
      card('Queues', o.queues ?? '–', 'queues')),
    h('section', {}, h('h2', { text: 'Tasks finished per minute, last hour' }), chart(minutes),
      h('p', { class: 'legend' }, h('span', { class: 'key succeeded', text: 'succeeded' }), ' ', h('span', { class: 'key failed', text: 'failed attempts' }), ' ', h('span', { class: 'key dead', text: 'dead' }))),
    h('section', {}, h('h2', { text: 'Backlog' }),
      table(['scheduled', 'queued', 'active', 'retrying', 'dead'],
        [h('tr', { 'data-testid': 'backlog' }, ['scheduled', 'queued', 'active', 'retrying', 'dead'].map((k) => h('td', { class: 'num', text: b[k] ?? '–' })))]),
      h('p', {}, h('a', { href: '#/dead', text: 'Dead letters →' }))),
    h('section', {}, h('h2', { text: 'Scheduler and dispatchers' }),
      h('p', {}, 'Scheduler leader: ', o.scheduler && o.scheduler.leader ? h('code', { text: o.scheduler.leader }) : h('span', { class: 'muted', text: 'none elected' })),
      table(['Dispatcher', 'Last seen'], (o.dispatchers || []).map((d) => h('tr', {}, h('td', {}, h('code', { text: d.id })), h('td', { title: d.last_seen, text: ago(d.last_seen) })))),
      (o.dispatchers || []).length ? null : h('p', { class: 'muted', text: 'No dispatcher has reported.' })));
}

function card(label, value, key, title) {
  return h('div', { class: 'card', 'data-testid': 'card-' + key, title }, h('div', { class: 'value', text: value }), h('div', { class: 'label', text: label }));
}

// chart draws stacked bars, one per minute, as SVG (no inline styles).
function chart(minutes) {
  const W = 600, H = 120, n = Math.max(minutes.length, 1), bw = W / n;
  const max = Math.max(1, ...minutes.map((m) => (m.succeeded || 0) + (m.failed || 0) + (m.dead || 0)));
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': 'tasks per minute' });
  minutes.forEach((m, i) => {
    let y = H;
    for (const k of ['succeeded', 'failed', 'dead']) {
      const v = m[k] || 0;
      if (!v) continue;
      const hgt = (v / max) * (H - 4);
      y -= hgt;
      svg.appendChild(s('rect', { x: (i * bw + 0.5).toFixed(2), y: y.toFixed(2), width: Math.max(bw - 1, 0.5).toFixed(2), height: hgt.toFixed(2), class: k },
        s('title', { text: `${new Date(m.t).toLocaleTimeString()}: ${k} ${v}` })));
    }
  });
  svg.appendChild(s('text', { x: 2, y: 10, class: 'axis', text: 'max ' + max + '/min' }));
  return svg;
}
