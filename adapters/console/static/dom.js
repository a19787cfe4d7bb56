/*
 * Handoff bridge – agent console: what every page's script needs of its page.
 *
 * The token in the page's own URL, new elements with their text (never HTML), and JSON
 * that may not be JSON. Loaded before the pages' scripts (console, desk, supervisor).
 */
(function () {
  'use strict';

  window.consoleDom = {
    // The page's token: the last segment of its path (/console/c/{token} and the like).
    readToken() {
      const parts = location.pathname.split('/').filter(Boolean);
      try { return decodeURIComponent(parts[parts.length - 1] || ''); } catch (e) { return ''; }
    },

    make(tag, className, text) {
      const node = document.createElement(tag);
      if (className) node.className = className;
      if (text !== undefined && text !== null) node.textContent = String(text);
      return node;
    },

    parseJson(text) {
      try { return JSON.parse(text); } catch (e) { return null; }
    },
  };
})();
