// Queues (the list) and Queue (one queue: counts, tasks by state with
// search, settings).
import { h, clear, append, link, fmtTime, table, field } from './dom.js';
import * as api from './api.js';
import { action, confirm, flash, errorBox, pager, toRFC3339, badge, session } from './ui.js';

const PAGE = 50;

function num(v) { return h('td', { class: 'num', text: v ?? 0 }); }

// queueActions are pause/resume, purge and delete, each confirmed by name
// where it loses data; after(kind) runs when one succeeded.
function queueActions(q, after) {
  const name = q.name;
  return [
    q.paused
      ? action('Resume', async () => { await api.post(`/queues/${api.seg(name)}/resume`); flash(`Queue “${name}” resumed.`); after('resume'); }, { name: 'resume' })
      : action('Pause', async () => { await api.post(`/queues/${api.seg(name)}/pause`); flash(`Queue “${name}” paused.`); after('pause'); }, { name: 'pause' }),
    action('Purge', async () => {
      if (!(await confirm(`Purge queue “${name}”? Every task waiting in it is deleted; tasks running now finish.`, 'Purge'))) return;
      await api.post(`/queues/${api.seg(name)}/purge`);
      flash(`Queue “${name}” purged.`);
      after('purge');
    }, { name: 'purge', danger: true }),
    action('Delete', async () => {
      if (!(await confirm(`Delete queue “${name}” with all its tasks?`, 'Delete'))) return;
      await api.del(`/queues/${api.seg(name)}`);
      flash(`Queue “${name}” deleted.`);
      after('delete');
    }, { name: 'delete', danger: true }),
  ];
}

const columns = [
  ['name', 'Queue'], ['paused', 'State'], ['type', 'Type'], ['concurrency', 'Concurrency'], ['rate', 'Rate/s'],
  ['scheduled', 'Scheduled'], ['queued', 'Queued'], ['active', 'Active'], ['dead', 'Dead'],
];

function sortValue(q, k) {
  if (k in (q.counts || {})) return q.counts[k];
  return q[k];
}

export async function queues(main) {
  const filter = h('input', { type: 'search', placeholder: 'name starts with…', 'data-testid': 'queue-filter' });
  const body = h('div', { 'data-testid': 'queues' });
  let sort = { key: 'name', dir: 1 };
  let rows = [];
  let prefix = '';
  const pg = pager(async (cursor) => {
    try {
      const r = await api.get('/queues' + api.query({ prefix, cursor, limit: PAGE }));
      rows = r.queues || [];
      draw();
      return r.next_cursor;
    } catch (e) {
      clear(body);
      append(body, errorBox(e, 'GET /v1/queues'));
      return '';
    }
  });
  function draw() {
    const sorted = rows.slice().sort((a, b) => {
      const x = sortValue(a, sort.key), y = sortValue(b, sort.key);
      return (x < y ? -1 : x > y ? 1 : 0) * sort.dir;
    });
    const heads = columns.map(([k, label]) => h('button', {
      type: 'button', class: 'sort' + (sort.key === k ? ' on' : ''), 'data-sort': k,
      on: { click: () => { sort = { key: k, dir: sort.key === k ? -sort.dir : 1 }; draw(); } },
    }, label + (sort.key === k ? (sort.dir > 0 ? ' ▲' : ' ▼') : '')));
    clear(body);
    append(body, table([...heads, 'Actions'], sorted.map((q) => h('tr', { 'data-queue': q.name },
      h('td', {}, link(q.name, 'queue', q.name)),
      h('td', {}, q.paused ? badge('paused') : badge('running')),
      h('td', { text: q.type || 'standard' }),
      num(q.concurrency), num(q.rate || '–'),
      num(q.counts && q.counts.scheduled), num(q.counts && q.counts.queued), num(q.counts && q.counts.active), num(q.counts && q.counts.dead),
      h('td', { class: 'actions' }, queueActions(q, () => pg.reload()))))));
    if (!rows.length) append(body, h('p', { class: 'muted', text: prefix ? `No queue name starts with “${prefix}”.` : 'No queues yet.' }));
  }
  let debounce = null;
  filter.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { prefix = filter.value; pg.reset(); }, 250);
  });
  append(main, h('h1', { text: 'Queues' }),
    h('div', { class: 'toolbar' }, field('Filter', filter), h('span', { class: 'muted', text: 'sorted by name on the server; click a column to sort this page' })),
    body, pg.el);
  await pg.reset();
  return () => clearTimeout(debounce);
}

// The states the API lists per queue (succeeded tasks are looked up by id).
const STATES = ['queued', 'scheduled', 'active', 'retrying', 'dead'];

export async function queue(main, name) {
  const head = h('div', { 'data-testid': 'queue-head' });
  const tasks = h('div', { 'data-testid': 'tasks' });
  const settings = h('section', { 'data-testid': 'settings' });
  let state = 'queued';
  const search = { q: h('input', { type: 'search', name: 'q', placeholder: 'task id or URL part', 'data-testid': 'search-q' }),
    code: h('input', { type: 'number', name: 'code', min: 100, max: 599, placeholder: '500', 'data-testid': 'search-code' }),
    since: h('input', { type: 'datetime-local', name: 'since', step: 1 }),
    until: h('input', { type: 'datetime-local', name: 'until', step: 1 }) };
  const tabs = h('div', { class: 'tabs', role: 'tablist' });

  async function loadHead() {
    try {
      const q = await api.get(`/queues/${api.seg(name)}`);
      clear(head);
      const c = q.counts || {};
      append(head,
        h('h1', {}, 'Queue ', h('span', { class: 'name', 'data-testid': 'queue-name', text: q.name }), ' ', q.paused ? badge('paused') : badge('running')),
        h('div', { class: 'cards' }, ['scheduled', 'queued', 'active', 'dead'].map((k) =>
          h('div', { class: 'card', 'data-testid': 'count-' + k }, h('div', { class: 'value', text: c[k] ?? 0 }), h('div', { class: 'label', text: k })))),
        h('div', { class: 'toolbar' }, queueActions(q, (kind) => { if (kind === 'delete') location.hash = '#/queues'; else { loadHead(); pg.reload(); } }),
          h('a', { href: '#/dead?queue=' + encodeURIComponent(q.name), text: 'Dead letters of this queue →' })));
      drawSettings(q);
    } catch (e) {
      clear(head);
      append(head, h('h1', {}, 'Queue ', h('span', { class: 'name', text: name })), errorBox(e, 'GET /v1/queues/' + name));
    }
  }

  const pg = pager(async (cursor) => {
    const p = { state, q: search.q.value.trim(), code: search.code.value, since: toRFC3339(search.since.value), until: toRFC3339(search.until.value), cursor, limit: PAGE };
    try {
      const r = await api.get(`/queues/${api.seg(name)}/tasks` + api.query(p));
      clear(tasks);
      const list = r.tasks || [];
      append(tasks, table(['Task', 'State', 'Method', 'URL', 'Attempts', 'Last status', 'Last error', 'Updated'],
        list.map((t) => h('tr', { 'data-task': t.id },
          h('td', {}, link(t.id, 'task', t.id)), h('td', {}, badge(t.state)), h('td', { text: t.method }),
          h('td', { class: 'url', text: t.url }), h('td', { class: 'num', text: `${t.attempts}${t.max_attempts ? '/' + t.max_attempts : ''}` }),
          h('td', { class: 'num', text: t.last_status || '' }), h('td', { class: 'err', text: t.last_error || '' }),
          h('td', {}, fmtTime(t.updated_at || t.created_at))))));
      if (!list.length) append(tasks, h('p', { class: 'muted', text: `No ${state} task matches.` }));
      return r.next_cursor;
    } catch (e) {
      clear(tasks);
      append(tasks, errorBox(e, `GET /v1/queues/${name}/tasks?state=${state}`));
      return '';
    }
  });

  function drawTabs() {
    clear(tabs);
    append(tabs, STATES.map((st) => h('button', {
      type: 'button', role: 'tab', class: st === state ? 'on' : '', 'aria-selected': String(st === state), 'data-state': st,
      on: { click: () => { state = st; drawTabs(); pg.reset(); } },
    }, st)));
  }

  function drawSettings(q) {
    clear(settings);
    const r = q.retry || {};
    const f = {
      concurrency: [q.concurrency, 'tasks in flight at once'], rate: [q.rate, 'calls per second, 0: unlimited'], burst: [q.burst, ''],
      timeout: [q.timeout, 'seconds or a duration (30s, 5m)'], max_attempts: [r.max_attempts, 'retry.max_attempts'],
      min_backoff: [r.min_backoff, 'retry.min_backoff'], max_backoff: [r.max_backoff, 'retry.max_backoff'],
      max_backlog: [q.max_backlog, '0: unlimited'], retention: [q.retention, 'how long finished tasks are kept'], dead_retention: [q.dead_retention, ''],
    };
    const inputs = {};
    const form = h('form', { class: 'settings', 'data-testid': 'settings-form' });
    for (const [k, [v, hint]] of Object.entries(f)) {
      inputs[k] = h('input', { name: k, value: v ?? '', disabled: session.readOnly, 'data-setting': k });
      append(form, field(k, inputs[k], hint));
    }
    const save = action('Save settings', async () => {
      const patch = {};
      const retry = {};
      for (const [k, [v]] of Object.entries(f)) {
        const raw = inputs[k].value.trim();
        if (raw === String(v ?? '')) continue;
        if (raw === '') throw new Error(`${k}: a value is required`);
        const val = /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
        if (['max_attempts', 'min_backoff', 'max_backoff'].includes(k)) retry[k] = val; else patch[k] = val;
      }
      if (Object.keys(retry).length) patch.retry = retry;
      if (!Object.keys(patch).length) { flash('Nothing changed.'); return; }
      await api.put(`/queues/${api.seg(name)}`, patch);
      flash(`Settings of queue “${name}” saved.`);
      loadHead();
    }, { name: 'save-settings' });
    form.addEventListener('submit', (e) => { e.preventDefault(); save.click(); });
    append(form, h('div', { class: 'buttons' }, save));
    append(settings, h('h2', { text: 'Settings' }), h('p', { class: 'muted' }, 'Type: ', q.type || 'standard', ' · ordering: ', q.ordering || '–', ' · created ', fmtTime(q.created_at)), form);
  }

  const form = h('form', { class: 'toolbar search', 'data-testid': 'search' },
    field('Search', search.q), field('Last status', search.code), field('Since', search.since), field('Until', search.until),
    h('button', { type: 'submit', text: 'Search' }),
    h('button', { type: 'reset', text: 'Clear' }));
  form.addEventListener('submit', (e) => { e.preventDefault(); pg.reset(); });
  form.addEventListener('reset', () => setTimeout(() => pg.reset(), 0));
  drawTabs();
  append(main, head, h('section', {}, h('h2', { text: 'Tasks' }), tabs, form, tasks, pg.el), settings);
  await Promise.all([loadHead(), pg.reset()]);
  return null;
}
