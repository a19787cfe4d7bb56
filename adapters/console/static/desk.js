/*
 * Handoff bridge – agent desk.
 *
 * Flow:
 *  1. Read the desk token from the URL (/console/desk/{token}, last path segment).
 *  2. POST /console/desk-api/{token}/sign-in: an absent agent becomes offline (signed in).
 *  3. GET /state every 2 s (one request at a time): the agent, the chats offered to
 *     them, their active chats. Offers are updated in place, keyed by conversation id,
 *     so a Take button is never replaced under the pointer. A chat newly offered while
 *     the agent is away from the tab counts in the title's badge and chimes (alerts.js).
 *  4. Start / Stop: POST /presence {online|offline}.
 *  5. Take: POST /take/{id}; 200 → open the conversation page (already joined);
 *     an error (409: already taken, at capacity) → its message in #desk-error.
 * Any 403 means the link is no longer valid: show a banner, stop polling.
 * All data is rendered with textContent, never innerHTML.
 */
(function () {
  'use strict';

  const { readToken, make, parseJson } = window.consoleDom; // dom.js

  const POLL_MS = 2000;
  const HINTS = {
    offline: 'You are signed in but not taking chats. Press Start to go online.',
    online: 'You are online. Chats offered to you appear here as they arrive.',
  };

  const $ = (id) => document.getElementById(id);
  const token = readToken();
  const apiBase = '/console/desk-api/' + encodeURIComponent(token);
  const state = {
    agent: null, expired: false, busy: false, leaving: false, // leaving: opening a chat
    inFlight: false, again: false, pollTimer: null,
    offered: null, // the ids last offered; null until the first answer
  };
  const alerts = window.bridgeAlerts || { title: (t) => { document.title = t; }, notify() {} };

  // ---- helpers ---------------------------------------------------------------

  // Only web links are followed: a join URL comes from a platform, not from us alone.
  function webUrl(url) {
    try {
      const parsed = new URL(String(url), location.href);
      return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null;
    } catch (e) { return null; }
  }

  function customerName(customer) {
    const c = customer || {};
    return [c.firstname, c.lastname].filter(Boolean).join(' ') || c.id || 'Unknown customer';
  }

  function duration(seconds) {
    const s = Math.max(0, Math.round(Number(seconds) || 0));
    if (s < 60) return s + ' s';
    const minutes = Math.floor(s / 60);
    if (minutes < 60) return minutes + ' min';
    return Math.floor(minutes / 60) + ' h ' + (minutes % 60) + ' min';
  }

  // ---- API -------------------------------------------------------------------

  function apiError(code, message) {
    return Object.assign(new Error(message), { code });
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
      throw apiError('forbidden', 'This desk link has expired or is not valid');
    }
    if (res.ok) return data || {};
    const err = (data && data.error) || {};
    throw apiError(err.code || 'http_' + res.status,
      err.message || 'Request failed (HTTP ' + res.status + '). Please try again.');
  }

  // ---- rendering -------------------------------------------------------------

  function renderAgent(agent) {
    if (!agent) return;
    state.agent = agent;
    $('desk-agent').textContent = agent.name || agent.id || '';
    alerts.title((agent.name || agent.id) + ' · Agent desk');
    const presence = agent.presence || '';
    $('desk-presence').textContent = presence;
    $('desk-presence').className = 'badge badge-' + (presence || 'unknown');
    $('desk-load').textContent = agent.active_chats + ' of ' + agent.capacity + ' chats';
    const hint = HINTS[presence] || '';
    $('desk-hint').textContent = hint;
    $('desk-hint').hidden = !hint || state.expired;
    renderControls();
  }

  function renderControls() {
    const idle = !state.busy && !state.expired && !state.leaving && !!state.agent;
    const online = !!state.agent && state.agent.presence === 'online';
    $('desk-start').disabled = !idle || online;
    $('desk-stop').disabled = !idle || !online;
    document.querySelectorAll('#desk-offers .take').forEach((button) => { button.disabled = !idle; });
  }

  function makeOffer(id) {
    const li = make('li', 'offer');
    li.dataset.conversation = id;
    const main = make('div', 'offer-main');
    const facts = make('p', 'offer-facts');
    facts.append(make('span', 'offer-channel'), make('span', 'offer-wait'), make('span', 'offer-position'));
    main.append(make('p', 'offer-customer'), facts);
    li.append(main, make('button', 'button primary take', 'Take'));
    li.querySelector('.take').type = 'button';
    return li;
  }

  function fillOffer(li, offer) {
    const name = customerName(offer.customer);
    li.querySelector('.offer-customer').textContent = name;
    li.querySelector('.offer-channel').textContent = offer.channel || '';
    li.querySelector('.offer-wait').textContent = 'waiting ' + duration(offer.waiting_seconds);
    const position = offer.queue_position;
    const eta = offer.estimated_wait_seconds;
    li.querySelector('.offer-position').textContent = position
      ? '#' + position + ' in queue' + (eta !== null && eta !== undefined ? ' · about ' + duration(eta) : '')
      : '';
    li.querySelector('.take').setAttribute('aria-label', 'Take the chat with ' + name);
  }

  function renderOffers(offers) {
    const list = $('desk-offers');
    const byId = new Map(Array.from(list.children, (node) => [node.dataset.conversation, node]));
    const wanted = new Set(offers.map((offer) => offer.id));
    const fresh = state.offered ? offers.filter((offer) => !state.offered.has(offer.id)).length : 0;
    state.offered = wanted;
    if (fresh) alerts.notify(fresh);
    byId.forEach((node, id) => { if (!wanted.has(id)) node.remove(); });
    let cursor = list.firstElementChild;
    offers.forEach((offer) => {
      const node = byId.get(offer.id) || makeOffer(offer.id);
      fillOffer(node, offer);
      if (node === cursor) cursor = cursor.nextElementSibling;
      else list.insertBefore(node, cursor); // moves only what changed place
    });
    $('desk-offers-empty').textContent = 'No chats are waiting for you.';
    $('desk-offers-empty').hidden = offers.length > 0;
    renderControls();
  }

  function renderActive(active) {
    const items = active.map((chat) => {
      const li = make('li', 'active-chat');
      li.dataset.conversation = chat.id;
      li.append(make('span', 'offer-customer', customerName(chat.customer)));
      const url = webUrl(chat.join_url);
      if (url) li.append(Object.assign(make('a', 'button secondary', 'Open'), { href: url }));
      return li;
    });
    $('desk-active').replaceChildren(...items);
    $('desk-active-empty').hidden = items.length > 0;
  }

  function render(data) {
    renderAgent(data.agent);
    renderOffers(Array.isArray(data.offers) ? data.offers : []);
    renderActive(Array.isArray(data.active) ? data.active : []);
  }

  function showError(err) {
    if (err && err.code === 'forbidden') return; // the banner already says it
    $('desk-error').replaceChildren(make('p', null, (err && err.message) || 'Something went wrong.'));
    $('desk-error').hidden = false;
  }

  function clearError() {
    $('desk-error').hidden = true;
    $('desk-error').replaceChildren();
  }

  function setConnection(text) { // '' while polling works
    $('desk-connection').textContent = text;
    $('desk-connection').hidden = !text;
  }

  function expire() {
    if (state.expired) return;
    state.expired = true;
    clearTimeout(state.pollTimer);
    $('banner').hidden = false;
    $('desk-hint').hidden = true;
    setConnection('');
    clearError();
    renderControls();
  }

  // ---- polling -----------------------------------------------------------------

  // One state request at a time; asking while one is out runs another right after it.
  async function refresh() {
    clearTimeout(state.pollTimer);
    if (state.expired || state.leaving) return;
    if (state.inFlight) { state.again = true; return; }
    state.inFlight = true;
    try {
      render(await api('GET', '/state'));
      setConnection('');
    } catch (err) {
      if (!state.expired) setConnection(err.code === 'network' ? 'Reconnecting…' : err.message);
    }
    state.inFlight = false;
    if (state.again) { state.again = false; return refresh(); }
    if (!state.expired && !state.leaving) state.pollTimer = setTimeout(refresh, POLL_MS);
  }

  // ---- actions -------------------------------------------------------------------

  async function run(action) {
    if (state.busy || state.expired || state.leaving) return;
    state.busy = true;
    clearError();
    renderControls();
    await action().catch(showError);
    state.busy = false;
    renderControls();
  }

  function setPresence(presence) {
    return () => run(async () => {
      renderAgent((await api('POST', '/presence', { presence })).agent);
      refresh();
    });
  }

  function take(conversationId) {
    return run(async () => {
      try {
        const data = await api('POST', '/take/' + encodeURIComponent(conversationId));
        const url = webUrl(data.join_url);
        if (url) {
          state.leaving = true; // keep everything disabled while the chat opens
          clearTimeout(state.pollTimer);
          location.assign(url);
          return;
        }
      } finally {
        refresh(); // taken or not, the offers changed
      }
    });
  }

  // ---- start -------------------------------------------------------------------

  function init() {
    $('desk-start').addEventListener('click', setPresence('online'));
    $('desk-stop').addEventListener('click', setPresence('offline'));
    $('desk-offers').addEventListener('click', (event) => {
      const button = event.target.closest('button.take');
      const offer = button && button.closest('.offer');
      if (offer && !button.disabled) take(offer.dataset.conversation);
    });
    if (!token) return expire();
    api('POST', '/sign-in').then((data) => renderAgent(data.agent), showError).then(refresh);
  }

  init();
})();
