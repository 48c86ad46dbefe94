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

function Conversation({ t, id, version, onChanged }) {
  const [d, setD] = useState(null);
  const [error, setError] = useState(null);
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const seenFor = useRef('');

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

  const act = async (path, body) => {
    setBusy(true);
    try {
      await api('POST', 'conversations/' + encodeURIComponent(id) + '/' + path, body);
      await load();
      onChanged();
      return true;
    } catch (e) {
      setError(null);
      alert(e.message);
      return false;
    } finally {
      setBusy(false);
    }
  };
  const send = async () => {
    const body = text.trim();
    if (!body) return;
    const clientID = 'w' + Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
    if (await act('reply', { text: body, client_id: clientID })) setText('');
  };
  const onKey = (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      send();
    }
  };
  const canReply = d.actions.includes('reply');
  const open = d.window_left_s > 0;
  return html`<section class="pane" aria-labelledby="conv-h">
    <h2 id="conv-h">${d.name || '+' + d.contact}</h2>
    <p>${t.team}: ${d.team} · ${t.owner}: <span id="owner">${d.owner || t.nobody}</span> · ${t.priority}: ${d.priority}
      ${d.tags && d.tags.length ? ' · ' + d.tags.join(', ') : ''}</p>
    <div class="actions">
      ${d.actions.includes('claim') && !d.owner && html`<button class="primary" id="take" disabled=${busy} onClick=${() => act('claim')}>${t.take}</button>`}
    </div>
    <${HandoffCard} t=${t} h=${d.handoff} />
    <${ContextCard} t=${t} c=${d.context} />
    <ol class="messages" aria-label="messages">
      ${d.messages.map((m) => html`<li class=${'msg ' + m.direction} data-id=${m.id}>
        <div>${m.text || (m.template ? '[' + m.template.name + ']' : m.button_payload ? '[' + m.type + ']' : '[' + m.type + ']')}</div>
        <div class="meta">${new Date(m.time).toLocaleTimeString()} ${m.author ? '· ' + m.author : ''} <${Ticks} t=${t} m=${m} /></div>
      </li>`)}
    </ol>
    ${d.failure && html`<p class="error" role="status">${d.failure.code}: ${d.failure.title}</p>`}
    ${canReply && (open ? html`<div class="reply">
        <label for="reply-text">${t.reply} · ${t.windowLeft} ${clock(d.window_left_s)}</label>
        <textarea id="reply-text" value=${text} onInput=${(e) => setText(e.target.value)} onKeyDown=${onKey}
          aria-describedby="reply-hint"></textarea>
        <p id="reply-hint" class="meta">${t.replyHint}</p>
        <button class="primary" id="send" disabled=${busy || !text.trim()} onClick=${send}>${t.send}</button>
      </div>` : html`<p class="card" role="status">${t.windowClosed}</p>`)}
  </section>`;
}

// ---- the page ----

function Inbox({ t, me, lang, setLang, onOut }) {
  const sup = me.user.role === 'supervisor';
  const [view, setView] = useState(sup ? 'pending' : 'unassigned');
  const [counts, setCounts] = useState({ unassigned: 0, mine: 0, pending: 0 });
  const [page, setPage] = useState({ items: [], fetched: Date.now() });
  const [current, setCurrent] = useState(decodeURIComponent((location.hash.match(/^#\/c\/(.+)$/) || [])[1] || ''));
  const [version, setVersion] = useState(0);
  const [live, setLive] = useState(false);
  const [presence, setPresence] = useState(me.presence.status || 'offline');
  const now = useNow();

  const refresh = useCallback(async () => {
    try {
      const [c, p] = await Promise.all([api('GET', 'counts'), api('GET', 'conversations?view=' + view)]);
      setCounts(c);
      setPage({ items: p.items, fetched: Date.now() });
    } catch (e) {
      if (e.status === 401) onOut();
    }
  }, [view]);
  useEffect(() => { refresh(); }, [refresh]);

  // Live: any event refreshes the lists and the open conversation.
  useEffect(() => {
    let timer = null;
    const es = new EventSource(API + 'events');
    const poke = () => {
      clearTimeout(timer);
      timer = setTimeout(() => { refresh(); setVersion((v) => v + 1); }, 100);
    };
    es.onopen = () => setLive(true);
    es.onerror = () => setLive(false);
    for (const type of ['conversation.created', 'message.in', 'message.out', 'message.status', 'claimed', 'unassigned',
      'handoff', 'reassigned', 'resolved', 'reopened', 'seen', 'level', 'alert', 'escalation', 'window.expired', 'lost',
      'availability', 'csat', 'updated', 'reset']) {
      es.addEventListener(type, poke);
    }
    return () => { clearTimeout(timer); es.close(); };
  }, [refresh]);

  useEffect(() => {
    const onHash = () => setCurrent(decodeURIComponent((location.hash.match(/^#\/c\/(.+)$/) || [])[1] || ''));
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
      <button id="signout" onClick=${signOut}>${t.signOut}</button>
    </header>
    <div class="main">
      <div class="list">
        <nav class="tabs" role="tablist">${tab('unassigned')}${tab('mine')}${tab('pending')}</nav>
        <ul id="list" role="tabpanel" aria-labelledby=${'tab-' + view}>
          ${page.items.length === 0 ? html`<li class="empty">${t.empty}</li>` :
            page.items.map((it) => html`<${Row} key=${it.id} t=${t} item=${it} fetched=${page.fetched} now=${now}
              current=${it.id === current} onOpen=${openConv} />`)}
        </ul>
      </div>
      ${current ? html`<${Conversation} key=${current} t=${t} id=${current} version=${version} onChanged=${refresh} />`
        : html`<section class="pane"><p class="empty">${t.choose}</p></section>`}
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
