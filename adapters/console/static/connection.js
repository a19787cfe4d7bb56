/*
 * Handoff bridge – agent console: the live stream's connection notice.
 *
 * console.js says when the stream goes down and when it is back (or over, with the chat).
 * "Reconnecting…" shows only once the stream has been down for 2 s, so a quick
 * reconnect shows nothing. Loaded before console.js.
 */
(function () {
  'use strict';

  const GRACE_MS = 2000;
  let timer = null;

  function show(text) { // '' while the live stream is healthy
    const node = document.getElementById('connection');
    node.textContent = text;
    node.hidden = !text;
  }

  window.consoleConnection = {
    down() {
      if (timer || !document.getElementById('connection').hidden) return;
      timer = setTimeout(() => { timer = null; show('Reconnecting…'); }, GRACE_MS);
    },
    up() {
      clearTimeout(timer);
      timer = null;
      show('');
    },
  };
})();
