/*
 * Handoff bridge – supervisor page (read-only).
 *
 * Flow:
 *  1. Read the supervisor token from the URL (/console/supervisor/{token}, last segment).
 *  2. GET /console/supervisor-api/{token}/scope: whose conversations the link shows.
 *  3. GET /queue and /conversations (with the filters of the form): render both.
 *  4. One EventSource on /events: each `changed` event reads the views again (one read
 *     at a time; a change during a read runs one more right after it). The server only
 *     says `changed` when something did change, so an idle page makes no requests.
 *  5. Waits tick every second in the page from the server's figures (no request).
 * Any 403 means the link is no longer valid: show a banner, stop.
 * All data is rendered with textContent, never innerHTML.
 */
(function () {
  'use strict';

  const { readToken, make, parseJson } = window.consoleDom; // dom.js

  const PAGE = 50;
  const MAX_PAGE = 200;

  const $ = (id) => document.getElementById(id);
  const token = readToken();
  const apiBase = '/console/supervisor-api/' + encodeURIComponent(token);
  const state = {
    expired: false, inFlight: false, again: false, source: null, retryDelay: 1000,
    retryTimer: null, cursor: null, shown: 0, fetchedAt: 0, filters: new URLSearchParams(),
  };

  // ---- helpers ---------------------------------------------------------------

  function duration(seconds) {
    const s = Math.max(0, Math.round(Number(seconds) || 0));
    if (s < 60) return s + ' s';
    const minutes = Math.floor(s / 60);
    if (minutes < 60) return minutes + ' min';
    return Math.floor(minutes / 60) + ' h ' + (minutes % 60) + ' min';
  }

  function when(iso) {
    const date = new Date(iso);
    return isNaN(date.getTime()) ? '' : date.toLocaleString();
  }

  function customerName(customer) {
    const c = customer || {};
    return c.name || c.id || 'Unknown customer';
  }

  // A wait shown now: the server's figure plus the time since it was read.
  function since(seconds) {
    return Number(seconds) + (Date.now() - state.fetchedAt) / 1000;
  }

  // ---- API -------------------------------------------------------------------

  function apiError(code, message) {
    return Object.assign(new Error(message), { code });
  }

  async function api(path) {
    const opts = { headers: { Accept: 'application/json' }, cache: 'no-store' };
    const res = await fetch(apiBase + path, opts).catch(() => {
      throw apiError('network', 'Could not reach the server.');
    });
    const data = parseJson(await res.text().catch(() => ''));
    if (res.status === 403 && !(data && data.error && data.error.fields &&
        data.error.fields.some((f) => f.field === 'organization_id'))) {
      expire();
      throw apiError('forbidden', 'This supervisor link has expired or is not valid');
    }
    if (res.ok) return data || {};
    const err = (data && data.error) || {};
    const fields = (err.fields || []).map((f) => f.field + ': ' + f.problem).join('; ');
    throw apiError(err.code || 'http_' + res.status,
      (err.message || 'Request failed (HTTP ' + res.status + ')') + (fields ? ' (' + fields + ')' : ''));
  }

  // ---- rendering: the queue ----------------------------------------------------

  function renderQueue(data) {
    const channels = Array.isArray(data.channels) ? data.channels : [];
    const items = channels.map((channel) => {
      const li = make('li', 'sv-channel');
      li.dataset.channel = channel.channel;
      const head = make('div', 'sv-channel-head');
      head.append(make('h3', 'sv-channel-name', channel.channel));
      const facts = make('p', 'offer-facts');
      facts.append(make('span', null, channel.platform || ''));
      facts.append(make('span', 'sv-length', channel.length + ' waiting'));
      const oldest = make('span', 'sv-oldest');
      if (channel.oldest_wait_seconds !== null && channel.oldest_wait_seconds !== undefined) {
        oldest.dataset.wait = channel.oldest_wait_seconds;
      }
      facts.append(oldest);
      head.append(facts);
      li.append(head);
      const waiting = Array.isArray(channel.waiting) ? channel.waiting : [];
      if (waiting.length) {
        const list = make('ol', 'sv-waiting');
        waiting.forEach((chat) => {
          const row = make('li', 'sv-waiting-chat');
          row.dataset.conversation = chat.id;
          row.append(make('span', 'sv-position', '#' + chat.position));
          row.append(make('span', 'offer-customer', customerName(chat.customer)));
          const wait = make('span', 'sv-wait');
          wait.dataset.wait = chat.wait_seconds;
          row.append(wait);
          const offered = chat.offered_to && chat.offered_to.length
            ? 'offered to ' + chat.offered_to.join(', ') : 'offered to nobody yet';
          row.append(make('span', 'sv-offered', offered));
          list.append(row);
        });
        li.append(list);
      }
      return li;
    });
    $('sv-queue').replaceChildren(...items);
    $('sv-queue-empty').textContent = 'No channels to show.';
    $('sv-queue-empty').hidden = items.length > 0;
  }

  // ---- rendering: the conversations ----------------------------------------------

  function makeRow(item) {
    const tr = make('tr', 'sv-row');
    tr.dataset.conversation = item.id;
    tr.dataset.status = item.status;
    const status = make('span', 'badge badge-' + item.status, item.status);
    const agent = item.agent ? (item.agent.name || item.agent.id) : '';
    const wait = make('span', 'sv-wait');
    if (item.status === 'pending') wait.dataset.wait = item.wait_seconds;
    else wait.textContent = duration(item.wait_seconds);
    const queue = item.queue_position ? '#' + item.queue_position : '';
    const d = item.deliveries || {};
    const stuck = (d.pending ? d.pending + ' pending' : '') +
      (d.pending && d.dead ? ', ' : '') + (d.dead ? d.dead + ' dead' : '');
    const cells = [
      make('td', null, when(item.created_at)),
      make('td', 'offer-customer', customerName(item.customer)),
      make('td'), make('td', null, item.channel), make('td', null, item.team_id || ''),
      make('td', null, agent), make('td'), make('td', null, queue),
      make('td', d.dead ? 'sv-dead' : null, stuck),
    ];
    cells[2].append(status);
    cells[6].append(wait);
    tr.append(...cells);
    return tr;
  }

  function renderList(data, append) {
    const items = Array.isArray(data.items) ? data.items : [];
    const rows = items.map(makeRow);
    if (append) $('sv-rows').append(...rows);
    else $('sv-rows').replaceChildren(...rows);
    state.shown = $('sv-rows').children.length;
    state.cursor = data.next_cursor || null;
    $('sv-more').hidden = !state.cursor;
    $('sv-list-empty').hidden = state.shown > 0;
    $('sv-list').hidden = state.shown === 0;
  }

  function tick() {
    document.querySelectorAll('[data-wait]').forEach((node) => {
      const text = node.classList.contains('sv-oldest') ? 'oldest waits ' : 'waiting ';
      node.textContent = text + duration(since(node.dataset.wait));
    });
  }

  function showError(err) {
    if (err && err.code === 'forbidden') return; // the banner already says it
    $('sv-error').replaceChildren(make('p', null, (err && err.message) || 'Something went wrong.'));
    $('sv-error').hidden = false;
  }

  function clearError() {
    $('sv-error').hidden = true;
    $('sv-error').replaceChildren();
  }

  function setConnection(text) {
    $('sv-connection').textContent = text;
    $('sv-connection').hidden = !text;
    $('sv-live').textContent = text || !state.source ? '' : 'live';
    $('sv-live').className = 'badge' + (text ? '' : ' badge-active');
  }

  function expire() {
    if (state.expired) return;
    state.expired = true;
    if (state.source) state.source.close();
    clearTimeout(state.retryTimer);
    $('banner').hidden = false;
    setConnection('');
    clearError();
  }

  // ---- reading ---------------------------------------------------------------------

  function listQuery(extra) {
    const query = new URLSearchParams(state.filters);
    Object.entries(extra).forEach(([key, value]) => query.set(key, value));
    return '?' + query.toString();
  }

  // One read at a time; asking while one is out runs another right after it.
  async function load() {
    if (state.expired) return;
    if (state.inFlight) { state.again = true; return; }
    state.inFlight = true;
    try {
      // As many rows as are shown, so a change does not take away what was loaded.
      const limit = Math.min(MAX_PAGE, Math.max(PAGE, state.shown));
      const [queue, list] = await Promise.all([
        api('/queue'), api('/conversations' + listQuery({ limit })),
      ]);
      state.fetchedAt = Date.now();
      renderQueue(queue);
      renderList(list, false);
      tick();
      clearError();
    } catch (err) {
      showError(err);
    }
    state.inFlight = false;
    if (state.again) { state.again = false; return load(); }
  }

  async function loadMore() {
    if (!state.cursor || state.inFlight) return;
    state.inFlight = true;
    try {
      const list = await api('/conversations' + listQuery({ limit: PAGE, cursor: state.cursor }));
      renderList(list, true);
      tick();
    } catch (err) {
      showError(err);
    }
    state.inFlight = false;
  }

  function readFilters() {
    const form = $('sv-filters');
    const query = new URLSearchParams();
    form.querySelectorAll('input[name="status"]:checked').forEach((box) => {
      query.append('status', box.value);
    });
    ['channel', 'team', 'agent'].forEach((name) => {
      const value = form.elements[name].value.trim();
      if (value) query.set(name, value);
    });
    const minutes = form.elements.waiting_minutes.value;
    if (minutes !== '') query.set('waiting_longer_than', String(Math.round(Number(minutes) * 60)));
    ['created_from', 'created_to'].forEach((name) => {
      const value = form.elements[name].value;
      const date = value ? new Date(value) : null; // the browser's local time
      if (date && !isNaN(date.getTime())) query.set(name, date.toISOString());
    });
    query.set('order', form.elements.order.value);
    return query;
  }

  // ---- live ------------------------------------------------------------------------

  function connect() {
    if (state.expired || !window.EventSource) return;
    clearTimeout(state.retryTimer);
    const es = new EventSource(apiBase + '/events');
    state.source = es;
    es.addEventListener('open', () => { state.retryDelay = 1000; setConnection(''); });
    es.addEventListener('changed', () => load());
    es.addEventListener('error', () => {
      if (es !== state.source) return;
      if (es.readyState !== EventSource.CLOSED) return setConnection('Reconnecting…');
      state.source = null;
      if (state.expired) return;
      // The browser gave up (a 403 among others): check the link, then try again.
      setConnection('Reconnecting…');
      const delay = state.retryDelay;
      state.retryDelay = Math.min(delay * 2, 30000);
      state.retryTimer = setTimeout(() => { api('/scope').then(connect, connect); }, delay);
    });
  }

  // ---- start -------------------------------------------------------------------------

  function init() {
    if (!token) return expire();
    $('sv-filters').addEventListener('submit', (event) => {
      event.preventDefault();
      state.filters = readFilters();
      state.shown = 0;
      load();
    });
    $('sv-reset').addEventListener('click', () => {
      $('sv-filters').reset();
      state.filters = readFilters();
      state.shown = 0;
      load();
    });
    $('sv-more').addEventListener('click', loadMore);
    state.filters = readFilters();
    api('/scope').then((scope) => {
      const name = scope.organization_id;
      $('sv-scope').textContent = name ? 'Organization ' + name : 'All organizations';
      document.title = 'Supervisor · ' + (name || 'all organizations');
      load();
      connect();
    }, showError);
    setInterval(tick, 1000);
  }

  init();
})();
