/*
 * Handoff bridge – agent console.
 *
 * Flow:
 *  1. Read the join token from the URL (/console/c/{token}, last path segment).
 *  2. GET /console/api/{token}/conversation; render header, side panel, transcript.
 *  3. Follow live updates over SSE (/events?after=<highest seq seen>). Messages
 *     are deduplicated by seq; `status` events update the badge and controls;
 *     `timeline` events (joins, leaves, the end) go to timeline.js. If the browser gives
 *     up on the stream, resync (step 2) and reopen it; one ended with the chat is over.
 *     "Reconnecting…" shows only once the stream has been down for a while (connection.js).
 *  4. pending → join form; active → composer (typing.js tells the bot the agent types),
 *     close, transfer and "return to bot" (the last two open forms of handover.js);
 *     closed / released / failed → read only, with a notice and, in the transcript,
 *     who ended it and why (timeline.js).
 * Any 403 means the link is no longer valid: show a banner, disable everything.
 * All data is rendered with textContent, never innerHTML.
 */
(function () {
  'use strict';

  const { readToken, make, parseJson } = window.consoleDom; // dom.js

  const NAME_KEY = 'bridge.agentName';
  const ROLE_LABELS = { customer: 'Customer', bot: 'Bot', agent: 'Agent', system: 'System' };
  const NOTICES = {
    closed: 'This conversation is closed.',
    released: 'This conversation was handed back to the bot.',
    failed: 'This conversation failed and can no longer be answered.',
  };

  const $ = (id) => document.getElementById(id);
  const token = readToken();
  const apiBase = '/console/api/' + encodeURIComponent(token);
  const state = {
    conversation: null, seen: new Set(), lastSeq: 0, // seen: seqs already rendered
    expired: false, busy: false, sending: false, // busy: join / close / release in flight
    pendingSend: null, // {key, clientId}: the id is reused if the same text and files are retried
    source: null, retryDelay: 1000, retryTimer: null,
  };
  const alerts = window.bridgeAlerts || { title: (t) => { document.title = t; }, notify() {} }; // badge, chime
  const connection = window.consoleConnection; // connection.js: "Reconnecting…" after a grace

  // ---- helpers ---------------------------------------------------------------

  function setText(id, value) {
    $(id).textContent = value === undefined || value === null || value === '' ? '—' : String(value);
  }

  const pad = (n) => String(n).padStart(2, '0');
  const status = () => state.conversation && state.conversation.status;
  const parseDate = (iso) => (iso && !isNaN(new Date(iso).getTime()) ? new Date(iso) : null);
  const formatDateTime = (d) => (d ? d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' }) : '');
  // Today: the time only (local HH:MM); before today: date and time, in the browser's locale.
  const formatTime = (d) => (!d ? '' : d.toDateString() !== new Date().toDateString()
    ? formatDateTime(d) : pad(d.getHours()) + ':' + pad(d.getMinutes()));

  function newClientId() {
    const c = window.crypto;
    if (c && typeof c.randomUUID === 'function') return c.randomUUID(); // secure contexts only
    if (c && c.getRandomValues) return Array.from(c.getRandomValues(new Uint8Array(16)), (b) => pad(b.toString(16))).join('');
    return Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 12);
  }

  // ---- API -------------------------------------------------------------------

  function apiError(code, message, fields) {
    return Object.assign(new Error(message), { code, fields: Array.isArray(fields) ? fields : [] });
  }

  async function api(method, path, body) {
    const opts = { method, headers: { Accept: 'application/json' }, cache: 'no-store' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const res = await fetch(apiBase + path, opts).catch(() => {
      throw apiError('network', 'Could not reach the server. Check your connection and try again.');
    });
    const data = parseJson(await res.text().catch(() => ''));
    if (res.status === 403) {
      expire();
      throw apiError('forbidden', 'This link has expired or is not valid');
    }
    if (res.ok) return data || {};
    const err = (data && data.error) || {};
    const message = err.message || 'Request failed (HTTP ' + res.status + '). Please try again.';
    throw apiError(err.code || 'http_' + res.status, message, err.fields);
  }

  // ---- rendering -------------------------------------------------------------

  function applyConversation(c) {
    if (!c) return;
    state.conversation = c;
    const cust = c.customer || {};
    const display = [cust.firstname, cust.lastname].filter(Boolean).join(' ') || cust.id || 'Unknown customer';
    $('customer-name').textContent = display;
    alerts.title(display + ' · Agent console');
    $('channel').textContent = c.channel || '';
    setText('customer-id', cust.id);
    setText('customer-email', cust.email);
    const labels = (cust.labels || []).map((label) => make('li', 'chip', label));
    $('customer-labels').replaceChildren(...(labels.length ? labels : [make('li', 'muted', 'None')]));
    setText('conv-channel', c.channel);
    setText('conv-main-channel', c.main_channel);
    setText('conv-region', c.region);
    setText('conv-created', formatDateTime(parseDate(c.created_at)));
    setText('conv-id', c.id);
    renderMetadata(c.metadata || {});
    renderRoute(c.route || {});
    applyStatus(c.status, c.agent);
  }

  function renderMetadata(meta) {
    const rows = Object.entries(meta).map(([key, value]) => {
      const shown = value !== null && typeof value === 'object' ? JSON.stringify(value) : value ?? '—';
      const tr = make('tr');
      tr.append(Object.assign(make('th', null, key), { scope: 'row' }), make('td', null, shown));
      return tr;
    });
    $('metadata').tBodies[0].replaceChildren(...rows);
    $('metadata').hidden = !rows.length;
    $('metadata-empty').hidden = rows.length > 0;
  }

  function renderRoute(route) {
    setText('route-rule', route.rule);
    const lines = Array.isArray(route.trace) ? route.trace : [];
    $('trace').replaceChildren(...lines.map((line) => make('li', null, line)));
    $('trace').hidden = !lines.length;
    $('trace-empty').hidden = lines.length > 0;
  }

  function applyStatus(newStatus, agent) {
    const c = state.conversation;
    if (c) {
      c.status = newStatus;
      if (agent !== undefined) c.agent = agent;
    }
    $('status').textContent = newStatus || '';
    $('status').className = 'badge badge-' + (newStatus || 'unknown');
    const agentName = c && c.agent && c.agent.name;
    $('agent-label').textContent = agentName ? 'Agent: ' + agentName : '';
    $('agent-label').hidden = !agentName;
    setText('conv-agent', agentName);
    renderControls();
  }

  function renderControls() {
    const pending = status() === 'pending';
    const canJoin = pending && !state.expired && !state.busy;
    const active = status() === 'active' && !state.expired;
    $('join-form').hidden = !pending;
    $('composer-form').hidden = pending;
    $('agent-name').disabled = !canJoin;
    $('join').disabled = !canJoin;
    $('composer').disabled = !active;
    $('send').disabled = !active || state.sending;
    $('close').disabled = !active || state.busy;
    $('release').disabled = !active || state.busy;
    $('transfer').disabled = !active || state.busy;
    const notice = NOTICES[status()] || '';
    $('notice').textContent = notice;
    $('notice').hidden = !notice;
    // handover.js keeps its transfer and release forms in step with the controls.
    document.dispatchEvent(new CustomEvent('console:controls', { detail: { active, busy: state.busy } }));
  }

  function renderMessage(m) {
    const role = ROLE_LABELS[m.role] ? m.role : 'system';
    const li = make('li', 'message message-' + role);
    li.dataset.seq = String(m.seq);
    const sent = parseDate(m.sent_at);
    li.dataset.at = sent ? String(sent.getTime()) : '0'; // timeline lines go in time order
    const meta = make('div', 'meta');
    if (m.author) meta.append(make('span', 'author', m.author));
    meta.append(make('span', 'role-label', ROLE_LABELS[role]));
    const time = make('time', 'time', formatTime(sent));
    if (sent) Object.assign(time, { dateTime: m.sent_at, title: formatDateTime(sent) });
    meta.append(time);
    // A message may be files only; attachments.js draws them (images inline, links).
    const files = window.consoleAttachments && window.consoleAttachments.render(m.attachments);
    li.append(meta);
    if (m.text || !files) li.append(make('div', 'text', m.text || ''));
    if (files) li.append(files);
    return li;
  }

  function addMessage(m, forceScroll) { // whether it was new
    if (!m || typeof m.seq !== 'number' || state.seen.has(m.seq)) return false;
    state.seen.add(m.seq);
    state.lastSeq = Math.max(state.lastSeq, m.seq);
    const wrap = $('transcript-wrap');
    const nearBottom = wrap.scrollHeight - wrap.scrollTop - wrap.clientHeight < 120;
    // In seq order (an older message may arrive after a newer one), after earlier timeline lines.
    const list = $('transcript');
    let before = null;
    for (let node = list.lastElementChild; node; node = node.previousElementSibling) {
      if (node.dataset.seq ? Number(node.dataset.seq) < m.seq : Number(node.dataset.at) <= (Date.parse(m.sent_at) || 0)) break;
      before = node;
    }
    list.insertBefore(renderMessage(m), before);
    $('transcript-empty').hidden = true;
    if (forceScroll || nearBottom) scrollToEnd();
    return true;
  }

  const scrollToEnd = () => { $('transcript-wrap').scrollTop = $('transcript-wrap').scrollHeight; };

  function showError(err) {
    if (err && err.code === 'forbidden') return; // the banner already says it
    const box = $('error');
    box.replaceChildren(make('p', null, (err && err.message) || 'Something went wrong.'));
    const fields = (err && err.fields) || [];
    if (fields.length) {
      const ul = make('ul');
      fields.forEach((f) => ul.append(make('li', null, (f.field ? f.field + ': ' : '') + (f.problem || ''))));
      box.append(ul);
    }
    box.hidden = false;
  }

  function clearError() {
    $('error').hidden = true;
    $('error').replaceChildren();
  }

  function expire() {
    if (state.expired) return;
    state.expired = true;
    $('banner').hidden = false;
    if (state.source) state.source.close();
    state.source = null;
    clearTimeout(state.retryTimer);
    connection.up();
    clearError();
    renderControls();
  }

  // ---- loading and live updates ------------------------------------------------

  async function load() {
    const data = await api('GET', '/conversation');
    applyConversation(data.conversation);
    (data.messages || []).forEach((m) => addMessage(m));
    if (!state.seen.size) $('transcript-empty').textContent = 'No messages yet.';
    document.dispatchEvent(new CustomEvent('console:loaded', { detail: data })); // timeline.js
  }

  function connect() {
    if (state.expired || !window.EventSource) return;
    clearTimeout(state.retryTimer);
    const es = new EventSource(apiBase + '/events?after=' + state.lastSeq);
    state.source = es;
    es.addEventListener('open', () => { state.retryDelay = 1000; connection.up(); });
    es.addEventListener('message', (e) => {
      const m = parseJson(e.data);
      if (addMessage(m) && m.role === 'customer') alerts.notify(1);
    });
    es.addEventListener('timeline', (e) => document.dispatchEvent(new CustomEvent('console:timeline', { detail: parseJson(e.data) })));
    es.addEventListener('status', (e) => {
      const s = parseJson(e.data);
      if (s && s.status) applyStatus(s.status, s.agent);
    });
    // The customer's profile or the metadata changed (a CRM, the bot): re-render it all.
    es.addEventListener('conversation', (e) => applyConversation(parseJson(e.data)));
    es.addEventListener('error', () => {
      if (es !== state.source) return;
      // The chat ended, so the server ended the stream: it is over, not down.
      if (NOTICES[status()]) { es.close(); state.source = null; return connection.up(); }
      if (es.readyState !== EventSource.CLOSED) return connection.down(); // browser retries
      state.source = null;
      scheduleReconnect();
    });
  }

  // The browser gave up on the stream: resync, then reopen it with a fresh `after`.
  function scheduleReconnect() {
    if (state.expired) return;
    if (NOTICES[status()]) return connection.up(); // finished: nothing more to follow
    connection.down();
    const delay = state.retryDelay;
    state.retryDelay = Math.min(delay * 2, 30000);
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(async () => {
      try { await load(); } catch (e) { return scheduleReconnect(); } // no-op once expired
      connect();
    }, delay);
  }

  // ---- actions -------------------------------------------------------------------

  async function run(action) {
    if (state.busy || state.expired) return;
    state.busy = true;
    clearError();
    renderControls();
    await action().catch(showError);
    state.busy = false;
    renderControls();
  }

  function join(event) {
    event.preventDefault();
    const input = $('agent-name');
    const name = input.value.trim();
    if (!name) {
      input.setAttribute('aria-invalid', 'true');
      showError({ message: 'Enter your name to join the conversation.' });
      return input.focus();
    }
    input.removeAttribute('aria-invalid');
    run(async () => {
      const data = await api('POST', '/join', { name });
      try { localStorage.setItem(NAME_KEY, name); } catch (e) { /* storage unavailable */ }
      applyConversation(data.conversation);
      if (!$('composer').disabled) $('composer').focus();
    });
  }

  async function send(event) {
    if (event) event.preventDefault();
    if (state.sending || state.expired || status() !== 'active') return;
    const composer = $('composer');
    const text = composer.value.trim();
    const files = window.consoleAttachments ? window.consoleAttachments.pending() : [];
    if (!text && !files.length) return;
    const key = JSON.stringify([text, files]);
    if (!state.pendingSend || state.pendingSend.key !== key) {
      state.pendingSend = { key, clientId: newClientId() };
    }
    state.sending = true;
    clearError();
    renderControls();
    const body = { text, client_id: state.pendingSend.clientId };
    if (files.length) body.attachments = files;
    await api('POST', '/messages', body).then((data) => {
      state.pendingSend = null;
      if (composer.value.trim() === text) composer.value = '';
      if (files.length) window.consoleAttachments.clear();
      addMessage(data.message, true);
    }, showError); // on error the typed text stays in the composer
    state.sending = false;
    renderControls();
  }

  function endAction(path, question) {
    return () => {
      if (state.busy || state.expired || status() !== 'active') return;
      if (!window.confirm(question)) return;
      run(async () => applyConversation((await api('POST', path)).conversation));
    };
  }

  // What handover.js (the transfer and release forms) uses of this page.
  window.consoleApp = { api, applyConversation, run, showError, formatTime, parseDate };

  // ---- start -------------------------------------------------------------------

  function init() {
    try { $('agent-name').value = localStorage.getItem(NAME_KEY) || ''; } catch (e) { /* no storage */ }
    $('join-form').addEventListener('submit', join);
    $('composer-form').addEventListener('submit', send);
    $('composer').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) send(e);
    });
    $('close').addEventListener('click', endAction('/close',
      'Close this conversation? You will no longer be able to reply.'));
    window.addEventListener('online', () => { // back online: retry the stream now
      if (state.source || state.expired) return;
      state.retryDelay = 1000;
      scheduleReconnect();
    });

    if (!token) return expire();
    load().then(() => { scrollToEnd(); connect(); }, (err) => {
      if (state.expired) return;
      $('transcript-empty').textContent = 'The conversation could not be loaded (' + err.message + '). Retrying…';
      scheduleReconnect();
    });
  }

  init();
})();
