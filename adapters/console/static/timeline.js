/*
 * Handoff bridge – agent console: the timeline's lines in the transcript.
 *
 * "Ana joined", "Ana left (transferred)", "Closed by the bot: the customer left": the
 * conversation answer's `timeline` (console:loaded) and the live stream's `timeline`
 * events (console:timeline), both from console.js. The server writes the words; each
 * line goes in time order among the messages (every transcript item carries its time in
 * data-at), and a line already shown (same id) is not added again. Loaded before
 * console.js, so it listens before console.js can tell anything.
 */
(function () {
  'use strict';

  const app = () => window.consoleApp; // set by console.js, which runs next
  const ENDINGS = new Set(['closed', 'released', 'cancelled', 'failed']);
  const shown = new Set();

  function line(entry, at) {
    const ending = ENDINGS.has(entry.kind);
    const li = document.createElement('li');
    li.className = 'event event-' + (ending ? 'end' : 'agent');
    li.dataset.entry = String(entry.id);
    li.dataset.at = String(at.getTime());
    const text = document.createElement('span');
    text.className = 'event-text';
    text.textContent = String(entry.text || '');
    const time = document.createElement('time');
    time.className = 'time';
    time.dateTime = entry.at;
    time.textContent = app().formatTime(at);
    li.append(text, time);
    return li;
  }

  function add(entry) {
    if (!entry || typeof entry.id !== 'number' || shown.has(entry.id)) return;
    const at = app().parseDate(entry.at);
    if (!at) return;
    shown.add(entry.id);
    const list = document.getElementById('transcript');
    const wrap = document.getElementById('transcript-wrap');
    const nearBottom = wrap.scrollHeight - wrap.scrollTop - wrap.clientHeight < 120;
    let before = null;
    for (let node = list.lastElementChild; node; node = node.previousElementSibling) {
      if (Number(node.dataset.at) <= at.getTime()) break;
      before = node;
    }
    list.insertBefore(line(entry, at), before);
    document.getElementById('transcript-empty').hidden = true;
    if (nearBottom) wrap.scrollTop = wrap.scrollHeight;
  }

  document.addEventListener('console:loaded', (event) => {
    const timeline = event.detail && event.detail.timeline;
    (Array.isArray(timeline) ? timeline : []).forEach(add);
  });
  document.addEventListener('console:timeline', (event) => add(event.detail));
})();
