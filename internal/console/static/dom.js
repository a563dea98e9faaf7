// DOM helpers: every element is built with createElement and every piece of
// data goes in as a text node or an attribute value, never as HTML, so a
// queue name, URL, header or body is shown exactly as it is.

const SVG = 'http://www.w3.org/2000/svg';

// h builds an element. props: class, text, on (event listeners), dataset
// keys as data-*, DOM properties (value, checked, disabled, selected), any
// other attribute by name (never an on* attribute).
export function h(tag, props, ...children) {
  return build(document.createElement(tag), props, children);
}

// s builds an SVG element the same way.
export function s(tag, props, ...children) {
  return build(document.createElementNS(SVG, tag), props, children);
}

const domProps = new Set(['value', 'checked', 'disabled', 'selected', 'open', 'indeterminate']);

function build(el, props, children) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (domProps.has(k)) el[k] = v;
    else if (/^on/i.test(k)) throw new Error('event handlers go in props.on, not attribute ' + k);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, ...children);
  return el;
}

// append adds children: nodes as they are, strings and numbers as text,
// arrays flattened, null and undefined skipped.
export function append(el, ...children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, ...c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
  return el;
}

// clear removes every child of el.
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// link is an in-console link to a hash route built from encoded parts.
export function link(text, ...parts) {
  return h('a', { href: '#/' + parts.map((p, i) => (i === 0 ? p : encodeURIComponent(p))).join('/') }, text);
}

// fmtTime shows an RFC 3339 time in the browser's zone, with the full
// value in the title.
export function fmtTime(t) {
  if (!t) return h('span', { class: 'muted', text: '–' });
  const d = new Date(t);
  if (isNaN(d)) return h('span', { text: t });
  return h('time', { datetime: t, title: t, text: d.toLocaleString() });
}

// ago says how long ago t was, in words.
export function ago(t) {
  const ms = Date.now() - new Date(t).getTime();
  if (!isFinite(ms)) return '';
  const s = Math.round(ms / 1000);
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  return Math.round(s / 3600) + ' h ago';
}

// table builds a table from column titles and rows of cells.
export function table(cols, rows, props) {
  return h('table', props || {},
    h('thead', {}, h('tr', {}, cols.map((c) => (c instanceof Node ? h('th', {}, c) : h('th', { text: c }))))),
    h('tbody', {}, rows));
}

// field is a labelled form control.
export function field(label, control, hint) {
  return h('label', { class: 'field' }, h('span', { text: label }), control, hint ? h('small', { class: 'muted', text: hint }) : null);
}
