// deflectd inbox: the agents' and supervisors' page. A client of the
// inbox API (/api/v1/inbox/) and its live event stream; every rule is on
// the server. Preact with htm, vendored (see vendor/README.md).
import { html, render, useState, useEffect, useRef, useCallback } from './vendor/htm-preact-standalone.module.js';

const API = '/api/v1/inbox/';

// ---- words, in Spanish and English ----

const words = {
  en: {
    signIn: 'Sign in', user: 'User', password: 'Password', signOut: 'Sign out', language: 'Language',
    unassigned: 'Unassigned', mine: 'Mine', pending: 'Pending', availability: 'Availability',
    online: 'Online', away: 'Away', offline: 'Offline', empty: 'Nothing here.', choose: 'Choose a conversation.',
    take: 'Take', send: 'Send', reply: 'Reply', replyHint: 'Enter sends, Shift+Enter adds a line.',
    windowLeft: 'Window left', windowClosed: 'The 24-hour window is closed: only a template reaches the customer.',
    context: 'From the call', queue: 'Queue', option: 'Menu option', reason: 'Reason', waited: 'Waited', ewt: 'Estimated wait',
    position: 'Position', answered: 'Answered', button: 'Tapped', handoff: 'Handoff', from: 'From', priority: 'Priority',
    nextStep: 'Next step', tag: 'Tag', owner: 'Owner', team: 'Team', nobody: 'nobody', forbidden: 'You may not open this conversation.',
    notFound: 'No such conversation.', queued: 'pending', sent: 'sent', delivered: 'delivered', read: 'read', failed: 'failed',
    seenUnanswered: 'seen, unanswered', unseen: 'unseen', live: 'live', reconnecting: 'reconnecting…',
    handOff: 'Hand off', to: 'To', high: 'high', medium: 'medium', low: 'low', cancel: 'Cancel', submit: 'Hand off',
    resolve: 'Resolve', note: 'Closing note', kind: 'Closing kind', next_step: 'next step', question: 'question',
    confirmation: 'confirmation', reopen: 'Reopen', template: 'Template', sendTemplate: 'Send template',
    quickReplies: 'Quick replies', search: 'Search number or name', allTeams: 'all teams', anyPriority: 'any priority',
    tagFilter: 'Tag', filters: 'Filters', agents: 'Agents', load: 'open', today: 'Today', firstResponse: 'First response',
    seenPct: 'Seen and unanswered', resolvedToday: 'Resolved', lostToday: 'Chats lost', reassign: 'Reassign to',
    notify: 'Allow notifications', alertCritical: 'A chat of yours is waiting', alertEscalated: 'A chat escalated',
    shortcuts: 'Keyboard shortcuts', close: 'Close', keyMove: 'move in the list', keyOpen: 'open the chat', keyTake: 'take it',
    keySearch: 'search', keyHelp: 'this help', resolved: 'resolved', sending: 'sending…', dismiss: 'Dismiss',
  },
  es: {
    signIn: 'Ingresar', user: 'Usuario', password: 'Contraseña', signOut: 'Salir', language: 'Idioma',
    unassigned: 'Sin asignar', mine: 'Míos', pending: 'Pendientes', availability: 'Disponibilidad',
    online: 'En línea', away: 'Ausente', offline: 'Desconectado', empty: 'No hay nada acá.', choose: 'Elegí una conversación.',
    take: 'Tomar', send: 'Enviar', reply: 'Respuesta', replyHint: 'Enter envía, Shift+Enter agrega una línea.',
    windowLeft: 'Ventana restante', windowClosed: 'La ventana de 24 horas está cerrada: solo una plantilla llega al cliente.',
    context: 'De la llamada', queue: 'Cola', option: 'Opción del menú', reason: 'Motivo', waited: 'Esperó', ewt: 'Espera estimada',
    position: 'Posición', answered: 'Respondió a', button: 'Tocó', handoff: 'Derivación', from: 'De', priority: 'Prioridad',
    nextStep: 'Próximo paso', tag: 'Etiqueta', owner: 'Responsable', team: 'Equipo', nobody: 'nadie', forbidden: 'No podés abrir esta conversación.',
    notFound: 'No existe esa conversación.', queued: 'pendiente', sent: 'enviado', delivered: 'entregado', read: 'leído', failed: 'falló',
    seenUnanswered: 'visto, sin respuesta', unseen: 'sin ver', live: 'en vivo', reconnecting: 'reconectando…',
    handOff: 'Derivar', to: 'A', high: 'alta', medium: 'media', low: 'baja', cancel: 'Cancelar', submit: 'Derivar',
    resolve: 'Resolver', note: 'Nota de cierre', kind: 'Tipo de cierre', next_step: 'próximo paso', question: 'pregunta',
    confirmation: 'confirmación', reopen: 'Reabrir', template: 'Plantilla', sendTemplate: 'Enviar plantilla',
    quickReplies: 'Respuestas rápidas', search: 'Buscar número o nombre', allTeams: 'todos los equipos', anyPriority: 'cualquier prioridad',
    tagFilter: 'Etiqueta', filters: 'Filtros', agents: 'Agentes', load: 'abiertos', today: 'Hoy', firstResponse: 'Primera respuesta',
    seenPct: 'Vistos sin respuesta', resolvedToday: 'Resueltos', lostToday: 'Chats perdidos', reassign: 'Reasignar a',
    notify: 'Permitir notificaciones', alertCritical: 'Un chat tuyo está esperando', alertEscalated: 'Un chat escaló',
    shortcuts: 'Atajos de teclado', close: 'Cerrar', keyMove: 'moverse en la lista', keyOpen: 'abrir el chat', keyTake: 'tomarlo',
    keySearch: 'buscar', keyHelp: 'esta ayuda', resolved: 'resuelto', sending: 'enviando…', dismiss: 'Cerrar',
  },
};

function pickLang() {
  const saved = localStorage.getItem('deflectd.lang');
  if (saved && words[saved]) return saved;
  return (navigator.language || 'en').toLowerCase().startsWith('es') ? 'es' : 'en';
}

// ---- the API ----

let csrf = '';

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  const r = await fetch(API + path, { method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!r.ok) {
    const e = new Error((data && data.error && data.error.message) || r.statusText);
    e.status = r.status;
    e.code = data && data.error && data.error.code;
    e.field = data && data.error && data.error.field;
    throw e;
  }
  return data;
}

// ---- small pieces ----

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const two = (n) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(r)}` : `${m}:${two(r)}`;
}

// hashConversation reads the open conversation from the URL (#/c/<id>);
// a malformed one opens nothing.
function hashConversation() {
  const m = location.hash.match(/^#\/c\/(.+)$/);
  if (!m) return '';
  try { return decodeURIComponent(m[1]); } catch { return ''; }
}

function levelOf(item) {
  const l = item.level;
  return l === 'critical' || l === 'escalated' ? l : 'normal';
}

// useNow re-renders every second, for the timers.
function useNow() {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  return now;
}

// ---- login ----

function Login({ t, onIn }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const submit = async (ev) => {
    ev.preventDefault();
    setError('');
    try {
      const r = await api('POST', 'login', { user, password });
      csrf = r.csrf_token;
      // Signing in is coming to work: online, so chats may wait on you.
      await api('PUT', 'availability', { status: 'online' }).catch(() => {});
      onIn();
    } catch (e) {
      setError(e.message);
    }
  };
  return html`<main class="login">
    <h1>deflectd inbox</h1>
    <form onSubmit=${submit}>
      <label for="login-user">${t.user}</label>
      <input id="login-user" name="user" autocomplete="username" value=${user} onInput=${(e) => setUser(e.target.value)} required />
      <label for="login-password">${t.password}</label>
      <input id="login-password" name="password" type="password" autocomplete="current-password" value=${password}
        onInput=${(e) => setPassword(e.target.value)} required />
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <p><button class="primary" type="submit">${t.signIn}</button></p>
    </form>
  </main>`;
}

// ---- the list ----

function Row({ t, item, fetched, now, current, onOpen }) {
  const waited = item.pending ? item.waited_s + (now - fetched) / 1000 : 0;
  const level = levelOf(item);
  return html`<li><button class="row" id=${'row-' + item.id} data-id=${item.id} aria-current=${current ? 'true' : 'false'}
      onClick=${() => onOpen(item.id)}>
    <span class="top"><strong>${item.name || '+' + item.contact}</strong>
      ${item.pending && html`<span class=${'timer ' + level} data-level=${level}
        title=${item.seen ? t.seenUnanswered : t.unseen}>${clock(waited)}</span>`}</span>
    <span class="preview">${item.team}${item.owner ? ' · ' + item.owner : ''} · ${item.preview || ''}</span>
  </button></li>`;
}

// ---- the conversation ----

function Ticks({ t, m }) {
  if (m.direction !== 'out') return null;
  const state = m.state || 'queued';
  const mark = { queued: '🕓', sent: '✓', delivered: '✓✓', read: '✓✓', failed: '⚠' }[state] || '';
  const why = m.error ? ` (${m.error.code}: ${m.error.title})` : '';
  return html`<span class=${'ticks ' + state} data-state=${state}>${mark} ${t[state] || state}${why}</span>`;
}

function ContextCard({ t, c }) {
  if (!c) return null;
  const min = (ns) => ns ? `${Math.round(ns / 6e10)} min` : '–';
  return html`<section class="card" aria-labelledby="context-h">
    <h3 id="context-h">${t.context}</h3>
    <dl>
      <dt>${t.queue}</dt><dd>${c.queue || '–'}</dd>
      <dt>${t.option}</dt><dd>${c.option || '–'}</dd>
      <dt>${t.reason}</dt><dd>${c.reason || '–'}</dd>
      <dt>${t.waited}</dt><dd>${min(c.waited_ns)}</dd>
      <dt>${t.ewt}</dt><dd>${min(c.ewt_ns)}</dd>
      <dt>${t.position}</dt><dd>${c.position || '–'}</dd>
      <dt>${t.answered}</dt><dd>${c.template || '–'}</dd>
      <dt>${t.button}</dt><dd>${c.button || '–'}</dd>
    </dl>
  </section>`;
}

function HandoffCard({ t, h }) {
  if (!h) return null;
  return html`<section class="card" aria-labelledby="handoff-h">
    <h3 id="handoff-h">${t.handoff}</h3>
    <dl>
      <dt>${t.from}</dt><dd>${h.from_agent || h.from_team} → ${h.to_agent || h.to_team}</dd>
      <dt>${t.reason}</dt><dd>${h.reason}</dd>
      <dt>${t.priority}</dt><dd>${h.priority}</dd>
      <dt>${t.nextStep}</dt><dd>${h.next_step}</dd>
      <dt>${t.tag}</dt><dd>${h.tag}</dd>
    </dl>
  </section>`;
}

// FieldError shows the API's 400 under the field it names.
function fieldProps(err, name) {
  return err && err.field === name ? { 'aria-invalid': 'true', 'aria-describedby': 'err-' + name } : {};
}
function FieldError({ err, name, label }) {
  if (!err || err.field !== name) return null;
  return html`<p class="error" id=${'err-' + name} role="alert" data-field=${name}>${label}: ${err.message}</p>`;
}

function HandoffForm({ t, teams, onSubmit, onCancel }) {
  const [f, setF] = useState({ to_team: teams[0] || '', reason: '', priority: 'medium', next_step: '', tag: '' });
  const [err, setErr] = useState(null);
  const set = (k) => (e) => setF({ ...f, [k]: e.target.value });
  const submit = async (e) => {
    e.preventDefault();
    setErr(await onSubmit(f));
  };
  return html`<form class="card" id="handoff-form" onSubmit=${submit} aria-labelledby="handoff-form-h" novalidate>
    <h3 id="handoff-form-h">${t.handOff}</h3>
    <label for="ho-team">${t.to}</label>
    <select id="ho-team" value=${f.to_team} onChange=${set('to_team')} ...${fieldProps(err, 'to_team')}>
      ${teams.map((x) => html`<option value=${x}>${x}</option>`)}</select>
    <${FieldError} err=${err} name="to_team" label=${t.to} />
    <label for="ho-reason">${t.reason}</label>
    <input id="ho-reason" value=${f.reason} onInput=${set('reason')} ...${fieldProps(err, 'reason')} />
    <${FieldError} err=${err} name="reason" label=${t.reason} />
    <label for="ho-priority">${t.priority}</label>
    <select id="ho-priority" value=${f.priority} onChange=${set('priority')} ...${fieldProps(err, 'priority')}>
      ${['high', 'medium', 'low'].map((x) => html`<option value=${x}>${t[x]}</option>`)}</select>
    <${FieldError} err=${err} name="priority" label=${t.priority} />
    <label for="ho-next">${t.nextStep}</label>
    <input id="ho-next" value=${f.next_step} onInput=${set('next_step')} ...${fieldProps(err, 'next_step')} />
    <${FieldError} err=${err} name="next_step" label=${t.nextStep} />
    <label for="ho-tag">${t.tag}</label>
    <input id="ho-tag" value=${f.tag} onInput=${set('tag')} ...${fieldProps(err, 'tag')} />
    <${FieldError} err=${err} name="tag" label=${t.tag} />
    ${err && !err.field && html`<p class="error" role="alert">${err.message}</p>`}
    <div class="actions"><button class="primary" type="submit" id="ho-submit">${t.submit}</button>
      <button type="button" onClick=${onCancel}>${t.cancel}</button></div>
  </form>`;
}

function ResolveForm({ t, onSubmit, onCancel }) {
  const [f, setF] = useState({ note: '', kind: 'confirmation' });
  const [err, setErr] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setErr(await onSubmit(f));
  };
  return html`<form class="card" id="resolve-form" onSubmit=${submit} aria-labelledby="resolve-form-h" novalidate>
    <h3 id="resolve-form-h">${t.resolve}</h3>
    <label for="rs-note">${t.note}</label>
    <textarea id="rs-note" value=${f.note} onInput=${(e) => setF({ ...f, note: e.target.value })} ...${fieldProps(err, 'note')}></textarea>
    <${FieldError} err=${err} name="note" label=${t.note} />
    <label for="rs-kind">${t.kind}</label>
    <select id="rs-kind" value=${f.kind} onChange=${(e) => setF({ ...f, kind: e.target.value })}>
      ${['next_step', 'question', 'confirmation'].map((x) => html`<option value=${x}>${t[x]}</option>`)}</select>
    ${err && !err.field && html`<p class="error" role="alert">${err.message}</p>`}
    <div class="actions"><button class="primary" type="submit" id="rs-submit">${t.resolve}</button>
      <button type="button" onClick=${onCancel}>${t.cancel}</button></div>
  </form>`;
}

function TemplatePicker({ t, busy, onSend }) {
  const [list, setList] = useState([]);
  const [pick, setPick] = useState('');
  useEffect(() => {
    api('GET', 'templates').then((r) => {
      setList(r.templates);
      if (r.templates.length) setPick(r.templates[0].name + '|' + r.templates[0].language);
    }).catch((e) => setLoadError(e.message));
  }, []);
  const [loadError, setLoadError] = useState('');
  const send = () => {
    const [name, language] = pick.split('|');
    onSend({ name, language });
  };
  return html`<div class="card" id="template-picker">
    <p role="status">${t.windowClosed}</p>
    <label for="tpl-pick">${t.template}</label>
    <select id="tpl-pick" value=${pick} onChange=${(e) => setPick(e.target.value)}>
      ${list.map((x) => html`<option value=${x.name + '|' + x.language}>${x.name} (${x.language})</option>`)}</select>
    <button class="primary" id="tpl-send" disabled=${!pick || busy} onClick=${send}>${t.sendTemplate}</button>
    ${loadError && html`<p class="error" role="alert">${loadError}</p>`}
  </div>`;
}

function Conversation({ t, me, agents, id, version, onChanged }) {
  const [d, setD] = useState(null);
  const [error, setError] = useState(null);
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const [form, setForm] = useState('');
  const [quick, setQuick] = useState([]);
  const [sending, setSending] = useState('');
  const [actionError, setActionError] = useState('');
  const seenFor = useRef('');
  // One id per draft (and per template): a send retried after an error
  // (the answer lost on the way back) is the same message, which the
  // server sends once.
  const draftID = useRef({ text: '', id: '' });
  const tplID = useRef({ key: '', id: '' });
  useEffect(() => {
    api('GET', 'conversations/' + encodeURIComponent(id) + '/quick-replies').then((r) => setQuick(r.quick_replies || [])).catch(() => {});
  }, [id]);

  const load = useCallback(async () => {
    try {
      const detail = await api('GET', 'conversations/' + encodeURIComponent(id));
      setD(detail);
      setError(null);
      // Opening the chat after the customer wrote marks it seen (and
      // read on WhatsApp); once per customer message.
      const mark = detail.pending_msg || '';
      if (detail.actions.includes('seen') && mark && seenFor.current !== id + mark && !detail.seen) {
        seenFor.current = id + mark;
        api('POST', 'conversations/' + encodeURIComponent(id) + '/seen').catch(() => {});
      }
    } catch (e) {
      setD(null);
      setError(e);
    }
  }, [id]);
  useEffect(() => { load(); }, [load, version]);

  if (error) {
    const msg = error.status === 403 ? t.forbidden : error.status === 404 ? t.notFound : error.message;
    return html`<section class="pane" aria-live="polite"><p class="error" role="alert" data-status=${error.status}>${msg}</p></section>`;
  }
  if (!d) return html`<section class="pane"><p class="loading">…</p></section>`;

  // call runs an action; it returns the API's error (for a form to
  // show), or null.
  const call = async (path, body) => {
    setBusy(true);
    try {
      await api('POST', 'conversations/' + encodeURIComponent(id) + '/' + path, body);
      await load();
      onChanged();
      return null;
    } catch (e) {
      return e;
    } finally {
      setBusy(false);
    }
  };
  const act = async (path, body) => {
    const e = await call(path, body);
    setActionError(e ? e.message : '');
    return !e;
  };
  const clientID = () => 'w' + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
  const send = async () => {
    const body = text.trim();
    if (!body || sending) return;
    if (draftID.current.text !== body) draftID.current = { text: body, id: clientID() };
    // Pending until the outbox holds it: the API answers only then.
    setSending(body);
    setText('');
    const ok = await act('reply', { text: body, client_id: draftID.current.id });
    setSending('');
    if (ok) draftID.current = { text: '', id: '' };
    else setText(body);
  };

  const submitForm = (path) => async (body) => {
    const e = await call(path, body);
    if (!e) setForm('');
    return e;
  };
  const onKey = (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      send();
    }
  };
  const canReply = d.actions.includes('reply');
  const open = d.window_left_s > 0;
  const has = (a) => d.actions.includes(a);
  const others = (me.teams || []).filter((x) => x !== d.team).concat([d.team]);
  return html`<section class="pane" aria-labelledby="conv-h">
    <h2 id="conv-h">${d.name || '+' + d.contact}</h2>
    <p>${t.team}: ${d.team} · ${t.owner}: <span id="owner">${d.owner || t.nobody}</span> · ${t.priority}: ${d.priority}
      ${d.tags && d.tags.length ? ' · ' + d.tags.join(', ') : ''}</p>
    <div class="actions">
      ${has('claim') && !d.owner && html`<button class="primary" id="take" disabled=${busy} onClick=${() => act('claim')}>${t.take}</button>`}
      ${has('handoff') && html`<button id="handoff" disabled=${busy} onClick=${() => setForm('handoff')}>${t.handOff}</button>`}
      ${has('resolve') && html`<button id="resolve" disabled=${busy} onClick=${() => setForm('resolve')}>${t.resolve}</button>`}
      ${has('reopen') && d.status === 'resolved' && html`<button id="reopen" disabled=${busy} onClick=${() => act('reopen')}>${t.reopen}</button>`}
      ${has('reassign') && agents.length > 0 && html`<label>${t.reassign} <select id="reassign" onChange=${(e) => e.target.value && act('reassign', { to_agent: e.target.value })}>
        <option value="">–</option>${agents.filter((a) => a.role === 'agent').map((a) => html`<option value=${a.id}>${a.name}</option>`)}</select></label>`}
    </div>
    ${actionError && html`<p class="error" role="alert" id="action-error">${actionError}</p>`}
    ${form === 'handoff' && html`<${HandoffForm} t=${t} teams=${others} onSubmit=${submitForm('handoff')} onCancel=${() => setForm('')} />`}
    ${form === 'resolve' && html`<${ResolveForm} t=${t} onSubmit=${submitForm('resolve')} onCancel=${() => setForm('')} />`}
    <${HandoffCard} t=${t} h=${d.handoff} />
    <${ContextCard} t=${t} c=${d.context} />
    <ol class="messages" aria-label="messages">
      ${[...d.messages].sort((a, b) => (Date.parse(a.time) - Date.parse(b.time)) || (a.seq - b.seq)).map((m) => html`<li class=${'msg ' + m.direction} data-id=${m.id}>
        <div>${m.text || (m.template ? '[' + m.template.name + ']' : m.button_payload ? '[' + m.type + ']' : '[' + m.type + ']')}</div>
        <div class="meta">${new Date(m.time).toLocaleTimeString()} ${m.author ? '· ' + m.author : ''} <${Ticks} t=${t} m=${m} /></div>
      </li>`)}
      ${sending && html`<li class="msg out" id="sending"><div>${sending}</div><div class="meta">${t.sending}</div></li>`}
    </ol>
    ${d.failure && html`<p class="error" role="status">${d.failure.code}: ${d.failure.title}</p>`}
    ${canReply && (open ? html`<div class="reply">
        ${quick.length > 0 && html`<div class="actions" role="group" aria-label=${t.quickReplies}>
          ${quick.map((q) => html`<button type="button" class="quick" data-id=${q.id} onClick=${() => setText(q.text)}>${q.title}</button>`)}</div>`}
        <label for="reply-text">${t.reply} · ${t.windowLeft} ${clock(d.window_left_s)}</label>
        <textarea id="reply-text" value=${text} onInput=${(e) => setText(e.target.value)} onKeyDown=${onKey}
          aria-describedby="reply-hint"></textarea>
        <p id="reply-hint" class="meta">${t.replyHint}</p>
        <button class="primary" id="send" disabled=${busy || !text.trim()} onClick=${send}>${t.send}</button>
      </div>` : html`<${TemplatePicker} t=${t} busy=${busy} onSend=${async (tp) => {
        const key = tp.name + '|' + tp.language;
        if (tplID.current.key !== key) tplID.current = { key, id: clientID() };
        if (await act('template', { ...tp, client_id: tplID.current.id })) tplID.current = { key: '', id: '' };
      }} />`)}
  </section>`;
}

// ---- the page ----

function Inbox({ t, me, lang, setLang, onOut }) {
  const sup = me.user.role === 'supervisor';
  const [view, setView] = useState(sup ? 'pending' : 'unassigned');
  const [counts, setCounts] = useState({ unassigned: 0, mine: 0, pending: 0 });
  const [page, setPage] = useState({ items: [], fetched: Date.now() });
  const [current, setCurrent] = useState(hashConversation());
  const [version, setVersion] = useState(0);
  const [live, setLive] = useState(false);
  const [presence, setPresence] = useState(me.presence.status || 'offline');
  const [filter, setFilter] = useState({ team: '', tag: '', priority: '', q: '' });
  const [alerts, setAlerts] = useState([]);
  const [agents, setAgents] = useState([]);
  const [today, setToday] = useState(null);
  const [help, setHelp] = useState(false);
  const [cursor, setCursor] = useState(0);
  const [listError, setListError] = useState('');
  const now = useNow();

  // Answers can come back out of order: only the latest request's counts.
  const seq = useRef(0);
  const refresh = useCallback(async () => {
    const mine = ++seq.current;
    const q = new URLSearchParams({ view });
    for (const [k, v] of Object.entries(filter)) if (v.trim()) q.set(k, v.trim());
    try {
      const [c, p] = await Promise.all([api('GET', 'counts'), api('GET', 'conversations?' + q)]);
      if (mine !== seq.current) return;
      setCounts(c);
      setPage({ items: p.items, fetched: Date.now() });
      setListError('');
      if (sup) {
        const [a, d] = await Promise.all([api('GET', 'agents'), api('GET', 'today')]);
        setAgents(a.agents);
        setToday(d);
      }
    } catch (e) {
      if (e.status === 401) onOut();
      else setListError(e.message);
    }
  }, [view, filter]);
  useEffect(() => { refresh(); }, [refresh]);

  // An alert (the owner's chat turned critical) or an escalation (for
  // supervisors) shows in the page, and as a browser notification when
  // the agent allowed them.
  const onAlert = useCallback((ev) => {
    let e = null;
    try { e = JSON.parse(ev.data); } catch { return; }
    // Critical: the owner is alerted; escalated: the supervisors are
    // notified, and the owner sees it too.
    const mine = (e.to || []).includes(me.user.id) || e.owner === me.user.id;
    if (!mine) return;
    const title = ev.type === 'escalation' ? t.alertEscalated : t.alertCritical;
    setAlerts((a) => [...a.filter((x) => x.conversation !== e.conversation), e].slice(-5));
    if (window.Notification && Notification.permission === 'granted') {
      new Notification(title, { body: '+' + (e.conversation || '').replace(/^wa/, ''), tag: e.conversation });
    }
  }, [t]);

  // The stream is opened once; it calls the latest refresh and alert
  // handler through refs, so typing a filter does not reopen it.
  const refreshRef = useRef(refresh);
  refreshRef.current = refresh;
  const alertRef = useRef(onAlert);
  alertRef.current = onAlert;
  const reloadMe = useCallback(async () => {
    try {
      const m = await api('GET', 'me');
      csrf = m.csrf_token || csrf;
      setPresence(m.presence.status || 'offline');
    } catch (e) {
      if (e.status === 401) onOut();
    }
  }, []);

  // Live: events refresh the lists and the open conversation, at most
  // every 250 ms. A stream the browser gave up on (an answer other than
  // 200: an expired session, an instance shutting down) is opened again
  // with a growing pause, after checking the session.
  useEffect(() => {
    let es = null, timer = null, retry = null, wait = 1000, closed = false;
    const poke = () => {
      if (timer) return;
      timer = setTimeout(() => { timer = null; refreshRef.current(); setVersion((v) => v + 1); }, 250);
    };
    const open = () => {
      es = new EventSource(API + 'events');
      es.onopen = () => { setLive(true); wait = 1000; reloadMe(); poke(); };
      es.onerror = () => {
        setLive(false);
        if (es.readyState === EventSource.CLOSED && !closed) {
          retry = setTimeout(() => { reloadMe(); open(); }, wait);
          wait = Math.min(wait * 2, 30000);
        }
      };
      es.addEventListener('alert', (ev) => alertRef.current(ev));
      es.addEventListener('escalation', (ev) => alertRef.current(ev));
      es.addEventListener('availability', (ev) => {
        try { if (JSON.parse(ev.data).data.agent === me.user.id) reloadMe(); } catch { /* not ours */ }
      });
      for (const type of ['conversation.created', 'message.in', 'message.out', 'message.status', 'claimed', 'unassigned',
      'handoff', 'reassigned', 'resolved', 'reopened', 'seen', 'level', 'alert', 'escalation', 'window.expired', 'lost',
        'availability', 'csat', 'updated', 'reset']) {
        es.addEventListener(type, poke);
      }
    };
    open();
    return () => { closed = true; clearTimeout(timer); clearTimeout(retry); if (es) es.close(); };
  }, []);

  // Keyboard: j/k move, Enter opens, t takes, / searches, ? helps.
  const items = page.items;
  useEffect(() => {
    const onKey = (e) => {
      const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement && document.activeElement.tagName);
      if (e.key === 'Escape') { setHelp(false); return; }
      if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
      const at = Math.min(cursor, Math.max(items.length - 1, 0));
      if (e.key === 'j' || e.key === 'k') {
        const next = Math.max(0, Math.min(items.length - 1, at + (e.key === 'j' ? 1 : -1)));
        setCursor(next);
        const el = items[next] && document.getElementById('row-' + items[next].id);
        if (el) el.focus();
      } else if (e.key === 'Enter' && items[at] && !(document.activeElement && document.activeElement.tagName === 'BUTTON')) {
        openConv(items[at].id);
      } else if (e.key === 't') {
        const b = document.getElementById('take');
        if (b) b.click();
      } else if (e.key === '/') {
        e.preventDefault();
        const s = document.getElementById('search');
        if (s) s.focus();
      } else if (e.key === '?') {
        setHelp(true);
      } else {
        return;
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [items, cursor]);

  useEffect(() => {
    const onHash = () => setCurrent(hashConversation());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  const openConv = (id) => { location.hash = '#/c/' + encodeURIComponent(id); };

  const setAvailability = async (status) => {
    try {
      const p = await api('PUT', 'availability', { status });
      setPresence(p.status);
    } catch (e) {
      alert(e.message);
    }
  };
  const signOut = async () => {
    try { await api('POST', 'logout'); } finally { onOut(); }
  };
  const tab = (name) => html`<button role="tab" id=${'tab-' + name} aria-selected=${view === name ? 'true' : 'false'}
      aria-controls="list" onClick=${() => setView(name)}>${t[name]}<span class="count" id=${'count-' + name}>${counts[name] || 0}</span></button>`;
  return html`<div>
    <header>
      <h1>deflectd inbox</h1>
      <span>${me.user.name} (${me.user.role})</span>
      <label>${t.availability} <select id="availability" value=${presence} onChange=${(e) => setAvailability(e.target.value)}>
        ${['online', 'away', 'offline'].map((s) => html`<option value=${s}>${t[s]}</option>`)}
      </select></label>
      <label>${t.language} <select id="language" value=${lang} onChange=${(e) => setLang(e.target.value)}>
        <option value="es">Español</option><option value="en">English</option>
      </select></label>
      <span id="live" role="status">${live ? t.live : t.reconnecting}</span>
      ${window.Notification && Notification.permission === 'default' &&
        html`<button id="notify" onClick=${() => Notification.requestPermission().then(() => setVersion((v) => v + 1))}>${t.notify}</button>`}
      <button id="help" aria-label=${t.shortcuts} onClick=${() => setHelp(true)}>?</button>
      <button id="signout" onClick=${signOut}>${t.signOut}</button>
    </header>
    ${alerts.length > 0 && html`<div class="alerts" role="alert">
      ${alerts.map((a) => html`<p class=${'alert ' + a.type}><a href=${'#/c/' + encodeURIComponent(a.conversation)}>${a.type === 'escalation' ? t.alertEscalated : t.alertCritical}: +${a.conversation.replace(/^wa/, '')}</a>
        <button onClick=${() => setAlerts((l) => l.filter((x) => x !== a))}>${t.dismiss}</button></p>`)}</div>`}
    ${help && html`<div class="card help" role="dialog" aria-modal="false" aria-labelledby="help-h">
      <h2 id="help-h">${t.shortcuts}</h2>
      <dl><dt><kbd>j</kbd> / <kbd>k</kbd></dt><dd>${t.keyMove}</dd><dt><kbd>Enter</kbd></dt><dd>${t.keyOpen}</dd>
        <dt><kbd>t</kbd></dt><dd>${t.keyTake}</dd><dt><kbd>/</kbd></dt><dd>${t.keySearch}</dd><dt><kbd>?</kbd></dt><dd>${t.keyHelp}</dd></dl>
      <button onClick=${() => setHelp(false)}>${t.close}</button></div>`}
    ${sup && today && html`<section class="dashboard" aria-label=${t.today}>
      <span>${t.firstResponse}: <strong id="kpi-first-response">${today.first_response_count ? clock(today.first_response_s) : '–'}</strong></span>
      <span>${t.pending}: <strong id="kpi-pending">${today.pending}</strong></span>
      <span>${t.seenPct}: <strong id="kpi-seen">${Math.round(today.seen_percent)}%</strong></span>
      <span>${t.resolvedToday}: <strong id="kpi-resolved">${Object.entries(today.resolved_by_agent || {}).map(([a, n]) => a + ' ' + n).join(', ') || '0'}</strong></span>
      <span>${t.lostToday}: <strong id="kpi-lost">${today.lost}</strong></span>
    </section>`}
    <div class="main">
      <div class="list">
        <nav class="tabs" role="tablist">${tab('unassigned')}${tab('mine')}${tab('pending')}</nav>
        <form class="filters" role="search" onSubmit=${(e) => e.preventDefault()} aria-label=${t.filters}>
          <label class="visually-hidden" for="search">${t.search}</label>
          <input id="search" type="search" placeholder=${t.search} value=${filter.q} onInput=${(e) => setFilter({ ...filter, q: e.target.value })} />
          <label class="visually-hidden" for="f-team">${t.team}</label>
          <select id="f-team" value=${filter.team} onChange=${(e) => setFilter({ ...filter, team: e.target.value })}>
            <option value="">${t.allTeams}</option>${(sup ? me.teams : me.user.teams).map((x) => html`<option value=${x}>${x}</option>`)}</select>
          <label class="visually-hidden" for="f-priority">${t.priority}</label>
          <select id="f-priority" value=${filter.priority} onChange=${(e) => setFilter({ ...filter, priority: e.target.value })}>
            <option value="">${t.anyPriority}</option>${['high', 'medium', 'low'].map((x) => html`<option value=${x}>${t[x]}</option>`)}</select>
          <label class="visually-hidden" for="f-tag">${t.tagFilter}</label>
          <input id="f-tag" placeholder=${t.tagFilter} value=${filter.tag} onInput=${(e) => setFilter({ ...filter, tag: e.target.value })} />
        </form>
        ${listError && html`<p class="error" role="alert" id="list-error">${listError}</p>`}
        <div id="list" role="tabpanel" aria-labelledby=${'tab-' + view}><ul>
          ${page.items.length === 0 ? html`<li class="empty">${t.empty}</li>` :
            page.items.map((it) => html`<${Row} key=${it.id} t=${t} item=${it} fetched=${page.fetched} now=${now}
              current=${it.id === current} onOpen=${openConv} />`)}
        </ul></div>
      </div>
      <div class="right">
      ${current ? html`<${Conversation} key=${current} t=${t} me=${me} agents=${agents} id=${current} version=${version} onChanged=${refresh} />`
        : html`<section class="pane"><p class="empty">${t.choose}</p></section>`}
      ${sup && agents.length > 0 && html`<section class="card agents" aria-labelledby="agents-h"><h2 id="agents-h">${t.agents}</h2>
        <ul>${agents.map((a) => html`<li data-agent=${a.id}>${a.name} · ${t[a.presence.status || 'offline'] || a.presence.status} · ${a.load} ${t.load}, ${a.pending} ${t.pending}</li>`)}</ul></section>`}
      </div>
    </div>
  </div>`;
}

function App() {
  const [lang, setLangState] = useState(pickLang());
  const [me, setMe] = useState(undefined); // undefined: loading; null: signed out
  const t = words[lang];
  const setLang = (l) => { localStorage.setItem('deflectd.lang', l); setLangState(l); };
  const loadMe = useCallback(async () => {
    try {
      const m = await api('GET', 'me');
      csrf = m.csrf_token || '';
      setMe(m);
    } catch {
      setMe(null);
    }
  }, []);
  useEffect(() => { loadMe(); }, [loadMe]);
  useEffect(() => { document.documentElement.lang = lang; }, [lang]);
  if (me === undefined) return html`<p class="loading">…</p>`;
  if (me === null) return html`<${Login} t=${t} onIn=${loadMe} />`;
  return html`<${Inbox} t=${t} me=${me} lang=${lang} setLang=${setLang} onOut=${() => { csrf = ''; setMe(null); }} />`;
}

render(html`<${App} />`, document.getElementById('app'));
