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

// inWords says how far t is from now ("in 8 s", "3 min ago").
function inWords(t) {
  const ms = new Date(t).getTime() - Date.now();
  if (!isFinite(ms)) return '';
  return ms >= 0 ? 'in ' + ago(new Date(Date.now() - ms).toISOString()).replace(' ago', '') : ago(t);
}

function draw(body, o) {
  const minutes = o.minutes || [];
  // succeeded and failed count calls (a variable task makes many), dead
  // counts tasks whose last call failed: together, every finished call.
  const succ = sum(minutes, 'succeeded');
  const failed = sum(minutes, 'failed');
  const deadN = sum(minutes, 'dead');
  const calls = succ + failed + deadN;
  const ratio = calls ? (100 * succ / calls).toFixed(1) + ' %' : '–';
  const b = o.backlog || {};
  const sched = o.scheduler || {};
  append(body,
    h('section', { class: 'cards' },
      card('Calls succeeded (1 h)', succ, 'succeeded'), card('Calls failed, to retry (1 h)', failed, 'failed'),
      card('Tasks dead (1 h)', deadN, 'dead'), card('Success ratio (1 h)', ratio, 'ratio', 'succeeded / (succeeded + failed + dead) calls over the last hour'),
      card('Queues', o.queues ?? '–', 'queues')),
    h('section', {}, h('h2', { text: 'Calls per minute, last hour' }), chart(minutes),
      h('p', { class: 'legend' }, h('span', { class: 'key succeeded', text: 'succeeded' }), ' ', h('span', { class: 'key failed', text: 'failed (to retry)' }), ' ', h('span', { class: 'key dead', text: 'dead' }))),
    h('section', {}, h('h2', {}, 'Backlog ', b.at ? h('span', { class: 'muted', text: 'as of ' + new Date(b.at).toLocaleTimeString() }) : null),
      h('div', { class: 'cards', 'data-testid': 'backlog' }, ['scheduled', 'queued', 'active', 'dead'].map((k) => card(k, b[k] ?? '–', 'backlog-' + k))),
      h('p', { class: 'muted' }, 'Retrying tasks count as active (strict queues) or scheduled (relaxed ones). ', h('a', { href: '#/dead', text: 'Dead letters →' }))),
    h('section', {}, h('h2', { text: 'Scheduler and dispatchers' }),
      h('p', { 'data-testid': 'leader' }, 'Scheduler leader: ', sched.leader ? [h('code', { text: sched.leader }), sched.term ? ` (term ${sched.term})` : ''] : h('span', { class: 'muted', text: 'none leads' })),
      (o.dispatchers || []).length
        ? table(['Dispatcher', 'Heartbeat'], (o.dispatchers || []).map((d) => h('tr', { 'data-dispatcher': d.id }, h('td', {}, h('code', { text: d.id })),
          d.expires_at ? h('td', { title: d.expires_at, text: 'expires ' + inWords(d.expires_at) }) : h('td', { title: d.last_seen || '', text: d.last_seen ? 'seen ' + ago(d.last_seen) : '' }))), { 'data-testid': 'dispatchers' })
        : h('p', { class: 'muted', text: 'No live dispatcher.' })));
}

function card(label, value, key, title) {
  return h('div', { class: 'card', 'data-testid': 'card-' + key, title }, h('div', { class: 'value', text: value }), h('div', { class: 'label', text: label }));
}

// chart draws stacked bars, one per minute, as SVG (no inline styles).
function chart(minutes) {
  const W = 600, H = 120, n = Math.max(minutes.length, 1), bw = W / n;
  const max = Math.max(1, ...minutes.map((m) => (m.succeeded || 0) + (m.failed || 0) + (m.dead || 0)));
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', class: 'chart', role: 'img', 'aria-label': 'calls per minute' });
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
  return h('figure', { class: 'chart' }, svg, h('figcaption', { class: 'muted', text: `top of the scale: ${max} a minute; oldest minute on the left, the current one on the right` }));
}
