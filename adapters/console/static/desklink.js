/*
 * Handoff bridge – the way back from a chat to the agent desk it was opened from.
 *
 * The desk remembers its own address in sessionStorage (this tab only, gone when the tab
 * closes); a chat page in the same tab shows "Back to your desk" with it. The desk link
 * carries the agent's token, so it never goes into a URL of the chat page, and the
 * pages send no Referer (Referrer-Policy: no-referrer, and the link says noreferrer).
 */
(function () {
  'use strict';

  const KEY = 'bridge.deskPath';
  const DESK_PATH = /^\/console\/desk\/[^/?#]+$/;

  function remembered() {
    try {
      const path = sessionStorage.getItem(KEY);
      return path && DESK_PATH.test(path) ? path : null;
    } catch (e) { return null; }
  }

  if (DESK_PATH.test(location.pathname)) {
    try { sessionStorage.setItem(KEY, location.pathname); } catch (e) { /* no storage */ }
    return;
  }
  const link = document.getElementById('desk-link');
  const path = remembered();
  if (!link || !path) return;
  link.href = path; // a path on this origin: the pattern allows nothing else
  link.rel = 'noreferrer';
  link.hidden = false;
})();
