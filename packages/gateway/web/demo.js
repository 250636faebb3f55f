// The demo page: a chat with presence, join/leave and history, and a task board on a versioned document, over the
// centrifuge SDK. Every failure is shown as what it is; the status says "connected" in green only when all works.
'use strict';
(() => {
  const params = new URLSearchParams(location.search);
  const room = params.get('room') || 'chat:lobby';
  const board = params.get('board') || boardFor(room);
  const name = (params.get('name') || sessionStorage.getItem('switchboard-demo-name') || 'guest-' + randomId(2)).slice(0, 32);
  sessionStorage.setItem('switchboard-demo-name', name);

  const $ = (id) => document.getElementById(id);
  $('room').textContent = room;
  $('board').textContent = board;
  $('name').value = name;

  /** The room's document board: chat:team -> doc:team. */
  function boardFor(channel) {
    const i = channel.indexOf(':');
    return 'doc:' + ((i === -1 ? channel : channel.slice(i + 1)) || 'lobby');
  }

  function namespaceOf(channel) {
    const i = channel.indexOf(':');
    return i === -1 ? '' : channel.slice(0, i);
  }

  function randomId(bytes) {
    // getRandomValues works on plain http too, where crypto.randomUUID does not.
    const a = new Uint8Array(bytes);
    crypto.getRandomValues(a);
    return Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  // ---- status: one line per part, and the page's status is the worst of them

  const PART_LABELS = { connection: 'connection', chat: 'chat room', presence: "who's online", board: 'task board' };
  const PART_ELEMENTS = { chat: 'chat-state', presence: 'online-state', board: 'board-state' };
  const parts = {
    connection: { level: 'wait', text: 'connecting…' },
    chat: { level: 'wait', text: 'joining…' },
    presence: { level: 'wait', text: 'waiting for the room…' },
    board: { level: 'wait', text: 'loading…' },
  };

  function setPart(part, level, text) {
    parts[part] = { level, text };
    const el = PART_ELEMENTS[part] && $(PART_ELEMENTS[part]);
    if (el) {
      el.dataset.level = level;
      el.textContent = text;
    }
    renderStatus();
  }

  function renderStatus() {
    const status = $('status');
    const failed = Object.keys(parts).filter((p) => parts[p].level === 'error');
    let level = 'ok';
    let text = 'connected';
    if (parts.connection.level !== 'ok') {
      level = parts.connection.level;
      text = parts.connection.text;
    } else if (failed.length > 0) {
      level = 'error';
      text = 'connected, but the ' + failed.map((p) => PART_LABELS[p]).join(' and the ') + ' failed (see below)';
    } else if (Object.values(parts).some((p) => p.level === 'wait')) {
      level = 'wait';
      text = 'connected, joining…';
    }
    status.dataset.level = level;
    status.textContent = text;

    const list = $('problems');
    list.replaceChildren();
    for (const p of failed) {
      const li = document.createElement('li');
      li.dataset.part = p;
      li.textContent = PART_LABELS[p] + ': ' + parts[p].text;
      if (p === 'connection') {
        const again = document.createElement('button');
        again.textContent = 'connect again';
        again.addEventListener('click', () => client && client.connect());
        li.append(' ', again);
      }
      list.append(li);
    }
    $('send').disabled = !(parts.connection.level === 'ok' && parts.chat.level !== 'error' && parts.chat.level !== 'wait');
    $('add-task').disabled = !(parts.connection.level === 'ok' && parts.board.level === 'ok');
  }

  /** What an error code means, in words, with the server's own message. */
  function describe(code, message, channel) {
    const m = message ? ': ' + message : '';
    switch (code) {
      case 1:
        return 'the server did not answer in time (timeout)';
      case 100:
        return 'internal server error (100)' + m;
      case 101:
        return 'not authorized (101)' + m;
      case 102:
        return 'unknown namespace "' + namespaceOf(channel || '') + '": this server has no such namespace, so ' + channel + ' cannot be used (102)';
      case 103:
        return 'permission denied (103)' + m;
      case 106:
        return 'limit exceeded (106)' + m;
      case 107:
        return 'bad request (107)' + m;
      case 108:
        return 'not available (108)' + m;
      case 109:
        return 'token expired (109)' + m;
      case 111:
        return 'too many requests (111): slow down';
      default:
        return (message || 'error') + ' (code ' + code + ')';
    }
  }

  // ---- connection

  let client;
  let myClient = '';
  let wasConnected = false;
  let tokenMode = false;

  const wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/connection/websocket';

  /** A token from the dev server, or null when it hands out none (no --dev, or no --token-hmac-secret). */
  async function fetchToken() {
    const r = await fetch('/demo/token?user=' + encodeURIComponent(name), { cache: 'no-store' });
    if (r.status === 404) return null;
    if (!r.ok) throw new Error('the dev token endpoint answered HTTP ' + r.status);
    return r.json();
  }

  function describeDisconnect(code, reason) {
    if (code === 101 || code === 1) {
      return tokenMode
        ? 'not connected: the server refused the dev token (' + reason + ')'
        : 'not connected: this server requires a connection token (' + reason + '); the demo page gets one only from a server started with --dev and --token-hmac-secret';
    }
    if (code === 3503) return 'disconnected by the server (' + reason + ', code 3503)';
    if (code === 3500) return 'disconnected: invalid token (3500: ' + reason + ')';
    if (code === 3504) return 'disconnected: the server has too many connections (3504)';
    if (code === 0) return 'disconnected (the page closed the connection)';
    return 'disconnected (' + code + ': ' + reason + ')';
  }

  async function start() {
    let token = null;
    try {
      token = await fetchToken();
    } catch (e) {
      setPart('connection', 'error', 'cannot reach the server: ' + e.message);
      return;
    }
    const options = {};
    if (token) {
      tokenMode = true;
      options.token = token.token;
      options.getToken = async () => (await fetchToken()).token;
    }
    client = new Centrifuge(wsUrl, options);
    client.on('connecting', (ctx) => {
      const text = wasConnected ? 'connection lost (' + ctx.reason + '), reconnecting…' : 'connecting…';
      setPart('connection', 'wait', text);
      if (wasConnected) waitForConnection();
    });
    client.on('connected', (ctx) => {
      wasConnected = true;
      myClient = ctx.client;
      const who = $('whoami');
      who.dataset.client = ctx.client;
      who.textContent = (tokenMode ? 'signed in as "' + token.user + '" with a short-lived dev token' : 'anonymous (this dev server needs no token)') + ' · client ' + ctx.client.slice(0, 8);
      setPart('connection', 'ok', 'connected');
      renderOnline();
    });
    client.on('disconnected', (ctx) => {
      setPart('connection', 'error', describeDisconnect(ctx.code, ctx.reason));
      waitForConnection();
    });
    client.on('error', (ctx) => {
      if (parts.connection.level !== 'ok' && ctx.error) {
        setPart('connection', 'wait', (wasConnected ? 'reconnecting' : 'connecting') + '… (last attempt: ' + (ctx.error.message || ctx.type) + ')');
      }
    });
    startChat();
    startBoard();
    client.connect();
  }

  /** Without a connection nothing below is live: say so instead of showing the last state as current. */
  function waitForConnection() {
    for (const part of ['chat', 'presence', 'board']) {
      if (parts[part].level !== 'error') setPart(part, 'wait', 'waiting for the connection…');
    }
    members.clear();
    renderOnline();
  }

  $('who').addEventListener('submit', (e) => {
    e.preventDefault();
    const next = $('name').value.trim().slice(0, 32);
    if (!next || next === name) return;
    sessionStorage.setItem('switchboard-demo-name', next);
    params.set('name', next);
    location.search = params.toString();
  });

  // ---- chat: messages, history, join/leave lines

  let chatSub;
  const seenOffsets = new Set();
  /** Names learned from messages, by client id: anonymous presence entries carry no name. */
  const knownNames = new Map();

  function startChat() {
    chatSub = client.newSubscription(room, { recoverable: true, positioned: true, joinLeave: true });
    chatSub.on('subscribing', () => setPart('chat', 'wait', parts.connection.level === 'ok' ? 'joining…' : 'waiting for the connection…'));
    chatSub.on('subscribed', (ctx) => {
      setPart('chat', 'ok', 'joined ' + room);
      if (ctx.wasRecovering && ctx.recovered) addSystem('reconnected: missed messages recovered');
      else void loadHistory(ctx.wasRecovering);
      void loadPresence();
    });
    chatSub.on('unsubscribed', (ctx) => {
      if (ctx.code === 0) return;
      setPart('chat', 'error', describe(ctx.code, ctx.reason, room));
      setPart('presence', 'note', 'nobody to show: the room could not be joined');
      members.clear();
      renderOnline();
    });
    chatSub.on('error', (ctx) => {
      if (ctx.type === 'subscribe') setPart('chat', 'wait', 'joining failed, retrying: ' + describe(ctx.error.code, ctx.error.message, room));
    });
    chatSub.on('publication', (ctx) => addMessage(ctx, false));
    chatSub.on('join', (ctx) => {
      left.delete(ctx.info.client);
      joined.set(ctx.info.client, ctx.info);
      members.set(ctx.info.client, ctx.info);
      renderOnline();
      if (ctx.info.client !== myClient) addSystem(displayName(ctx.info) + ' joined');
    });
    chatSub.on('leave', (ctx) => {
      joined.delete(ctx.info.client);
      left.add(ctx.info.client);
      const info = members.get(ctx.info.client) || ctx.info;
      members.delete(ctx.info.client);
      renderOnline();
      addSystem(displayName(info) + ' left');
    });
    chatSub.subscribe();
  }

  async function loadHistory(unrecovered) {
    clearMessages();
    if (unrecovered) addSystem('reconnected, but missed messages could not be recovered: showing history again');
    try {
      const h = await chatSub.history({ limit: 50, reverse: true });
      const pubs = h.publications.slice().reverse();
      if (pubs.length > 0) addDivider('earlier messages, from history');
      for (const p of pubs) addMessage(p, true);
    } catch (e) {
      if (e.code === 108) setPart('chat', 'note', 'joined ' + room + ' (this room keeps no history, so earlier messages are not shown)');
      else setPart('chat', 'error', 'history: ' + describe(e.code, e.message, room));
    }
  }

  function clearMessages() {
    seenOffsets.clear();
    $('log').replaceChildren();
  }

  function addMessage(pub, earlier) {
    const offset = pub.offset || 0;
    if (offset > 0) {
      if (seenOffsets.has(offset)) return;
      seenOffsets.add(offset);
    }
    const d = pub.data && typeof pub.data === 'object' ? pub.data : { text: String(pub.data) };
    if (d.client && d.name) {
      knownNames.set(String(d.client), String(d.name));
      // Join and leave messages are best effort (a subscriber can miss them while it joins): someone speaking
      // who is not on the list means the list is behind.
      if (!earlier && parts.presence.level === 'ok' && !members.has(String(d.client))) void loadPresence();
      else renderOnline();
    }
    const row = document.createElement('div');
    row.className = 'msg' + (earlier ? ' earlier' : '');
    row.dataset.offset = String(offset);
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = String(d.name || '?');
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = String(d.text == null ? '' : d.text);
    const off = document.createElement('span');
    off.className = 'off';
    off.textContent = offset ? '#' + offset : '';
    row.append(who, text, off);
    // In offset order: history may arrive after a live message.
    const log = $('log');
    const later = offset > 0 ? [...log.querySelectorAll('.msg[data-offset]')].find((el) => Number(el.dataset.offset) > offset) : undefined;
    log.insertBefore(row, later || null);
    log.scrollTop = log.scrollHeight;
  }

  function addSystem(text) {
    const row = document.createElement('div');
    row.className = 'msg system';
    row.textContent = text;
    $('log').append(row);
    $('log').scrollTop = $('log').scrollHeight;
  }

  function addDivider(text) {
    const row = document.createElement('div');
    row.className = 'divider';
    row.textContent = '— ' + text + ' —';
    $('log').prepend(row);
  }

  $('chat-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('text');
    const error = $('send-error');
    error.hidden = true;
    try {
      await chatSub.publish({ name, text: input.value, client: myClient });
      input.value = '';
    } catch (err) {
      error.textContent = 'not sent: ' + describe(err.code, err.message, room);
      error.hidden = false;
    }
  });

  // ---- who's online (presence)

  const members = new Map();
  /** Joins and leaves seen while a presence read was in flight: its answer may predate them. */
  const joined = new Map();
  const left = new Set();

  /** Also read now and then: a join or leave message the page missed is corrected within this time. */
  const PRESENCE_REFRESH_MS = 15000;
  setInterval(() => {
    if (chatSub && chatSub.state === 'subscribed' && parts.presence.level === 'ok') void loadPresence();
  }, PRESENCE_REFRESH_MS);

  async function loadPresence() {
    joined.clear();
    left.clear();
    try {
      const p = await chatSub.presence();
      members.clear();
      for (const [id, info] of Object.entries(p.clients)) if (!left.has(id)) members.set(id, info);
      for (const [id, info] of joined) members.set(id, info);
      setPart('presence', 'ok', 'live: joins and leaves update this list');
    } catch (e) {
      members.clear();
      if (e.code === 108) setPart('presence', 'note', 'not available: presence is off in this namespace' + (e.message ? ' (' + e.message + ')' : ''));
      else setPart('presence', 'error', describe(e.code, e.message, room));
    }
    renderOnline();
  }

  function displayName(info) {
    const fromToken = info.connInfo && typeof info.connInfo === 'object' && info.connInfo.name;
    return String(fromToken || info.user || knownNames.get(info.client) || (info.client === myClient ? name : 'a guest'));
  }

  function renderOnline() {
    const list = $('online');
    list.replaceChildren();
    const entries = [...members.values()].sort((a, b) => (a.client === myClient ? -1 : b.client === myClient ? 1 : displayName(a).localeCompare(displayName(b))));
    for (const info of entries) {
      const li = document.createElement('li');
      li.dataset.client = info.client;
      if (info.client === myClient) li.className = 'me';
      li.textContent = displayName(info) + (info.client === myClient ? ' (you)' : '');
      const id = document.createElement('span');
      id.className = 'id';
      id.textContent = info.client.slice(0, 8);
      li.append(id);
      list.append(li);
    }
    $('online-count').textContent = members.size ? '(' + members.size + ')' : '';
  }

  // ---- task board: a versioned document

  const doc = { version: 0, state: {}, loaded: false };
  let queued = [];
  let boardSub;
  /** Tasks being edited: id -> the version the edit started from (the update's base). */
  const editing = new Map();
  const rows = new Map();

  function startBoard() {
    boardSub = client.newSubscription(board, { recoverable: true, positioned: true });
    boardSub.on('subscribing', () => setPart('board', 'wait', parts.connection.level === 'ok' ? 'loading…' : 'waiting for the connection…'));
    boardSub.on('subscribed', (ctx) => {
      if (ctx.wasRecovering && ctx.recovered) setPart('board', 'ok', 'live: changes from other tabs appear as they are made');
      else void reloadDoc();
    });
    boardSub.on('unsubscribed', (ctx) => {
      if (ctx.code === 0) return;
      setPart('board', 'error', describe(ctx.code, ctx.reason, board));
    });
    boardSub.on('error', (ctx) => {
      if (ctx.type === 'subscribe') setPart('board', 'wait', 'loading failed, retrying: ' + describe(ctx.error.code, ctx.error.message, board));
    });
    boardSub.on('publication', (ctx) => {
      if (!doc.loaded) queued.push(ctx.data);
      else applyUpdate(ctx.data);
    });
    boardSub.subscribe();
  }

  async function reloadDoc() {
    doc.loaded = false;
    try {
      const r = (await client.rpc('doc.get', { channel: board })).data;
      doc.version = r.version;
      doc.state = r.state || {};
      doc.loaded = true;
      setPart('board', 'ok', 'live: changes from other tabs appear as they are made');
      const pending = queued;
      queued = [];
      renderBoard();
      for (const u of pending) applyUpdate(u);
    } catch (e) {
      setPart('board', 'error', 'cannot load the board: ' + describe(e.code, e.message, board));
    }
  }

  /** A publication of the document's channel: one accepted update, applied on the version it follows. */
  function applyUpdate(u) {
    if (!u || typeof u.version !== 'number' || u.version <= doc.version) return;
    if (u.version !== doc.version + 1) {
      void reloadDoc();
      return;
    }
    for (const op of u.ops) applyOp(doc.state, op);
    doc.version = u.version;
    logVersion(u);
    renderBoard();
  }

  function keysOf(path) {
    return path.split('/').slice(1).map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
  }

  function own(obj, key) {
    return Object.prototype.hasOwnProperty.call(obj, key);
  }

  /** Assignment that never touches a prototype, whatever the key ("__proto__" included). */
  function put(obj, key, value) {
    Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  }

  function same(a, b) {
    return JSON.stringify(a) === JSON.stringify(b);
  }

  /** The server's rules: set creates missing objects, del/remove of something missing change nothing. */
  function applyOp(root, op) {
    const keys = keysOf(op.path);
    const last = keys.pop();
    const create = op.op === 'set' || op.op === 'incr' || op.op === 'add';
    let parent = root;
    for (const k of keys) {
      let next = own(parent, k) ? parent[k] : undefined;
      if (next === null || typeof next !== 'object' || Array.isArray(next)) {
        if (!create) return;
        next = {};
        put(parent, k, next);
      }
      parent = next;
    }
    const current = own(parent, last) ? parent[last] : undefined;
    switch (op.op) {
      case 'set':
        put(parent, last, JSON.parse(JSON.stringify(op.value)));
        break;
      case 'del':
        delete parent[last];
        break;
      case 'incr':
        put(parent, last, (typeof current === 'number' ? current : 0) + op.value);
        break;
      case 'add':
        if (!Array.isArray(current)) put(parent, last, [op.value]);
        else if (!current.some((v) => same(v, op.value))) current.push(op.value);
        break;
      case 'remove':
        if (Array.isArray(current)) put(parent, last, current.filter((v) => !same(v, op.value)));
        break;
    }
  }

  function valueAt(root, path) {
    let v = root;
    for (const k of keysOf(path)) {
      if (v === null || typeof v !== 'object' || !own(v, k)) return undefined;
      v = v[k];
    }
    return v;
  }

  function tasks() {
    const t = doc.state.tasks;
    return t && typeof t === 'object' && !Array.isArray(t) ? t : {};
  }

  function taskTitle(id) {
    const t = tasks()[id];
    return t && typeof t.title === 'string' ? t.title : id;
  }

  function renderBoard() {
    $('doc-version').textContent = 'version ' + doc.version;
    const all = tasks();
    const ids = Object.keys(all)
      .filter((id) => all[id] && typeof all[id] === 'object')
      .sort((a, b) => (Number(all[a].created) || 0) - (Number(all[b].created) || 0) || a.localeCompare(b));
    for (const [id, row] of rows) {
      if (!own(all, id)) {
        row.li.remove();
        rows.delete(id);
        editing.delete(id);
      }
    }
    const list = $('tasks');
    ids.forEach((id, i) => {
      const row = rows.get(id) || makeRow(id);
      updateRow(row, all[id]);
      // Move only rows out of place: moving the row being edited would take the focus from its input.
      if (list.children[i] !== row.li) list.insertBefore(row.li, list.children[i] || null);
    });
  }

  function makeRow(id) {
    const li = document.createElement('li');
    li.dataset.task = id;
    const done = document.createElement('input');
    done.type = 'checkbox';
    done.className = 'done';
    done.title = 'done';
    const title = document.createElement('span');
    title.className = 'title';
    const input = document.createElement('input');
    input.className = 'edit-title';
    input.maxLength = 200;
    const hint = document.createElement('span');
    hint.className = 'hint';
    const edit = button('edit', 'edit');
    const save = button('save', 'save');
    const cancel = button('cancel', 'cancel');
    const del = button('delete', 'delete');
    li.append(done, title, input, hint, edit, save, cancel, del);
    const row = { id, li, done, title, input, hint, edit, save, cancel, del };
    done.addEventListener('change', () => {
      const ops = [{ op: 'set', path: '/tasks/' + id + '/done', value: done.checked }];
      void update(ops, doc.version, (done.checked ? 'marking "' : 'unmarking "') + taskTitle(id) + '" done');
    });
    edit.addEventListener('click', () => {
      editing.set(id, doc.version);
      input.value = taskTitle(id);
      renderBoard();
      input.focus();
    });
    cancel.addEventListener('click', () => {
      editing.delete(id);
      renderBoard();
    });
    const saveTitle = () => {
      const base = editing.get(id);
      if (base === undefined) return;
      editing.delete(id);
      renderBoard();
      const value = input.value.trim() || taskTitle(id);
      void update([{ op: 'set', path: '/tasks/' + id + '/title', value }], base, 'renaming "' + taskTitle(id) + '" to "' + value + '"');
    };
    save.addEventListener('click', saveTitle);
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') saveTitle();
      if (e.key === 'Escape') cancel.click();
    });
    del.addEventListener('click', () => {
      void update([{ op: 'del', path: '/tasks/' + id }], doc.version, 'deleting "' + taskTitle(id) + '"');
    });
    rows.set(id, row);
    return row;
  }

  function button(cls, text) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = cls;
    b.textContent = text;
    return b;
  }

  function updateRow(row, task) {
    const isEditing = editing.has(row.id);
    row.li.classList.toggle('done', task.done === true);
    row.li.classList.toggle('editing', isEditing);
    row.done.checked = task.done === true;
    row.title.textContent = String(task.title == null ? '' : task.title);
    row.title.hidden = isEditing;
    row.edit.hidden = isEditing;
    row.del.hidden = isEditing;
    row.input.hidden = !isEditing;
    row.save.hidden = !isEditing;
    row.cancel.hidden = !isEditing;
    const base = editing.get(row.id);
    row.hint.hidden = !isEditing;
    row.hint.textContent = isEditing
      ? 'editing version ' + base + (doc.version > base ? '; the board is at version ' + doc.version + ' now: saving merges, or shows a conflict' : '')
      : '';
  }

  $('task-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('task-title');
    const title = input.value.trim();
    if (!title) return;
    const id = randomId(4);
    const r = await update([{ op: 'set', path: '/tasks/' + id, value: { title, done: false, created: Date.now() } }], doc.version, 'adding "' + title + '"');
    if (r && r.status !== 'conflict') input.value = '';
  });

  /** One doc.update; its outcome is shown as it is: saved, merged, a conflict with the current value, or an error. */
  async function update(ops, base, label) {
    let r;
    try {
      r = (await client.rpc('doc.update', { channel: board, base, ops, mode: 'merge', key: randomId(16) })).data;
    } catch (e) {
      showNotice('error', [text('Not saved: ' + label + ': ' + describe(e.code, e.message, board))]);
      return undefined;
    }
    if (r.status === 'applied') {
      showNotice('applied', [text('Saved: ' + label + ' is version ' + r.version + '.')]);
    } else if (r.status === 'merged') {
      const between = r.version - 1 > base + 1 ? 'versions ' + (base + 1) + '–' + (r.version - 1) : 'version ' + (base + 1);
      showNotice('merged', [
        text('Merged: you made this change on version ' + base + '; ' + between + ' changed something else meanwhile, so both are kept. ' + label + ' is version ' + r.version + '.'),
      ]);
    } else {
      showConflict(r, ops, base, label);
    }
    return r;
  }

  function showConflict(r, ops, base, label) {
    if (r.version > doc.version) {
      // The answer carries the current state; publications up to r.version are then skipped.
      doc.version = r.version;
      doc.state = r.state || {};
      renderBoard();
    }
    const values = document.createElement('dl');
    values.className = 'values';
    for (const path of r.paths) {
      const dt = document.createElement('dt');
      dt.textContent = describePath(path) + ' ';
      const raw = document.createElement('code');
      raw.textContent = path;
      dt.append(raw);
      const current = document.createElement('dd');
      current.className = 'current';
      const v = valueAt(r.state || {}, path);
      current.textContent = 'current value: ' + (v === undefined ? '(deleted)' : JSON.stringify(v));
      values.append(dt, current);
      const mine = ops.find((op) => op.path === path || op.path.startsWith(path + '/') || path.startsWith(op.path + '/'));
      if (mine) {
        const dd = document.createElement('dd');
        dd.className = 'mine';
        dd.textContent = 'yours: ' + (mine.op === 'del' ? '(delete)' : JSON.stringify(mine.value));
        values.append(dd);
      }
    }
    const actions = document.createElement('div');
    actions.className = 'actions';
    const retry = button('retry', 'Save mine over it');
    retry.addEventListener('click', () => void update(ops, r.version, label));
    const keep = button('keep', 'Keep the current value');
    keep.addEventListener('click', () => hideNotice());
    actions.append(retry, keep);
    showNotice('conflict', [
      text(
        'Conflict: ' + label + ' was not saved. You made it on version ' + base + ', and since then ' +
          (r.paths.length ? r.paths.map(describePath).join(', ') : 'the document') + ' changed; the board is at version ' + r.version + '.',
      ),
      values,
      actions,
    ]);
  }

  /** A document path in words: /tasks/<id>/title is the title of that task. */
  function describePath(path) {
    const keys = keysOf(path);
    if (keys[0] !== 'tasks' || keys.length < 2) return path;
    const task = '"' + taskTitle(keys[1]) + '"';
    if (keys.length === 2) return 'the task ' + task;
    if (keys[2] === 'title') return 'the title of ' + task;
    if (keys[2] === 'done') return 'the done mark of ' + task;
    return keys.slice(2).join('/') + ' of ' + task;
  }

  function text(t) {
    const p = document.createElement('p');
    p.className = 'message';
    p.style.margin = '0';
    p.textContent = t;
    return p;
  }

  function showNotice(kind, children) {
    const n = $('doc-notice');
    n.dataset.kind = kind;
    n.replaceChildren(...children);
    n.hidden = false;
  }

  function hideNotice() {
    $('doc-notice').hidden = true;
  }

  function logVersion(u) {
    const li = document.createElement('li');
    li.value = u.version;
    const ops = (u.ops || []).map((op) => op.op + ' ' + op.path + (op.value !== undefined && typeof op.value !== 'object' ? ' = ' + JSON.stringify(op.value) : '')).join(', ');
    li.textContent = 'version ' + u.version + ': ' + u.status + (u.status === 'merged' ? ' (made on version ' + u.base + ')' : '') + ' — ' + ops;
    const list = $('versions');
    list.prepend(li);
    while (list.children.length > 50) list.lastChild.remove();
  }

  renderStatus();
  void start();
})();
