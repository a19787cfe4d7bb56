/*
 * Handoff bridge – agent console: tells the bot that the agent is typing.
 *
 * On input in the reply box, POST /console/api/{token}/typing, at most once every
 * REPORT_EVERY_MS; never for an empty box, and only while the agent has the chat
 * (console.js says so with its `console:controls` event, which it also sends when the
 * chat ends). The bridge throttles again for the bot; a report that fails is only a
 * moment lost, so nothing is shown for it. Loaded after console.js (its `consoleApp.api`).
 */
(function () {
  'use strict';

  const REPORT_EVERY_MS = 2500;
  let active = false; // the agent has the chat: the reply box is theirs
  let last = 0; // when the last report went, in performance.now() time
  let inFlight = false;

  document.addEventListener('console:controls', (e) => { active = Boolean(e.detail && e.detail.active); });

  function report() {
    const box = document.getElementById('composer');
    const app = window.consoleApp;
    if (!app || !active || inFlight || box.disabled || !box.value.trim()) return;
    const now = performance.now();
    if (last && now - last < REPORT_EVERY_MS) return;
    last = now;
    inFlight = true;
    // A 403 still expires the page (console.js); other failures are not the agent's concern.
    app.api('POST', '/typing').catch(() => {}).finally(() => { inFlight = false; });
  }

  document.getElementById('composer').addEventListener('input', report);
})();
