// Aftertrace console: one ES module, no dependencies. Views are drawn
// from the path below /ui/ and call /api/v1 with the tenant key kept in
// sessionStorage (this browser tab only; never in a URL).

const root = new URL('.', document.baseURI); // …/ui/
const apiRoot = new URL('../api/v1/', root);
const KEY = 'aftertrace.key';
const main = document.getElementById('main');
let stopView = () => {}; // cancels the current view's timers and fetches

// ---------- DOM and formatting helpers ----------

// h builds an element; strings become text nodes (never HTML).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'style') el.style.cssText = v; // CSSOM: allowed by the CSP, unlike a style attribute
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const link = (path, text, attrs = {}) => h('a', { href: new URL(path, root).href, ...attrs }, text);
const pill = (text) => h('span', { class: 'pill ' + String(text).toLowerCase() }, text);
const nsToDate = (ns) => new Date(Number(BigInt(ns || 0) / 1000000n));
const fmtTime = (t) => {
  const d = typeof t === 'string' && /^\d+$/.test(t) ? nsToDate(t) : new Date(t);
  return isNaN(d) || d.getTime() === 0 ? '' : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
};
const fmtDur = (ns) => {
  const n = Number(ns || 0);
  if (n >= 1e9) return (n / 1e9).toFixed(2) + ' s';
  if (n >= 1e6) return (n / 1e6).toFixed(1) + ' ms';
  return (n / 1e3).toFixed(0) + ' µs';
};
const windows = { '15m': 15 * 60e3, '1h': 3600e3, '6h': 6 * 3600e3, '24h': 24 * 3600e3, '7d': 7 * 24 * 3600e3 };
const nsAgo = (ms) => (BigInt(Date.now() - ms) * 1000000n).toString();
const nowNs = () => (BigInt(Date.now()) * 1000000n).toString();

// painted marks, after the next frame, that a view's main content is on
// screen (performance.getEntriesByName('aftertrace:' + what)): what the
// console benchmark times from navigation.
function painted(what) {
  requestAnimationFrame(() => performance.mark('aftertrace:' + what));
}

function setTitle(text) {
  document.title = text ? `${text} · Aftertrace` : 'Aftertrace';
}

function show(...nodes) {
  main.replaceChildren(...nodes);
}

function errorBox(err) {
  return h('p', { class: 'error', role: 'alert' }, err instanceof ApiError ? `${err.message} (${err.status}${err.code ? ' ' + err.code : ''})` : String(err));
}

// ---------- API ----------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const key = () => sessionStorage.getItem(KEY);

async function api(path, opts = {}) {
  const headers = { Authorization: 'Bearer ' + key() };
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(new URL(path, apiRoot), {
    method: opts.method || 'GET',
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: opts.signal,
  });
  if (res.status === 401 && !opts.signIn) {
    sessionStorage.removeItem(KEY);
    go('signin?next=' + encodeURIComponent(here()));
    throw new ApiError(401, 'unauthenticated', 'Signed out: the key was refused');
  }
  if (opts.blob && res.ok) return res.blob();
  const type = res.headers.get('Content-Type') || '';
  const body = type.includes('json') ? await res.json() : await res.text();
  if (!res.ok) {
    const e = (body && body.error) || {};
    throw new ApiError(res.status, e.code, e.message || res.statusText);
  }
  return body;
}

const q = (params) => {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, v);
  const s = u.toString();
  return s ? '?' + s : '';
};

// ---------- routing ----------

const here = () => location.pathname.slice(root.pathname.length) + location.search;

function go(path) {
  history.pushState(null, '', new URL(path, root).href);
  render();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.hasAttribute('download')) return;
  const u = new URL(a.href);
  if (u.origin !== location.origin || !u.pathname.startsWith(root.pathname)) return;
  e.preventDefault();
  history.pushState(null, '', u.href);
  render();
});
window.addEventListener('popstate', render);
document.getElementById('signout').addEventListener('click', () => {
  sessionStorage.removeItem(KEY);
  go('signin');
});

const routes = [
  [/^signin$/, signIn],
  [/^(incidents)?$/, incidents],
  [/^incidents\/([0-9a-f-]+)$/, incident],
  [/^traces\/([0-9a-f]+)$/, trace],
  [/^containers\/([^/]+)$/, container],
  [/^search$/, search],
  [/^forensics$/, forensics],
];

function render() {
  stopView();
  const ctl = new AbortController();
  const timers = [];
  stopView = () => {
    ctl.abort();
    timers.forEach(clearInterval);
  };
  const ctx = { signal: ctl.signal, every: (ms, fn) => timers.push(setInterval(fn, ms)), params: new URLSearchParams(location.search) };
  const path = location.pathname.slice(root.pathname.length);
  document.getElementById('signout').hidden = !key();
  for (const a of document.querySelectorAll('header nav a')) {
    const current = path === a.getAttribute('href') || path.startsWith(a.getAttribute('href') + '/');
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!key() && path !== 'signin') {
    go('signin?next=' + encodeURIComponent(here()));
    return;
  }
  for (const [re, view] of routes) {
    const m = path.match(re);
    if (m) {
      Promise.resolve(view(ctx, ...m.slice(1))).catch((err) => {
        if (err.name !== 'AbortError' && !(err instanceof ApiError && err.status === 401)) show(errorBox(err));
      });
      main.focus({ preventScroll: true });
      return;
    }
  }
  setTitle('Not found');
  show(h('h1', {}, 'Not found'), h('p', {}, 'No view at this address. ', link('incidents', 'Incidents')));
}

// ---------- sign in ----------

function signIn(ctx) {
  setTitle('Sign in');
  const input = h('input', { id: 'key', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const msg = h('p', { role: 'status', class: 'muted' });
  const form = h('form', { class: 'card', style: 'max-width:28rem' },
    h('label', { for: 'key' }, 'Tenant API key', input),
    h('p', { class: 'muted' }, 'Kept in this browser tab only, sent as a Bearer token.'),
    h('button', { type: 'submit' }, 'Sign in'), msg);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, input.value.trim());
    msg.textContent = 'Checking the key…';
    try {
      await api('services' + q({ limit: 1 }), { signIn: true });
      go(ctx.params.get('next') || 'incidents');
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        sessionStorage.removeItem(KEY);
        msg.replaceWith(errorBox('The key was refused.'));
      } else {
        go(ctx.params.get('next') || 'incidents'); // the key works; the check route failed for another reason
      }
    }
  });
  show(h('h1', {}, 'Sign in'), form);
  input.focus();
}

// ---------- incidents ----------

async function incidents(ctx) {
  setTitle('Incidents');
  const p = ctx.params;
  const f = {
    status: p.get('status') || '', window: p.get('window') || '24h', severity: p.get('severity') || '',
    namespace: p.get('namespace') || '', service: p.get('service') || '',
  };
  const sel = (id, label, value, options) => h('label', { for: id }, label,
    h('select', { id, name: id }, options.map(([v, t]) => h('option', { value: v, selected: v === value }, t))));
  const txt = (id, label, value) => h('label', { for: id }, label, h('input', { id, name: id, value }));
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter incidents' },
    sel('status', 'Status', f.status, [['', 'any'], ['open', 'open'], ['acknowledged', 'acknowledged'], ['resolved', 'resolved']]),
    sel('severity', 'Severity at least', f.severity, [['', 'any'], ['9', 'info'], ['13', 'warning'], ['17', 'error'], ['21', 'critical']]),
    txt('namespace', 'Namespace', f.namespace), txt('service', 'Service', f.service),
    sel('window', 'Opened within', f.window, Object.keys(windows).map((k) => [k, k])),
    h('button', { type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    go('incidents' + q(Object.fromEntries(new FormData(form))));
  });
  const body = h('div', { 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading…'));
  const updated = h('p', { class: 'muted' });
  show(h('h1', {}, 'Incidents'), form, updated, body);

  const load = async () => {
    const list = await api('incidents' + q({ status: f.status, start: nsAgo(windows[f.window] || windows['24h']), end: nowNs(), limit: 200 }), { signal: ctx.signal });
    const items = (list.items || []).filter((i) =>
      (!f.severity || i.severity >= Number(f.severity)) &&
      (!f.namespace || i.namespace === f.namespace) &&
      (!f.service || (i.services || []).includes(f.service) || i.workload === f.service));
    updated.textContent = `${items.length} incident${items.length === 1 ? '' : 's'} · updated ${fmtTime(new Date())} (every 10 s)`;
    if (!items.length) {
      body.replaceChildren(h('p', { class: 'muted' }, 'No incident matches.'));
      return;
    }
    body.replaceChildren(h('div', { class: 'scroll' }, h('table', {},
      h('caption', { class: 'muted', style: 'text-align:left' }, 'Newest first'),
      h('thead', {}, h('tr', {}, ['Opened', 'Incident', 'Status', 'Severity', 'Namespace / workload', 'Services', 'Events'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, items.map((i) => h('tr', {},
        h('td', {}, fmtTime(i.openedAt)),
        h('td', {}, link('incidents/' + i.id, i.title || i.id), ' ', h('span', { class: 'muted' }, i.kind)),
        h('td', {}, pill(i.status)),
        h('td', {}, i.severityText || i.severity),
        h('td', {}, [i.namespace, i.workload].filter(Boolean).join(' / ')),
        h('td', {}, (i.services || []).join(', ')),
        h('td', {}, i.eventCount)))))));
  };
  await load();
  painted('incidents');
  ctx.every(10000, () => load().catch(() => {}));
}

const evidenceTarget = (ref) => {
  // An evidence ref is an API path: show it in the console where a view exists.
  if (!ref) return null;
  const u = new URL(ref, location.origin);
  const p = u.pathname.replace(/^.*\/api\/v1\//, '');
  let m;
  if ((m = p.match(/^traces\/([0-9a-f]+)$/))) return 'traces/' + m[1];
  if (p === 'traces') return 'search' + q({ kind: 'traces', service: u.searchParams.get('service'), start: u.searchParams.get('start'), end: u.searchParams.get('end') });
  if (p === 'logs') return 'search' + q({ kind: 'logs', service: u.searchParams.get('service'), q: u.searchParams.get('q'), traceId: u.searchParams.get('traceId'), start: u.searchParams.get('start'), end: u.searchParams.get('end') });
  if ((m = p.match(/^containers\/([^/]+)/))) return 'containers/' + m[1];
  if ((m = p.match(/^events\/([0-9a-f]+)/))) return null;
  return null;
};

function causeList(result) {
  const cands = result.candidates || [];
  if (!cands.length) {
    return h('div', { class: 'card' },
      h('p', {}, `No ranked cause (status ${result.status || 'unknown'}).`),
      (result.reasons || []).length ? h('ul', {}, result.reasons.map((r) => h('li', {}, r))) : null,
      (result.suggestions || []).length ? h('p', { class: 'muted' }, 'Try: ' + result.suggestions.join('; ')) : null);
  }
  return h('ol', { class: 'causes', 'aria-label': 'Root-cause candidates, most likely first' }, cands.map((c) => h('li', {},
    h('strong', { class: 'cause-service' }, c.service || c.pod || c.container), ' ',
    h('span', { class: 'score' }, `score ${Number(c.score).toFixed(2)}`), ' ',
    (c.signals || []).map((s) => [pill(s), ' ']),
    c.pod ? h('span', { class: 'muted' }, ' pod ', c.pod) : null,
    h('ul', { class: 'evidence' }, (c.evidence || []).map((e) => {
      const to = evidenceTarget(e.ref);
      return h('li', {}, h('span', { class: 'muted' }, e.kind + ': '), to ? link(to, e.summary) : e.summary,
        e.ref && !to ? h('code', { class: 'muted' }, ' ' + e.ref) : null);
    })))));
}

async function incident(ctx, id) {
  setTitle('Incident');
  const inc = await api('incidents/' + id, { signal: ctx.signal });
  setTitle(inc.title || 'Incident');
  const actions = h('div', { class: 'row' });
  const note = h('input', { id: 'note', name: 'note' });
  const act = async (what) => {
    try {
      await api(`incidents/${id}/${what}`, { method: 'POST', body: { note: note.value }, signal: ctx.signal });
      render();
    } catch (err) {
      actions.append(errorBox(err));
    }
  };
  actions.append(h('label', { for: 'note' }, 'Note', note),
    h('button', { type: 'button', onclick: () => act('ack'), disabled: inc.status !== 'open' }, 'Acknowledge'),
    h('button', { type: 'button', class: 'secondary', onclick: () => act('resolve'), disabled: inc.status === 'resolved' }, 'Resolve'));

  const causes = h('section', { 'aria-labelledby': 'h-causes', 'aria-busy': 'true' }, h('h2', { id: 'h-causes' }, 'Root causes'), h('p', { class: 'muted' }, 'Ranking…'));
  const impact = inc.businessImpact || {};
  const linked = inc.linkedTraces || [];
  show(
    h('h1', {}, inc.title || id),
    h('p', {}, pill(inc.status), ' ', h('span', {}, `${inc.kind} · severity ${inc.severityText || inc.severity} · ${[inc.namespace, inc.workload].filter(Boolean).join(' / ')}`)),
    h('dl', { class: 'kv' },
      h('dt', {}, 'Opened'), h('dd', {}, fmtTime(inc.openedAt)),
      h('dt', {}, 'Events'), h('dd', {}, `${inc.eventCount} from ${fmtTime(inc.firstEventAt)} to ${fmtTime(inc.lastEventAt)}`),
      h('dt', {}, 'Services'), h('dd', {}, (inc.services || []).join(', ') || '—')),
    actions,
    causes,
    h('section', { 'aria-labelledby': 'h-impact' }, h('h2', { id: 'h-impact' }, 'Business impact'),
      h('p', {}, `${impact.traces || 0} traces, ${impact.failed || 0} failed, ${impact.unclassified || 0} without a business transaction`),
      (impact.transactions || []).length ? h('div', { class: 'scroll' }, h('table', {},
        h('thead', {}, h('tr', {}, ['Transaction', 'Traces', 'Failed', 'Keys'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, impact.transactions.map((t) => h('tr', {},
          h('td', {}, t.businessTransaction), h('td', {}, t.traces), h('td', {}, t.failed),
          h('td', {}, (t.keys || []).map((k) => h('div', {}, `${k.name}: ${(k.values || []).join(', ')}${k.truncated ? ' …' : ''}`)))))))) : null),
    h('section', { 'aria-labelledby': 'h-timeline' }, h('h2', { id: 'h-timeline' }, 'Timeline'),
      h('div', { class: 'scroll' }, h('table', {},
        h('thead', {}, h('tr', {}, ['Time', 'Type', 'Reason', 'Pod', 'Container'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, (inc.events || []).map((e) => h('tr', {},
          h('td', {}, fmtTime(e.timeUnixNano || e.time)), h('td', {}, e.type), h('td', {}, e.reason || e.message),
          h('td', {}, e.podName), h('td', {}, e.containerId ? link('containers/' + e.containerId, e.containerId.slice(0, 12)) : '')))))),
      (inc.affectedContainers || []).length ? h('p', {}, 'Affected: ', inc.affectedContainers.map((c) => [
        c.containerId ? link('containers/' + c.containerId, `${c.podName || ''} ${c.containerId.slice(0, 12)}`) : `pod ${c.podName || c.podUid}`,
        c.namespace ? ` (${c.namespace})` : '', '; '])) : null),
    h('section', { 'aria-labelledby': 'h-traces' }, h('h2', { id: 'h-traces' }, 'Linked traces'),
      linked.length ? h('div', { class: 'scroll' }, h('table', {},
        h('thead', {}, h('tr', {}, ['Trace', 'Root', 'Start', 'Duration', 'Status', 'Transaction'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, linked.map((t) => h('tr', {},
          h('td', {}, link('traces/' + t.traceId, t.traceId.slice(0, 16))),
          h('td', {}, `${t.rootService || ''} ${t.rootName || ''}`), h('td', {}, fmtTime(t.startTimeUnixNano)),
          h('td', {}, fmtDur(t.durationNs)), h('td', {}, t.failed ? pill('failed') : pill('ok')),
          h('td', {}, t.businessTransaction || ''))))))
        : h('p', { class: 'muted' }, 'No linked trace.')),
    h('section', { 'aria-labelledby': 'h-history' }, h('h2', { id: 'h-history' }, 'History'),
      h('ul', {}, (inc.history || []).map((x) => h('li', {}, `${fmtTime(x.at)} ${x.action || x.status || ''} ${x.actor ? 'by ' + x.actor : ''} ${x.note ? '— ' + x.note : ''}`)))),
  );
  painted('incident');
  try {
    const rc = await api(`incidents/${id}/root-causes`, { signal: ctx.signal });
    causes.replaceChildren(h('h2', { id: 'h-causes' }, 'Root causes'), causeList(rc),
      h('p', { class: 'muted' }, `Computed ${fmtTime(rc.computedAt)}`));
    painted('causes');
  } catch (err) {
    if (err.name === 'AbortError') return;
    causes.replaceChildren(h('h2', { id: 'h-causes' }, 'Root causes'), errorBox(err));
  }
  causes.removeAttribute('aria-busy');
}

// ---------- trace ----------

const ROW = 24;

function spanTree(spans) {
  const byId = new Map(spans.map((s) => [s.spanId, { s, kids: [] }]));
  const roots = [];
  for (const n of byId.values()) {
    const p = n.s.parentSpanId && byId.get(n.s.parentSpanId);
    (p ? p.kids : roots).push(n);
  }
  const start = (n) => BigInt(n.s.startTimeUnixNano);
  const order = (a, b) => (start(a) < start(b) ? -1 : start(a) > start(b) ? 1 : 0);
  const out = [];
  const stack = roots.sort(order).reverse().map((n) => [n, 0]);
  while (stack.length) { // iterative: 10,000-deep chains must not overflow
    const [n, d] = stack.pop();
    out.push({ span: n.s, depth: d });
    n.kids.sort(order);
    for (let i = n.kids.length - 1; i >= 0; i--) stack.push([n.kids[i], d + 1]);
  }
  return out;
}

async function trace(ctx, id) {
  setTitle('Trace ' + id.slice(0, 16));
  const tr = await api('traces/' + id, { signal: ctx.signal });
  const rows = spanTree(tr.spans || []);
  if (!rows.length) {
    show(h('h1', {}, 'Trace ' + id), h('p', {}, 'No spans.'));
    return;
  }
  const t0 = rows.reduce((m, r) => (BigInt(r.span.startTimeUnixNano) < m ? BigInt(r.span.startTimeUnixNano) : m), BigInt(rows[0].span.startTimeUnixNano));
  const t1 = rows.reduce((m, r) => (BigInt(r.span.endTimeUnixNano) > m ? BigInt(r.span.endTimeUnixNano) : m), 0n);
  const total = Number(t1 - t0) || 1;
  const services = new Set(rows.map((r) => r.span.service));
  const errors = rows.filter((r) => r.span.status && r.span.status.code === 'error').length;

  const box = h('div', { class: 'waterfall', role: 'listbox', 'aria-label': `Spans of trace ${id}, ${rows.length}`, tabindex: '0' });
  const spacer = h('div', { class: 'spacer', style: `height:${rows.length * ROW}px` });
  box.append(spacer);
  const details = h('section', { class: 'span-details', 'aria-live': 'polite' });
  let selected = -1;
  const draw = () => {
    const first = Math.max(0, Math.floor(box.scrollTop / ROW) - 10);
    const last = Math.min(rows.length, Math.ceil((box.scrollTop + box.clientHeight) / ROW) + 10);
    const frag = [];
    for (let i = first; i < last; i++) {
      const s = rows[i].span;
      const left = (Number(BigInt(s.startTimeUnixNano) - t0) / total) * 100;
      const width = Math.max((Number(s.durationNs) / total) * 100, 0.2);
      const err = s.status && s.status.code === 'error';
      frag.push(h('div', {
        class: 'span-row', role: 'option', id: 'span-' + i, 'aria-selected': String(i === selected), style: `top:${i * ROW}px`,
        'data-i': i, title: `${s.service} ${s.name} ${fmtDur(s.durationNs)}`,
      },
      h('span', { class: 'name', style: `padding-left:${Math.min(rows[i].depth, 40) * 10 + 6}px` }, h('strong', {}, s.service), ' ', s.name),
      h('span', { class: 'bar-area' }, h('span', { class: 'bar' + (err ? ' err' : ''), style: `left:${left}%;width:${width}%` }))));
    }
    spacer.replaceChildren(...frag);
  };
  const pick = (i) => {
    selected = i;
    box.setAttribute('aria-activedescendant', 'span-' + i);
    draw();
    showSpan(ctx, details, rows[i].span);
  };
  box.addEventListener('scroll', () => requestAnimationFrame(draw), { passive: true });
  box.addEventListener('click', (e) => {
    const r = e.target.closest('.span-row');
    if (r) pick(Number(r.dataset.i));
  });
  box.addEventListener('keydown', (e) => {
    const step = { ArrowDown: 1, ArrowUp: -1, PageDown: 20, PageUp: -20 }[e.key];
    if (step) {
      e.preventDefault();
      const i = Math.min(rows.length - 1, Math.max(0, selected + step));
      if (i * ROW < box.scrollTop || (i + 1) * ROW > box.scrollTop + box.clientHeight) box.scrollTop = i * ROW - box.clientHeight / 2;
      pick(i);
    }
  });
  const linkedEvents = h('section', { 'aria-labelledby': 'h-tevents' }, h('h2', { id: 'h-tevents' }, 'Container events linked to this trace'), h('p', { class: 'muted' }, 'Loading…'));
  show(h('h1', {}, 'Trace ', h('code', {}, id)),
    h('p', {}, `${rows.length} spans · ${services.size} services · ${fmtDur(total)} · ${errors} with error status${tr.truncated ? ' · truncated' : ''}`),
    box, details, linkedEvents);
  draw();
  painted('trace');
  try {
    const evs = await api(`traces/${id}/events`, { signal: ctx.signal });
    linkedEvents.replaceChildren(linkedEvents.firstChild, (evs.items || []).length ? h('ul', {}, evs.items.map((e) => h('li', {},
      `${fmtTime(e.timeUnixNano)} ${e.type} ${e.reason || ''} `, e.containerId ? link('containers/' + e.containerId, e.containerId.slice(0, 12)) : ''))) : h('p', { class: 'muted' }, 'None.'));
  } catch (err) {
    if (err.name !== 'AbortError') linkedEvents.replaceChildren(linkedEvents.firstChild, errorBox(err));
  }
}

const kv = (obj) => h('dl', { class: 'kv' }, Object.entries(obj || {}).map(([k, v]) => [h('dt', {}, k), h('dd', {}, typeof v === 'object' ? JSON.stringify(v) : String(v))]));

async function showSpan(ctx, box, s) {
  const res = s.resource || {};
  const cid = res['container.id'] || res['k8s.container.id'];
  const logs = h('div', {}, h('p', { class: 'muted' }, 'Loading logs…'));
  box.replaceChildren(
    h('h2', {}, `${s.service} · ${s.name}`),
    h('p', {}, `${s.kind || ''} · ${fmtDur(s.durationNs)} · started ${fmtTime(s.startTimeUnixNano)} · status ${(s.status && s.status.code) || 'unset'} ${(s.status && s.status.message) || ''}`),
    cid ? h('p', {}, 'Container ', link('containers/' + cid, String(cid).slice(0, 12))) : null,
    h('div', { class: 'grid' },
      h('div', { class: 'card' }, h('h3', {}, 'Attributes'), kv(s.attributes)),
      h('div', { class: 'card' }, h('h3', {}, 'Resource'), kv(res))),
    (s.events || []).length ? [h('h3', {}, 'Events'), h('ul', {}, s.events.map((e) => h('li', {}, `${fmtTime(e.timeUnixNano)} ${e.name} `, h('code', {}, JSON.stringify(e.attributes || {})))))] : null,
    (s.links || []).length ? [h('h3', {}, 'Links'), h('ul', {}, s.links.map((l) => h('li', {}, link('traces/' + l.traceId, l.traceId.slice(0, 16)), ' span ', l.spanId)))] : null,
    h('h3', {}, 'Logs of this span'), logs);
  try {
    const start = (BigInt(s.startTimeUnixNano) - 60000000000n).toString();
    const end = (BigInt(s.endTimeUnixNano) + 60000000000n).toString();
    const page = await api('logs' + q({ traceId: s.traceId, spanId: s.spanId, start, end, limit: 100 }), { signal: ctx.signal });
    logs.replaceChildren(logTable(page.items || []));
  } catch (err) {
    if (err.name !== 'AbortError') logs.replaceChildren(errorBox(err));
  }
}

const bodyText = (b) => (typeof b === 'string' ? b : JSON.stringify(b));

function logTable(items) {
  if (!items.length) return h('p', { class: 'muted' }, 'No log records.');
  return h('div', { class: 'scroll' }, h('table', {},
    h('thead', {}, h('tr', {}, ['Time', 'Severity', 'Service', 'Body', 'Trace'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, items.map((l) => h('tr', {},
      h('td', {}, fmtTime(l.timeUnixNano || l.observedTimeUnixNano)), h('td', {}, l.severityText || l.severityNumber || ''),
      h('td', {}, l.service || ''), h('td', {}, bodyText(l.body)),
      h('td', {}, l.traceId ? link('traces/' + l.traceId, l.traceId.slice(0, 12)) : ''))))));
}

// ---------- container ----------

async function container(ctx, id) {
  setTitle('Container ' + id.slice(0, 12));
  const c = await api('containers/' + encodeURIComponent(id), { signal: ctx.signal });
  const cid = c.containerId || id;
  const first = BigInt(c.firstSeenUnixNano || nsAgo(3600e3));
  const last = BigInt(c.lastSeenUnixNano || nowNs());
  const start = (first - 3600n * 1000000000n).toString();
  const end = (last + 600n * 1000000000n).toString();
  const term = c.termination;
  const events = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const logs = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const traces = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const metrics = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const holds = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const bundle = h('div', { 'aria-live': 'polite' });
  const reason = h('input', { id: 'hold-reason', name: 'reason', required: true });
  const holdForm = h('form', { class: 'row' }, h('label', { for: 'hold-reason' }, 'Hold reason', reason), h('button', { type: 'submit' }, 'Place hold'));
  holdForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api('holds', { method: 'POST', body: { scope: 'container', id: cid, reason: reason.value, start: start, end: end }, signal: ctx.signal });
      reason.value = '';
      await loadHolds();
    } catch (err) {
      holds.prepend(errorBox(err));
    }
  });
  const buildBtn = h('button', { type: 'button', class: 'secondary' }, 'Build evidence bundle');
  buildBtn.addEventListener('click', () => buildBundle(ctx, bundle, { scope: 'container', id: cid, start, end }));

  show(h('h1', {}, 'Container ', h('code', {}, c.containerIdShort || cid.slice(0, 12))),
    term ? h('p', { class: 'error' }, `Terminated: ${term.reason || term.type}${term.exitCode !== null && term.exitCode !== undefined ? ' (exit ' + term.exitCode + ')' : ''} at ${fmtTime(term.timeUnixNano)}`) : h('p', {}, pill('running'), ' no termination recorded'),
    h('dl', { class: 'kv' },
      h('dt', {}, 'Container id'), h('dd', {}, cid),
      h('dt', {}, 'Name'), h('dd', {}, c.containerName || '—'),
      h('dt', {}, 'Pod'), h('dd', {}, `${c.podName || '—'} (${c.podUid || 'no uid'})`),
      h('dt', {}, 'Namespace'), h('dd', {}, c.namespace || '—'),
      h('dt', {}, 'Node'), h('dd', {}, c.nodeName || '—'),
      h('dt', {}, 'Image'), h('dd', {}, c.image || '—'),
      h('dt', {}, 'Services'), h('dd', {}, (c.services || []).join(', ') || '—'),
      h('dt', {}, 'Seen'), h('dd', {}, `${fmtTime(c.firstSeenUnixNano)} – ${fmtTime(c.lastSeenUnixNano)}`),
      h('dt', {}, 'Signals'), h('dd', {}, (c.signals || []).join(', '))),
    h('section', { 'aria-labelledby': 'h-forensics' }, h('h2', { id: 'h-forensics' }, 'Forensics'), holdForm, holds, buildBtn, bundle),
    h('section', { 'aria-labelledby': 'h-cevents' }, h('h2', { id: 'h-cevents' }, 'Events'), events),
    h('section', { 'aria-labelledby': 'h-ctraces' }, h('h2', { id: 'h-ctraces' }, 'Traces'), traces),
    h('section', { 'aria-labelledby': 'h-cmetrics' }, h('h2', { id: 'h-cmetrics' }, 'Metrics'), metrics),
    h('section', { 'aria-labelledby': 'h-clogs' }, h('h2', { id: 'h-clogs' }, 'Logs'), logs));

  const loadHolds = async () => {
    const all = await api('holds', { signal: ctx.signal });
    const mine = (all.items || []).filter((x) => x.target === cid || cid.startsWith(x.target) || x.target.startsWith(cid));
    holds.replaceChildren(mine.length ? h('ul', { class: 'holds' }, mine.map((x) => h('li', {}, pill(x.status), ` ${x.reason} — since ${fmtTime(x.createdAt)} by ${x.createdBy || ''}`))) : h('p', { class: 'muted' }, 'No hold on this container.'));
  };
  const settle = async (el, fn) => {
    try {
      el.replaceChildren(await fn());
    } catch (err) {
      if (err.name !== 'AbortError') el.replaceChildren(errorBox(err));
    }
  };
  await Promise.all([
    loadHolds().catch((err) => holds.replaceChildren(errorBox(err))),
    settle(events, async () => {
      const page = await api('events' + q({ containerId: cid, start, end, limit: 200 }), { signal: ctx.signal });
      const items = page.items || [];
      return items.length ? h('ul', {}, items.map((e) => h('li', {}, `${fmtTime(e.timeUnixNano)} `, h('strong', {}, e.type), ` ${e.reason || ''} ${e.message || ''}`))) : h('p', { class: 'muted' }, 'No event.');
    }),
    settle(logs, async () => {
      const page = await api('logs' + q({ containerId: cid, start, end, limit: 100 }), { signal: ctx.signal });
      return logTable(page.items || []);
    }),
    (async () => {
      // One timeline read serves the traces and the metrics sections.
      let tl;
      try {
        tl = await api(`containers/${encodeURIComponent(cid)}/timeline` + q({ start, end, limit: 1000 }), { signal: ctx.signal });
      } catch (err) {
        if (err.name !== 'AbortError') [traces, metrics].forEach((el) => el.replaceChildren(errorBox(err)));
        return;
      }
      const seen = new Map();
      const series = new Map();
      for (const it of tl.items || []) {
        if (it.kind === 'span' && !seen.has(it.span.traceId)) seen.set(it.span.traceId, it);
        if (it.kind === 'metric') {
          const m = series.get(it.metric.name) || { name: it.metric.name, unit: it.metric.unit, n: 0, min: Infinity, max: -Infinity };
          m.n++;
          m.last = it.metric.value;
          m.min = Math.min(m.min, it.metric.value);
          m.max = Math.max(m.max, it.metric.value);
          series.set(it.metric.name, m);
        }
      }
      traces.replaceChildren(seen.size ? h('ul', {}, [...seen.values()].slice(0, 50).map((it) => h('li', {}, link('traces/' + it.span.traceId, it.span.traceId.slice(0, 16)), ` ${fmtTime(it.timeUnixNano)} ${it.span.service} ${it.span.name} ${fmtDur(it.span.durationNs)}`))) : h('p', { class: 'muted' }, 'No span.'));
      metrics.replaceChildren(series.size ? h('div', { class: 'scroll' }, h('table', {},
        h('thead', {}, h('tr', {}, ['Metric', 'Points', 'Last', 'Min', 'Max', 'Unit'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, [...series.values()].map((m) => h('tr', {}, h('td', {}, m.name), h('td', {}, m.n), h('td', {}, m.last), h('td', {}, m.min), h('td', {}, m.max), h('td', {}, m.unit || '')))))) : h('p', { class: 'muted' }, 'No metric point.'));
    })(),
  ]);
}

async function buildBundle(ctx, el, request) {
  el.replaceChildren(h('p', {}, 'Building the bundle…'));
  try {
    let b = await api('evidence', { method: 'POST', body: request, signal: ctx.signal });
    for (let i = 0; i < 300 && (b.status === 'pending' || b.status === 'running'); i++) {
      await new Promise((r) => setTimeout(r, 500));
      b = await api('evidence/' + b.id, { signal: ctx.signal });
    }
    el.replaceChildren(bundleCard(ctx, b));
  } catch (err) {
    if (err.name !== 'AbortError') el.replaceChildren(errorBox(err));
  }
}

function bundleCard(ctx, b) {
  const custody = h('ol', { class: 'custody', 'aria-label': 'Chain of custody' });
  const card = h('div', { class: 'card bundle' },
    h('p', {}, 'Bundle ', h('code', {}, b.id), ' ', pill(b.status), b.error ? ' ' + b.error : ''),
    b.status === 'done' ? h('p', {}, `${b.archiveBytes} bytes · sha256 `, h('code', {}, b.archiveSha256)) : null,
    h('h3', {}, 'Chain of custody'), custody);
  const loadCustody = async () => {
    const page = await api(`evidence/${b.id}/custody`, { signal: ctx.signal });
    custody.replaceChildren(...(page.items || []).map((x) => h('li', {}, `${fmtTime(x.at)} ${x.action} by ${x.actor}`)));
  };
  if (b.status === 'done') {
    const dl = h('button', { type: 'button', id: 'download-bundle' }, 'Download bundle');
    dl.addEventListener('click', async () => {
      // The download needs the key, so it is fetched here and handed to the browser as a file.
      const blob = await api(`evidence/${b.id}/download`, { blob: true, signal: ctx.signal });
      const a = h('a', { href: URL.createObjectURL(blob), download: `evidence-${b.id}.tar.gz` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
      loadCustody().catch(() => {});
    });
    card.insertBefore(dl, card.children[2]);
  }
  loadCustody().catch((err) => custody.replaceChildren(errorBox(err)));
  return card;
}

// ---------- search ----------

async function search(ctx) {
  const p = ctx.params;
  const kind = p.get('kind') || 'traces';
  setTitle('Search ' + kind);
  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Search kind' }, ['traces', 'logs', 'events'].map((k) =>
    link('search?kind=' + k, k[0].toUpperCase() + k.slice(1), k === kind ? { 'aria-current': 'page' } : {})));
  const field = (id, label, attrs = {}) => h('label', { for: id }, label, h('input', { id, name: id, value: p.get(id) || '', ...attrs }));
  const win = h('label', { for: 'window' }, 'Within', h('select', { id: 'window', name: 'window' },
    Object.keys(windows).map((k) => h('option', { value: k, selected: k === (p.get('window') || '1h') }, k))));
  const fields = {
    traces: [field('service', 'Service'), field('operation', 'Operation'), field('minDuration', 'Min duration (ms)', { type: 'number', min: '0' }), h('label', { for: 'errors' }, 'Status', h('select', { id: 'errors', name: 'errors' }, [['', 'any'], ['1', 'with errors']].map(([v, t]) => h('option', { value: v, selected: v === (p.get('errors') || '') }, t))))],
    logs: [field('q', 'Text'), field('service', 'Service'), field('severityMin', 'Severity at least', { type: 'number', min: '1', max: '24' }), field('traceId', 'Trace id')],
    events: [field('namespace', 'Namespace'), field('type', 'Type (e.g. oom_killed)'), field('containerId', 'Container id')],
  }[kind];
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Search ' + kind }, h('input', { type: 'hidden', name: 'kind', value: kind }), fields, win, h('button', { type: 'submit' }, 'Search'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    go('search' + q(Object.fromEntries(new FormData(form))));
  });
  const out = h('div', { 'aria-live': 'polite' });
  show(h('h1', {}, 'Search'), tabs, form, out);
  if (![...p.keys()].some((k) => k !== 'kind')) return;
  const start = p.get('start') || nsAgo(windows[p.get('window') || '1h']);
  const end = p.get('end') || nowNs();
  if (kind === 'traces') {
    const page = await api('traces' + q({ service: p.get('service'), start, end, limit: 200 }), { signal: ctx.signal });
    const op = p.get('operation');
    const minNs = Number(p.get('minDuration') || 0) * 1e6;
    const items = (page.items || []).filter((t) => (!op || (t.rootName || '').includes(op)) && Number(t.durationNs) >= minNs && (!p.get('errors') || t.errorCount > 0));
    out.replaceChildren(items.length ? h('div', { class: 'scroll' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Trace', 'Root', 'Start', 'Duration', 'Spans', 'Errors'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, items.map((t) => h('tr', {},
        h('td', {}, link('traces/' + t.traceId, t.traceId.slice(0, 16))), h('td', {}, `${t.rootService} ${t.rootName}`),
        h('td', {}, fmtTime(t.startTimeUnixNano)), h('td', {}, fmtDur(t.durationNs)), h('td', {}, t.spanCount), h('td', {}, t.errorCount)))))) : h('p', { class: 'muted' }, 'No trace matches.'));
  } else if (kind === 'logs') {
    const page = await api('logs' + q({ q: p.get('q'), service: p.get('service'), severityMin: p.get('severityMin'), traceId: p.get('traceId'), start, end, limit: 200 }), { signal: ctx.signal });
    out.replaceChildren(logTable(page.items || []));
  } else {
    const page = await api('events' + q({ namespace: p.get('namespace'), type: p.get('type'), containerId: p.get('containerId'), start, end, limit: 200 }), { signal: ctx.signal });
    const items = page.items || [];
    out.replaceChildren(items.length ? h('div', { class: 'scroll' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Time', 'Type', 'Reason', 'Namespace', 'Pod', 'Container'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, items.map((e) => h('tr', {},
        h('td', {}, fmtTime(e.timeUnixNano)), h('td', {}, e.type), h('td', {}, e.reason), h('td', {}, e.namespace), h('td', {}, e.podName),
        h('td', {}, e.containerId ? link('containers/' + e.containerId, e.containerId.slice(0, 12)) : '')))))) : h('p', { class: 'muted' }, 'No event matches.'));
  }
}

// ---------- forensics ----------

async function forensics(ctx) {
  setTitle('Forensics');
  const bundleId = h('input', { id: 'bundle-id', name: 'bundle', value: ctx.params.get('bundle') || '' });
  const bundleOut = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'row' }, h('label', { for: 'bundle-id' }, 'Evidence bundle id', bundleId), h('button', { type: 'submit' }, 'Show'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      bundleOut.replaceChildren(bundleCard(ctx, await api('evidence/' + encodeURIComponent(bundleId.value.trim()), { signal: ctx.signal })));
    } catch (err) {
      bundleOut.replaceChildren(errorBox(err));
    }
  });
  const list = await api('holds', { signal: ctx.signal });
  const items = list.items || [];
  show(h('h1', {}, 'Forensics'),
    h('h2', {}, 'Holds'),
    items.length ? h('div', { class: 'scroll' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Status', 'Scope', 'Target', 'Reason', 'Created', 'Copied rows'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, items.map((x) => h('tr', {},
        h('td', {}, pill(x.status)), h('td', {}, x.scope),
        h('td', {}, x.scope === 'container' ? link('containers/' + x.target, x.target.slice(0, 12)) : x.scope === 'trace' ? link('traces/' + x.target, x.target.slice(0, 16)) : x.scope === 'incident' ? link('incidents/' + x.target, x.target) : x.target),
        h('td', {}, x.reason), h('td', {}, `${fmtTime(x.createdAt)} ${x.createdBy || ''}`), h('td', {}, x.copiedRows ?? '')))))) : h('p', { class: 'muted' }, 'No hold.'),
    h('h2', {}, 'Evidence bundle'), form, bundleOut);
}

render();
