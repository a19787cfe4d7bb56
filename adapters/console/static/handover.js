/*
 * Handoff bridge – agent console: the transfer and "return to bot" forms.
 *
 * Uses what console.js shares (window.consoleApp: api, applyConversation, run,
 * showError) and follows its controls through the `console:controls` event.
 *  - Transfer…: loads where the chat may go (GET transfer-options: online agents,
 *    teams, channels), then POST transfer {agent_id | team_id | channel, note}.
 *  - Return to bot…: disposition, tags, note, then POST release with them.
 * Both forms close when the chat stops being active. Text is set with textContent.
 */
(function () {
  'use strict';

  const app = window.consoleApp;
  const $ = (id) => document.getElementById(id);
  if (!app) return;

  const FORMS = { transfer: 'transfer-form', release: 'release-form' };
  const KINDS = { agent: 'agent_id', team: 'team_id', channel: 'channel' };

  function show(which) {
    Object.entries(FORMS).forEach(([name, id]) => {
      $(id).hidden = name !== which;
      $(name).setAttribute('aria-expanded', String(name === which));
    });
  }

  function option(kind, value, label) {
    const node = document.createElement('option');
    node.value = kind + ':' + value;
    node.textContent = label;
    return node;
  }

  function group(label, options) {
    const node = document.createElement('optgroup');
    node.label = label;
    node.append(...options);
    return node;
  }

  function fillTargets(data) {
    const agents = (data.agents || []).map((a) => option('agent', a.id, a.name + ' (' + a.id + ')'));
    const teams = (data.teams || []).map((t) => option('team', t.id, t.name || t.id));
    const channels = (data.channels || []).map((c) => option('channel', c.name, c.name + ' · ' + c.platform));
    const groups = [];
    if (agents.length) groups.push(group('Agents online', agents));
    if (teams.length) groups.push(group('Teams', teams));
    if (channels.length) groups.push(group('Channels', channels));
    const select = $('transfer-target');
    const placeholder = document.createElement('option');
    placeholder.value = '';
    placeholder.textContent = groups.length ? 'Choose…' : 'Nowhere to transfer to';
    select.replaceChildren(placeholder, ...groups);
  }

  function notice(text) {
    $('handover-notice').textContent = text;
    $('handover-notice').hidden = !text;
  }

  function openTransfer() {
    if ($('transfer').disabled) return;
    if (!$(FORMS.transfer).hidden) return show(null);
    app.run(async () => {
      fillTargets(await app.api('GET', '/transfer-options'));
      show('transfer');
      $('transfer-target').focus();
    });
  }

  function transfer(event) {
    event.preventDefault();
    const select = $('transfer-target');
    const [kind, ...rest] = select.value.split(':');
    if (!KINDS[kind]) {
      select.setAttribute('aria-invalid', 'true');
      return app.showError({ message: 'Choose an agent, a team or a channel to transfer to.' });
    }
    select.removeAttribute('aria-invalid');
    const label = select.options[select.selectedIndex].textContent;
    const body = { [KINDS[kind]]: rest.join(':') };
    const note = $('transfer-note').value.trim();
    if (note) body.note = note;
    app.run(async () => {
      const data = await app.api('POST', '/transfer', body);
      show(null);
      $('transfer-note').value = '';
      notice('Transferred to ' + label + '.');
      app.applyConversation(data.conversation);
    });
  }

  function openRelease() {
    if ($('release').disabled) return;
    show($(FORMS.release).hidden ? 'release' : null);
    if (!$(FORMS.release).hidden) $('release-disposition').focus();
  }

  function release(event) {
    event.preventDefault();
    const body = {};
    const disposition = $('release-disposition').value;
    if (disposition) body.disposition = disposition;
    const tags = $('release-tags').value.split(',').map((t) => t.trim()).filter(Boolean);
    if (tags.length) body.tags = tags;
    const note = $('release-note').value.trim();
    if (note) body.note = note;
    app.run(async () => {
      const data = await app.api('POST', '/release', body);
      show(null);
      app.applyConversation(data.conversation);
    });
  }

  document.addEventListener('console:controls', (event) => {
    const { active, busy } = event.detail || {};
    if (!active) show(null);
    ['transfer-submit', 'release-submit'].forEach((id) => { $(id).disabled = !active || busy; });
  });
  $('transfer').addEventListener('click', openTransfer);
  $('release').addEventListener('click', openRelease);
  $('transfer-form').addEventListener('submit', transfer);
  $('release-form').addEventListener('submit', release);
  $('transfer-cancel').addEventListener('click', () => show(null));
  $('release-cancel').addEventListener('click', () => show(null));
})();
