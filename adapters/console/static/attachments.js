/*
 * Handoff bridge – agent console: files in the transcript, and attaching a link.
 *
 * The bridge keeps links to files, never their bytes (it has no file store). So:
 *  - render(list): a message's attachments. Images on https are shown inline as a
 *    thumbnail that opens the file in a new tab (the page's policy lets images load
 *    from https: only); any other file is a link with its name and size.
 *  - "Attach link…" opens a small form: the file's URL (uploaded wherever the customer
 *    can open it), its name (taken from the URL when left empty) and its type (guessed
 *    from the name). Added files wait above the reply box until it is sent.
 *    console.js reads them with pending() and calls clear() once the reply is stored.
 * Every value is set with textContent or as a property, never as markup.
 */
(function () {
  'use strict';

  const { make } = window.consoleDom; // dom.js

  const TYPES = {
    png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp',
    svg: 'image/svg+xml', pdf: 'application/pdf', txt: 'text/plain', csv: 'text/csv',
    zip: 'application/zip', doc: 'application/msword', xls: 'application/vnd.ms-excel',
    docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
    xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    mp3: 'audio/mpeg', ogg: 'audio/ogg', wav: 'audio/wav', mp4: 'video/mp4', mov: 'video/quicktime',
  };
  const pending = [];

  const isLink = (url) => typeof url === 'string' && /^https?:\/\//i.test(url);

  function formatSize(size) {
    if (typeof size !== 'number' || size < 0) return '';
    if (size < 1024) return size + ' B';
    const units = ['KB', 'MB', 'GB', 'TB'];
    let value = size / 1024;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return (value < 10 ? value.toFixed(1) : Math.round(value)) + ' ' + units[unit];
  }

  function opener(url, child) {
    const link = make('a', 'attachment-link');
    Object.assign(link, { href: url, target: '_blank', rel: 'noopener noreferrer' });
    link.append(child);
    return link;
  }

  function renderOne(file) {
    const item = make('li', 'attachment');
    const name = file.name || 'file';
    const size = formatSize(file.size);
    if (!isLink(file.url)) { // never a link the server would not have stored
      item.append(make('span', 'attachment-name', name));
      return item;
    }
    const image = /^image\//.test(file.mime_type || '') && /^https:\/\//i.test(file.url);
    if (image) {
      const img = make('img', 'attachment-thumb');
      Object.assign(img, { src: file.url, alt: name, loading: 'lazy', referrerPolicy: 'no-referrer' });
      item.classList.add('attachment-image');
      item.append(opener(file.url, img));
    }
    const label = make('span', 'attachment-name', name);
    item.append(image ? label : opener(file.url, label));
    if (size) item.append(make('span', 'attachment-size', size));
    return item;
  }

  /** The list shown under a message's text, or null when it has no files. */
  function render(list) {
    if (!Array.isArray(list) || !list.length) return null;
    const ul = make('ul', 'attachments');
    list.forEach((file) => { if (file && typeof file === 'object') ul.append(renderOne(file)); });
    return ul;
  }

  // ---- attaching ---------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function guessName(url) {
    try {
      const last = new URL(url).pathname.split('/').filter(Boolean).pop();
      return last ? decodeURIComponent(last) : '';
    } catch (e) { return ''; }
  }

  function guessType(name) {
    const dot = name.lastIndexOf('.');
    return (dot > 0 && TYPES[name.slice(dot + 1).toLowerCase()]) || 'application/octet-stream';
  }

  function showPending() {
    const list = $('attach-pending');
    list.replaceChildren(...pending.map((file, index) => {
      const chip = make('li', 'attach-chip');
      chip.append(make('span', 'attachment-name', file.name), make('span', 'attachment-size', file.mime_type));
      const remove = make('button', 'attach-remove', '×');
      Object.assign(remove, { type: 'button', title: 'Remove ' + file.name });
      remove.setAttribute('aria-label', 'Remove ' + file.name);
      remove.addEventListener('click', () => { pending.splice(index, 1); showPending(); });
      chip.append(remove);
      return chip;
    }));
    list.hidden = !pending.length;
  }

  function field(id, labelText, type, hint) {
    const label = make('label', null, labelText);
    label.htmlFor = id;
    if (hint) label.append(' ', make('span', 'hint', hint));
    const input = make('input');
    Object.assign(input, { id, type, autocomplete: 'off' });
    return [label, input];
  }

  function toggle(open) {
    $('attach-form').hidden = !open;
    $('attach').setAttribute('aria-expanded', String(open));
    if (open) $('attach-url').focus();
  }

  function add(event) {
    event.preventDefault();
    const url = $('attach-url').value.trim();
    const problem = $('attach-problem');
    if (!isLink(url)) {
      $('attach-url').setAttribute('aria-invalid', 'true');
      problem.textContent = 'Enter the file\'s http or https link.';
      problem.hidden = false;
      return;
    }
    $('attach-url').removeAttribute('aria-invalid');
    problem.hidden = true;
    const name = $('attach-name').value.trim() || guessName(url) || url;
    const type = $('attach-type').value.trim().toLowerCase() || guessType(name);
    pending.push({ url, name: name.slice(0, 255), mime_type: type });
    $('attach-form').reset();
    toggle(false);
    showPending();
    $('composer').focus();
  }

  function build() {
    const composer = $('composer-form');
    const actions = composer && composer.querySelector('.secondary-actions');
    if (!composer || !actions) return;

    const button = make('button', 'button secondary', 'Attach link…');
    Object.assign(button, { id: 'attach', type: 'button', disabled: true });
    button.setAttribute('aria-controls', 'attach-form');
    button.setAttribute('aria-expanded', 'false');
    button.addEventListener('click', () => toggle($('attach-form').hidden));
    actions.append(button);

    const form = make('form', 'handover-form attach-form');
    Object.assign(form, { id: 'attach-form', noValidate: true, hidden: true });
    form.setAttribute('aria-labelledby', 'attach-heading');
    const heading = make('h2', 'handover-heading', 'Attach a file by its link');
    heading.id = 'attach-heading';
    const note = make('p', 'hint',
      'The bridge keeps links, not files: upload the file where the customer can open it, then paste its link.');
    const problem = make('p', 'attach-problem');
    Object.assign(problem, { id: 'attach-problem', hidden: true });
    problem.setAttribute('role', 'alert');
    const buttons = make('div', 'handover-actions');
    const cancel = make('button', 'button secondary', 'Cancel');
    cancel.type = 'button';
    cancel.addEventListener('click', () => toggle(false));
    const submit = make('button', 'button primary', 'Add');
    Object.assign(submit, { id: 'attach-add', type: 'submit' });
    buttons.append(cancel, submit);
    form.append(
      heading, note,
      ...field('attach-url', 'Link', 'url'),
      ...field('attach-name', 'Name', 'text', '(optional: from the link)'),
      ...field('attach-type', 'Type', 'text', '(optional: from the name, e.g. application/pdf)'),
      problem, buttons,
    );
    form.addEventListener('submit', add);
    composer.before(form);

    const list = make('ul', 'attach-pending');
    Object.assign(list, { id: 'attach-pending', hidden: true });
    list.setAttribute('aria-label', 'Files to send');
    composer.prepend(list);

    // console.js tells when the chat can be answered (active, not busy, link valid).
    document.addEventListener('console:controls', (e) => {
      const active = Boolean(e.detail && e.detail.active);
      button.disabled = !active;
      if (!active) toggle(false);
    });
  }

  window.consoleAttachments = {
    render,
    pending: () => pending.map((file) => Object.assign({}, file)),
    clear: () => { pending.length = 0; showPending(); },
  };

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', build);
  else build();
})();
