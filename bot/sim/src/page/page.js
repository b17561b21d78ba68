// The simulated channel, live. It reads whole snapshots from /events (server-sent
// events) and redraws the channel from each; its buttons and forms post to the
// control API (/press, /modal-submit) as the person picked at the top.
//
// Everything shown comes from the bot or from whoever filed a request (reasons,
// names, commands), so the DOM is built with createElement and textContent only,
// never by parsing a string as markup. The page's Content-Security-Policy
// allows no inline script, so nothing in a message could run even if it were markup.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const COMPONENTS_V2 = 1 << 15;
  const EPHEMERAL = 1 << 6;
  const OTHER = 'other';

  const view = {
    snap: null,
    dismissed: new Set(), // ephemeral messages and modals closed on this page
    modalShown: null, // the interaction id of the modal on screen
    lastCount: 0,
  };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // ---- who presses -------------------------------------------------------------

  function people() {
    return (view.snap && view.snap.people) || [];
  }

  function presser() {
    const sel = $('person');
    if (sel.value === OTHER) {
      // "42" or, with role ids, "42:7,8".
      const m = /^(\d{1,20})(?:\s*:\s*(\d{1,20}(?:\s*,\s*\d{1,20})*))?$/.exec($('other-id').value.trim());
      if (!m) return null;
      const roles = m[2] ? m[2].split(',').map((r) => r.trim()) : [];
      return { user_id: m[1], name: 'user' + m[1], roles };
    }
    return people().find((p) => p.user_id === sel.value) || null;
  }

  function fillPeople() {
    const sel = $('person');
    const want = sel.value || new URLSearchParams(location.search).get('as') || '';
    const key = JSON.stringify(people());
    if (sel.dataset.key === key) return;
    sel.dataset.key = key;
    sel.replaceChildren();
    for (const p of people()) {
      const roles = p.roles.length ? ' · roles ' + p.roles.join(', ') : '';
      const o = el('option', null, p.name + ' (' + p.user_id + ')' + roles);
      o.value = p.user_id;
      sel.append(o);
    }
    const other = el('option', null, 'someone else (type a user id)');
    other.value = OTHER;
    sel.append(other);
    const known = people().some((p) => p.user_id === want);
    if (known || want === OTHER) {
      sel.value = want;
    } else if (/^\d{1,20}$/.test(want)) {
      sel.value = OTHER;
      $('other-id').value = want;
    } else {
      sel.value = people().length ? people()[0].user_id : OTHER;
    }
    $('other-id').hidden = sel.value !== OTHER;
  }

  function nameOf(id) {
    const p = people().find((x) => x.user_id === id);
    if (p) return p.name;
    if (view.snap && view.snap.bot && view.snap.bot.id === id) return view.snap.bot.name;
    return 'user' + id;
  }

  // ---- Discord's markdown, the parts the bot uses ------------------------------

  const TOKEN = /\\([^A-Za-z0-9\s])|`([^`\n]+)`|\*\*([^\n]+?)\*\*|__([^\n]+?)__|~~([^\n]+?)~~|\*([^*\s][^*\n]*?)\*|<@!?(\d+)>|<@&(\d+)>|<#(\d+)>|<t:(-?\d+)(?::([tTdDfFR]))?>/g;

  function inline(text, into) {
    let at = 0;
    TOKEN.lastIndex = 0;
    for (const m of text.matchAll(TOKEN)) {
      if (m.index > at) into.append(document.createTextNode(text.slice(at, m.index)));
      at = m.index + m[0].length;
      if (m[1] !== undefined) into.append(document.createTextNode(m[1]));
      else if (m[2] !== undefined) into.append(el('code', null, m[2]));
      else if (m[3] !== undefined) into.append(inline(m[3], el('strong')));
      else if (m[4] !== undefined) into.append(inline(m[4], el('u')));
      else if (m[5] !== undefined) into.append(inline(m[5], el('s')));
      else if (m[6] !== undefined) into.append(inline(m[6], el('em')));
      else if (m[7] !== undefined) into.append(el('span', 'mention', '@' + nameOf(m[7])));
      else if (m[8] !== undefined) into.append(el('span', 'mention', '@role ' + m[8]));
      else if (m[9] !== undefined) into.append(el('span', 'mention', '#channel'));
      else if (m[10] !== undefined) into.append(stamp(Number(m[10]), m[11] || 'f'));
    }
    if (at < text.length) into.append(document.createTextNode(text.slice(at)));
    return into;
  }

  // A block of markdown: headings (#, ##, ###), subtext (-#), quotes (>), lines.
  function block(text, cls) {
    const out = el('div', cls || 'content');
    for (const line of String(text).split('\n')) {
      let m;
      if ((m = /^(#{1,3}) (.*)$/.exec(line))) out.append(inline(m[2], el('div', 'h' + m[1].length)));
      else if ((m = /^-# (.*)$/.exec(line))) out.append(inline(m[1], el('div', 'subtext')));
      else if ((m = /^> ?(.*)$/.exec(line))) out.append(inline(m[1], el('div', 'line quote')));
      else out.append(inline(line, el('div', 'line')));
    }
    return out;
  }

  function stamp(secs, style) {
    const t = new Date(secs * 1000);
    const span = el('span', 'stamp');
    span.dataset.unix = String(secs);
    span.dataset.style = style;
    span.textContent = formatStamp(t, style);
    span.title = t.toLocaleString();
    return span;
  }

  function formatStamp(t, style) {
    const o = {
      t: { timeStyle: 'short' },
      T: { timeStyle: 'medium' },
      d: { dateStyle: 'short' },
      D: { dateStyle: 'long' },
      f: { dateStyle: 'long', timeStyle: 'short' },
      F: { dateStyle: 'full', timeStyle: 'short' },
    }[style];
    if (o) return new Intl.DateTimeFormat(undefined, o).format(t);
    const secs = Math.round((t.getTime() - Date.now()) / 1000);
    const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
    const abs = Math.abs(secs);
    if (abs < 60) return rtf.format(secs, 'second');
    if (abs < 3600) return rtf.format(Math.round(secs / 60), 'minute');
    if (abs < 86400) return rtf.format(Math.round(secs / 3600), 'hour');
    return rtf.format(Math.round(secs / 86400), 'day');
  }

  function colour(n) {
    return typeof n === 'number' ? '#' + n.toString(16).padStart(6, '0') : null;
  }

  // ---- messages ----------------------------------------------------------------

  function embed(e) {
    const box = el('div', 'embed');
    const c = colour(e.color);
    if (c) box.style.borderLeftColor = c;
    if (e.author && e.author.name) box.append(el('div', 'embed-footer', e.author.name));
    if (e.title) box.append(inline(e.title, el('div', 'embed-title')));
    if (e.description) box.append(block(e.description, 'embed-desc'));
    if (Array.isArray(e.fields) && e.fields.length) {
      const grid = el('div', 'fields');
      for (const f of e.fields) {
        const field = el('div', f.inline ? 'field inline' : 'field');
        field.append(inline(f.name || '', el('div', 'field-name')));
        field.append(block(f.value || '', 'field-value'));
        grid.append(field);
      }
      box.append(grid);
    }
    const foot = [];
    if (e.footer && e.footer.text) foot.push(e.footer.text);
    if (e.timestamp) foot.push(new Date(e.timestamp).toLocaleString());
    if (foot.length) box.append(el('div', 'embed-footer', foot.join(' • ')));
    return box;
  }

  function button(b, msg) {
    const label = (b.emoji && b.emoji.name ? b.emoji.name + ' ' : '') + (b.label || '');
    if (b.style === 5) {
      const a = el('a', 'btn style-5', label + ' ↗');
      if (/^https?:\/\//.test(b.url || '')) {
        a.href = b.url;
        a.rel = 'noopener noreferrer';
        a.target = '_blank';
      }
      return a;
    }
    const btn = el('button', 'btn style-' + (b.style || 2), label);
    btn.type = 'button';
    btn.disabled = b.disabled === true;
    if (b.custom_id) btn.dataset.customId = b.custom_id;
    btn.addEventListener('click', () => press(msg, b.custom_id, btn));
    return btn;
  }

  function row(r, msg) {
    const out = el('div', 'row');
    for (const c of r.components || []) {
      if (c.type === 2) out.append(button(c, msg));
      else out.append(el('span', 'media', '[a select menu]'));
    }
    return out;
  }

  // A components v2 layout: containers, sections, text displays, separators, rows.
  function layout(c, msg) {
    switch (c.type) {
      case 1:
        return row(c, msg);
      case 10:
        return block(c.content || '');
      case 14: {
        const hr = el('hr', c.divider === false ? 'separator' : 'separator divider');
        return hr;
      }
      case 9: {
        const s = el('div', 'section');
        const texts = el('div', 'texts');
        for (const t of c.components || []) texts.append(layout(t, msg));
        s.append(texts);
        if (c.accessory) {
          s.append(c.accessory.type === 2 ? button(c.accessory, msg) : el('span', 'media', '[thumbnail]'));
        }
        return s;
      }
      case 17: {
        const box = el('div', 'container');
        const a = colour(c.accent_color);
        if (a) box.style.borderLeftColor = a;
        for (const k of c.components || []) box.append(layout(k, msg));
        return box;
      }
      case 12:
        return el('div', 'media', '[media gallery]');
      case 13:
        return el('div', 'media', '[file]');
      default:
        return el('div', 'media', '[component type ' + c.type + ']');
    }
  }

  function initials(name) {
    const parts = String(name).split(/[^A-Za-z0-9]+/).filter(Boolean);
    return (parts.slice(0, 2).map((p) => p[0]).join('') || '?').toUpperCase();
  }

  function message(m) {
    const sim = m.sim || {};
    const ephemeral = (m.flags & EPHEMERAL) !== 0;
    const box = el('article', ephemeral ? 'msg ephemeral' : 'msg');
    box.dataset.id = m.id;
    if (ephemeral) box.dataset.ephemeral = 'true';
    const author = (m.author && (m.author.global_name || m.author.username)) || 'bot';
    box.append(el('div', 'avatar', initials(author)));
    const body = el('div', 'body');
    const meta = el('div', 'meta');
    meta.append(el('span', 'author', author));
    if (m.author && m.author.bot) meta.append(el('span', 'tag', 'app'));
    if (m.timestamp) meta.append(el('span', 'time', new Date(m.timestamp).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })));
    body.append(meta);
    if (m.content) body.append(block(m.content));
    for (const e of m.embeds || []) body.append(embed(e));
    const v2 = (m.flags & COMPONENTS_V2) !== 0;
    for (const c of m.components || []) body.append(v2 ? layout(c, m) : row(c, m));
    if (sim.edited > 0) body.append(el('span', 'edited', '(edited)'));
    if (ephemeral) {
      const note = el('div', 'ephemeral-note', 'Only you can see this • ');
      const dismiss = el('button', null, 'Dismiss message');
      dismiss.type = 'button';
      dismiss.addEventListener('click', () => {
        view.dismissed.add('m' + m.id);
        draw();
      });
      note.append(dismiss);
      body.append(note);
    }
    box.append(body);
    return box;
  }

  // ---- the channel -------------------------------------------------------------

  function visible(m, who) {
    const sim = m.sim || {};
    if (view.dismissed.has('m' + m.id)) return false;
    if (!sim.ephemeral) return true;
    return who !== null && sim.for_user === who.user_id;
  }

  function draw() {
    const snap = view.snap;
    if (!snap) return;
    fillPeople();
    const who = presser();
    const list = $('messages');
    const nearBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 80;
    const shown = snap.messages.filter((m) => visible(m, who));
    list.replaceChildren(...shown.map(message));
    $('empty').hidden = shown.length > 0;
    if (shown.length > view.lastCount || nearBottom) window.scrollTo(0, document.body.scrollHeight);
    view.lastCount = shown.length;
    const status = $('status');
    if (status.dataset.state !== 'lost') {
      status.dataset.state = snap.connected ? 'live' : 'offline';
      status.textContent = snap.connected ? 'live' : 'bot offline';
    }
    drawModal(who);
  }

  // ---- modals ------------------------------------------------------------------

  function openModal(who) {
    if (!who || !view.snap) return null;
    const open = view.snap.modals.filter((x) => x.user_id === who.user_id && x.open && !view.dismissed.has('i' + x.interaction_id));
    return open.length ? open[open.length - 1] : null;
  }

  function drawModal(who) {
    const layer = $('modal-layer');
    const modal = openModal(who);
    if (!modal) {
      layer.hidden = true;
      layer.replaceChildren();
      view.modalShown = null;
      return;
    }
    // Leave a form being filled in alone; redraw only for another one.
    if (view.modalShown === modal.interaction_id) return;
    view.modalShown = modal.interaction_id;
    const box = el('form', 'modal');
    box.setAttribute('role', 'dialog');
    box.setAttribute('aria-label', modal.title);
    box.noValidate = true;
    box.append(el('h2', null, modal.title));
    const inputs = el('div', 'inputs');
    const fields = [];
    for (const i of modal.inputs) {
      const wrap = el('div', 'input');
      const id = 'in-' + fields.length;
      const label = el('label', null, i.label || i.custom_id);
      label.htmlFor = id;
      if (i.required) label.append(el('span', 'req', '*'));
      wrap.append(label);
      if (i.description) wrap.append(el('div', 'hint', i.description));
      if (i.type !== 4) {
        wrap.append(el('div', 'hint', '(a select: submitted with no choice)'));
        inputs.append(wrap);
        continue;
      }
      const input = i.style === 2 ? el('textarea') : el('input');
      if (i.style !== 2) input.type = 'text';
      input.id = id;
      input.value = i.value || '';
      if (i.placeholder) input.placeholder = i.placeholder;
      if (i.max_length) input.maxLength = i.max_length;
      input.dataset.customId = i.custom_id;
      wrap.append(input);
      inputs.append(wrap);
      fields.push(input);
    }
    box.append(inputs);
    const err = el('div', 'error');
    err.hidden = true;
    box.append(err);
    const actions = el('div', 'actions');
    const cancel = el('button', 'btn cancel', 'Cancel');
    cancel.type = 'button';
    cancel.addEventListener('click', () => {
      view.dismissed.add('i' + modal.interaction_id);
      drawModal(presser());
    });
    const submit = el('button', 'btn style-1', 'Submit');
    submit.type = 'submit';
    actions.append(cancel, submit);
    box.append(actions);
    box.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const values = {};
      for (const f of fields) values[f.dataset.customId] = f.value;
      submit.disabled = true;
      const body = {
        custom_id: modal.custom_id,
        user_id: who.user_id,
        username: who.name,
        roles: who.roles,
        values,
      };
      if (modal.message_id) body.message_id = modal.message_id;
      const answer = await post('/modal-submit', body);
      submit.disabled = false;
      if (answer.ok) {
        view.dismissed.add('i' + modal.interaction_id);
        drawModal(presser());
      } else {
        err.textContent = answer.error;
        err.hidden = false;
      }
    });
    layer.replaceChildren(box);
    layer.hidden = false;
    if (fields.length) fields[0].focus();
  }

  // ---- pressing ----------------------------------------------------------------

  async function post(path, body) {
    try {
      const r = await fetch(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const answer = await r.json().catch(() => ({}));
      return { ok: r.ok, error: answer.error || 'the simulator answered ' + r.status, answer };
    } catch (e) {
      return { ok: false, error: 'the simulator cannot be reached: ' + e.message };
    }
  }

  async function press(msg, customId, btn) {
    const who = presser();
    if (!who) {
      toast('Type the user id to press as first.');
      return;
    }
    btn.classList.add('pending');
    const answer = await post('/press', {
      message_id: msg.id,
      custom_id: customId,
      user_id: who.user_id,
      username: who.name,
      roles: who.roles,
    });
    btn.classList.remove('pending');
    if (!answer.ok) toast(answer.error);
  }

  let toastTimer = null;
  function toast(text) {
    const t = $('toast');
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      t.hidden = true;
    }, 6000);
  }

  // ---- the live feed -----------------------------------------------------------

  function connect() {
    const status = $('status');
    const events = new EventSource('/events');
    events.addEventListener('snapshot', (ev) => {
      view.snap = JSON.parse(ev.data);
      status.dataset.state = 'live';
      draw();
      document.body.dataset.ready = 'true';
    });
    events.addEventListener('error', () => {
      status.dataset.state = 'lost';
      status.textContent = 'reconnecting…';
    });
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('person').addEventListener('change', () => {
      $('other-id').hidden = $('person').value !== OTHER;
      view.modalShown = null;
      draw();
    });
    $('other-id').addEventListener('input', () => {
      view.modalShown = null;
      draw();
    });
    // Relative timestamps ("in 5 minutes") move on without a new snapshot.
    setInterval(() => {
      for (const s of document.querySelectorAll('.stamp[data-style="R"]')) {
        s.textContent = formatStamp(new Date(Number(s.dataset.unix) * 1000), 'R');
      }
    }, 15000);
    connect();
  });
})();
