/*
 * Handoff bridge – alerts shared by the chat page and the agent desk.
 *
 * While the agent is not looking at the tab (it is hidden, or another window has the
 * focus), each new thing (a customer message, an offered chat) counts in a badge in
 * front of the title, "(2) John Doe · Agent console", and plays a short chime made
 * with the Web Audio API: no sound file is fetched, so the pages' policy stays strict.
 * The badge clears when the tab gets the focus back. The Sound button mutes the chime;
 * the choice is remembered in localStorage for every console page of this browser.
 * Browsers let a page play sound only once the agent has clicked or typed in it.
 *
 * The pages set their title through window.bridgeAlerts.title(text) and report new
 * things with window.bridgeAlerts.notify(count).
 */
(function () {
  'use strict';

  const SOUND_KEY = 'bridge.sound';
  const state = { base: document.title, unread: 0, audio: null };

  function soundOn() {
    try { return localStorage.getItem(SOUND_KEY) !== 'off'; } catch (e) { return true; }
  }

  const attended = () => !document.hidden && document.hasFocus();

  function render() {
    document.title = state.unread ? '(' + state.unread + ') ' + state.base : state.base;
  }

  // One audio context for the page, made (or woken) inside a click or key press where
  // it can: browsers keep a context made outside one silent until such a gesture.
  function audio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    if (!state.audio) state.audio = new Context();
    if (state.audio.state === 'suspended') state.audio.resume().catch(() => {});
    return state.audio;
  }

  // Two soft rising notes, a quarter of a second each.
  function chime() {
    const context = audio();
    if (!context) return;
    const start = context.currentTime + 0.01;
    [[660, 0], [880, 0.15]].forEach(([frequency, offset]) => {
      const tone = context.createOscillator();
      const gain = context.createGain();
      tone.type = 'sine';
      tone.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.2, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.25);
      tone.connect(gain).connect(context.destination);
      tone.start(start + offset);
      tone.stop(start + offset + 0.3);
    });
  }

  function renderToggle() {
    const button = document.getElementById('sound-toggle');
    if (!button) return;
    const on = soundOn();
    button.textContent = on ? 'Sound on' : 'Sound off';
    button.setAttribute('aria-pressed', String(on));
    button.title = on ? 'A chime plays for new messages while this tab is in the background'
      : 'Muted: new messages only show in the tab title';
  }

  function toggle() {
    try { localStorage.setItem(SOUND_KEY, soundOn() ? 'off' : 'on'); } catch (e) { /* no storage */ }
    if (soundOn()) audio(); // this click may unlock sound
    renderToggle();
  }

  function seen() {
    if (!state.unread || !attended()) return;
    state.unread = 0;
    render();
  }

  window.bridgeAlerts = {
    /** The page's own title; the badge, if any, stays in front of it. */
    title(text) {
      state.base = String(text);
      render();
    },
    /** `count` new things arrived: badge and chime, unless the agent is looking. */
    notify(count) {
      if (attended()) return;
      state.unread += Math.max(1, Number(count) || 1);
      render();
      if (soundOn()) chime();
    },
  };

  function init() {
    const button = document.getElementById('sound-toggle');
    if (button) button.addEventListener('click', toggle);
    renderToggle();
    window.addEventListener('focus', seen);
    document.addEventListener('visibilitychange', seen);
    // The first click or key press unlocks sound for the rest of the page's life.
    const unlock = () => { if (soundOn()) audio(); };
    document.addEventListener('pointerdown', unlock, { once: true, capture: true });
    document.addEventListener('keydown', unlock, { once: true, capture: true });
    // Another tab muted or unmuted: show the same here.
    window.addEventListener('storage', (event) => { if (event.key === SOUND_KEY) renderToggle(); });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
