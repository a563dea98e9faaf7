// Schedules: each with its next runs and its last run (and that run's
// task); pause, resume, trigger, and edit its definition.
import { h, clear, append, link, fmtTime, table } from './dom.js';
import * as api from './api.js';
import { action, confirm, flash, errorBox, pager, badge, session } from './ui.js';

const PAGE = 50;

// definition is what PUT /v1/schedules/{name} takes, from a schedule as GET
// shows it.
function definition(sc) {
  const d = { queue: sc.queue, cron: sc.cron, time_zone: sc.time_zone, task: sc.task, missed: sc.missed,
    catch_up: sc.catch_up, overlap: sc.overlap, jitter: sc.jitter, paused: sc.paused };
  if (sc.start_at) d.start_at = sc.start_at;
  if (sc.end_at) d.end_at = sc.end_at;
  return d;
}

export async function schedules(main) {
  const list = h('div', { 'data-testid': 'schedules' });
  const editor = h('section', { 'data-testid': 'schedule-editor' });
  const pg = pager(async (cursor) => {
    try {
      const r = await api.get('/schedules' + api.query({ cursor, limit: PAGE }));
      const scs = r.schedules || [];
      clear(list);
      append(list, table(['Schedule', 'Queue', 'Cron', 'State', 'Next runs', 'Last run', 'Actions'], scs.map((sc) => h('tr', { 'data-schedule': sc.name },
        h('td', { class: 'name', text: sc.name }), h('td', {}, link(sc.queue, 'queue', sc.queue)),
        h('td', {}, h('code', { text: sc.cron }), ' ', h('span', { class: 'muted', text: sc.time_zone || 'UTC' })),
        h('td', {}, sc.paused ? badge('paused') : badge('running')),
        h('td', {}, (sc.next_runs || []).length ? h('ul', { class: 'runs' }, sc.next_runs.slice(0, 3).map((t) => h('li', {}, fmtTime(t)))) : h('span', { class: 'muted', text: 'none' })),
        h('td', {}, sc.last_run ? [fmtTime(sc.last_run.scheduled_at), ' ', link(sc.last_run.task_id, 'task', sc.last_run.task_id), ' ', sc.last_run.state ? badge(sc.last_run.state) : null] : h('span', { class: 'muted', text: 'never' })),
        h('td', { class: 'actions' },
          sc.paused
            ? action('Resume', async () => { await api.post(`/schedules/${api.seg(sc.name)}/resume`); flash(`Schedule “${sc.name}” resumed.`); pg.reload(); }, { name: 'resume' })
            : action('Pause', async () => { await api.post(`/schedules/${api.seg(sc.name)}/pause`); flash(`Schedule “${sc.name}” paused.`); pg.reload(); }, { name: 'pause' }),
          action('Trigger', async () => {
            const r2 = await api.post(`/schedules/${api.seg(sc.name)}/trigger`);
            const id = r2 && (r2.task_id || (r2.task && r2.task.id) || r2.id);
            flash(id ? `Schedule “${sc.name}” triggered: task ${id}.` : `Schedule “${sc.name}” triggered.`);
            pg.reload();
          }, { name: 'trigger' }),
          h('button', { type: 'button', 'data-action': 'edit', on: { click: () => edit(sc) } }, session.readOnly ? 'View' : 'Edit'),
          action('Delete', async () => {
            if (!(await confirm(`Delete schedule “${sc.name}”? Tasks it already created stay.`, 'Delete'))) return;
            await api.del(`/schedules/${api.seg(sc.name)}`);
            flash(`Schedule “${sc.name}” deleted.`);
            pg.reload();
          }, { name: 'delete', danger: true }))))));
      if (!scs.length) append(list, h('p', { class: 'muted', text: 'No schedules.' }));
      return r.next_cursor;
    } catch (e) {
      clear(list);
      append(list, errorBox(e, 'GET /v1/schedules'));
      return '';
    }
  });

  function edit(sc) {
    clear(editor);
    const ta = h('textarea', { rows: 18, spellcheck: 'false', 'data-testid': 'schedule-json', readonly: session.readOnly });
    ta.value = JSON.stringify(definition(sc), null, 2);
    append(editor, h('h2', {}, 'Schedule ', h('span', { class: 'name', text: sc.name })),
      h('p', { class: 'muted', text: 'The definition as PUT /v1/schedules/{name} takes it (durations in seconds or as 5m, 1h30m).' }), ta,
      h('div', { class: 'buttons' },
        action('Save', async () => {
          let def;
          try { def = JSON.parse(ta.value); } catch (e) { throw new Error('the definition is not valid JSON: ' + e.message); }
          await api.put(`/schedules/${api.seg(sc.name)}`, def);
          flash(`Schedule “${sc.name}” saved.`);
          clear(editor);
          pg.reload();
        }, { name: 'save-schedule' }),
        h('button', { type: 'button', on: { click: () => clear(editor) } }, 'Close')));
    editor.scrollIntoView();
  }

  append(main, h('h1', { text: 'Schedules' }), list, pg.el, editor);
  await pg.reset();
  return null;
}
