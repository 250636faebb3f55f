// The operator's console: logs in with the password, then calls the server API through /console/api/<method>
// with a short-lived session token. It polls `info` and `channels` and draws the cluster's rates.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = 'switchboard-console-session';
  const POLL_MS = 2000;
  const CHART_POINTS = 90;
  const BUSIEST = 20;

  let session = readSession();
  let pollTimer = 0;
  let expiryTimer = 0;
  let pattern = '';
  /** Cluster-wide rates, oldest first: {deliveries, publications}. */
  const series = [];

  function readSession() {
    try {
      const s = JSON.parse(sessionStorage.getItem(TOKEN_KEY) || 'null');
      return s && typeof s.token === 'string' && s.expiresAt > Date.now() ? s : null;
    } catch {
      return null;
    }
  }

  // ---- login and session

  function showLogin(message) {
    session = null;
    sessionStorage.removeItem(TOKEN_KEY);
    clearInterval(pollTimer);
    clearTimeout(expiryTimer);
    $('app-view').hidden = true;
    $('logout').hidden = true;
    $('session').textContent = '';
    $('login-view').hidden = false;
    const error = $('login-error');
    error.hidden = !message;
    error.textContent = message || '';
    $('password').value = '';
    $('password').focus();
  }

  function showApp() {
    $('login-view').hidden = true;
    $('app-view').hidden = false;
    $('logout').hidden = false;
    const ends = new Date(session.expiresAt);
    $('session').textContent = 'logged in until ' + ends.toLocaleTimeString() + ' (sessions last 15 minutes)';
    clearTimeout(expiryTimer);
    expiryTimer = setTimeout(() => showLogin('Your session ended: log in again.'), session.expiresAt - Date.now());
    void poll();
    clearInterval(pollTimer);
    pollTimer = setInterval(() => void poll(), POLL_MS);
  }

  $('login').addEventListener('submit', async (e) => {
    e.preventDefault();
    const error = $('login-error');
    error.hidden = true;
    $('login-button').disabled = true;
    try {
      const r = await fetch('/console/login', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ password: $('password').value }),
      });
      const body = await r.json().catch(() => ({}));
      if (r.status === 200 && body.token) {
        session = { token: body.token, expiresAt: Date.now() + body.expires_in * 1000 };
        sessionStorage.setItem(TOKEN_KEY, JSON.stringify(session));
        showApp();
        return;
      }
      let message = 'Login failed (HTTP ' + r.status + ').';
      if (r.status === 401) message = 'Wrong password.';
      if (r.status === 429) message = 'Too many failed logins from this address: try again in ' + (r.headers.get('Retry-After') || 'a few') + ' seconds.';
      if (r.status === 404) message = 'The console is not enabled on this gateway.';
      error.textContent = message;
      error.hidden = false;
    } catch (err) {
      error.textContent = 'Cannot reach the gateway: ' + err.message;
      error.hidden = false;
    } finally {
      $('login-button').disabled = false;
    }
  });

  $('logout').addEventListener('click', () => showLogin(''));

  // ---- the server API, through the console's session

  class ApiError extends Error {
    constructor(code, message) {
      super(message);
      this.code = code;
    }
  }

  async function api(method, body) {
    if (!session) throw new ApiError(101, 'not logged in');
    let r;
    try {
      r = await fetch('/console/api/' + encodeURIComponent(method), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + session.token },
        body: JSON.stringify(body || {}),
      });
    } catch (err) {
      throw new ApiError(0, 'cannot reach the gateway: ' + err.message);
    }
    if (r.status === 401) {
      showLogin('Your session expired or is no longer valid: log in again.');
      throw new ApiError(101, 'session expired');
    }
    const json = await r.json().catch(() => undefined);
    if (json === undefined) throw new ApiError(0, 'the gateway answered HTTP ' + r.status + ' without JSON');
    if (json.error) throw new ApiError(json.error.code, json.error.message);
    return json.result;
  }

  function describe(err) {
    return err.code ? err.message + ' (error ' + err.code + ')' : err.message;
  }

  function setState(id, level, text) {
    const el = $(id);
    el.dataset.level = level;
    el.textContent = text;
  }

  // ---- live figures

  async function poll() {
    const [info, channels] = await Promise.allSettled([api('info'), api('channels', pattern ? { pattern } : {})]);
    if (!session) return;
    if (info.status === 'fulfilled') {
      showNodes(info.value.nodes || []);
      setState('api-state', 'ok', 'live: updated ' + new Date().toLocaleTimeString() + ', every ' + POLL_MS / 1000 + ' s');
    } else {
      setState('api-state', 'error', 'cannot read the cluster (info): ' + describe(info.reason) + '; the figures below are stale');
    }
    if (channels.status === 'fulfilled') showChannels(channels.value.channels || {});
    else setState('channels-state', 'error', 'channels: ' + describe(channels.reason));
  }

  function rateOf(node, item) {
    const items = node.metrics && node.metrics.items;
    return items && typeof items[item] === 'number' ? items[item] : 0;
  }

  function showNodes(nodes) {
    const sum = (key) => nodes.reduce((total, n) => total + (Number(n[key]) || 0), 0);
    const deliveries = nodes.reduce((t, n) => t + rateOf(n, 'deliveries_per_second'), 0);
    const publications = nodes.reduce((t, n) => t + rateOf(n, 'publications_per_second'), 0);
    $('total-nodes').textContent = String(nodes.length);
    $('total-clients').textContent = String(sum('num_clients'));
    $('total-users').textContent = String(sum('num_users'));
    $('total-subs').textContent = String(sum('num_subs'));
    $('total-channels').textContent = String(sum('num_channels'));
    $('total-deliveries').textContent = formatRate(deliveries);
    $('total-publications').textContent = formatRate(publications);

    const body = $('nodes').tBodies[0];
    body.replaceChildren();
    for (const n of nodes) {
      const tr = document.createElement('tr');
      tr.dataset.node = n.name || n.uid;
      const cells = [
        n.name || '(unnamed)',
        String(n.uid).slice(0, 8),
        n.version,
        formatUptime(n.uptime),
        n.num_clients,
        n.num_users,
        n.num_subs,
        n.num_channels,
        formatRate(rateOf(n, 'deliveries_per_second')),
        formatRate(rateOf(n, 'publications_per_second')),
      ];
      cells.forEach((value, i) => {
        const td = document.createElement('td');
        td.textContent = String(value);
        if (i >= 4) td.className = 'num';
        tr.append(td);
      });
      body.append(tr);
    }

    series.push({ deliveries, publications });
    if (series.length > CHART_POINTS) series.shift();
    drawChart();
  }

  function formatRate(n) {
    return n >= 100 ? String(Math.round(n)) : String(Math.round(n * 10) / 10);
  }

  function formatUptime(seconds) {
    const s = Number(seconds) || 0;
    if (s < 120) return s + ' s';
    if (s < 7200) return Math.floor(s / 60) + ' min';
    if (s < 172800) return Math.floor(s / 3600) + ' h';
    return Math.floor(s / 86400) + ' d';
  }

  function drawChart() {
    const canvas = $('chart');
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 900;
    const height = canvas.clientHeight || 180;
    if (canvas.width !== width * ratio) {
      canvas.width = width * ratio;
      canvas.height = height * ratio;
    }
    const g = canvas.getContext('2d');
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    const left = 48;
    const top = 8;
    const plotW = width - left - 8;
    const plotH = height - top - 20;
    const max = niceMax(Math.max(1, ...series.map((p) => Math.max(p.deliveries, p.publications))));
    const styles = getComputedStyle(document.documentElement);
    g.font = '11px system-ui, sans-serif';
    g.fillStyle = '#71717a';
    g.strokeStyle = '#e4e4e7';
    g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = top + plotH - (plotH * i) / 4;
      g.beginPath();
      g.moveTo(left, y);
      g.lineTo(left + plotW, y);
      g.stroke();
      g.fillText(String(Number(((max * i) / 4).toFixed(2))), 4, y + 4);
    }
    g.fillText('now', left + plotW - 20, top + plotH + 14);
    g.fillText('-' + Math.round((CHART_POINTS * POLL_MS) / 1000) + ' s', left, top + plotH + 14);
    const line = (key, color) => {
      g.strokeStyle = color;
      g.lineWidth = 2;
      g.beginPath();
      series.forEach((p, i) => {
        const x = left + plotW - ((series.length - 1 - i) * plotW) / (CHART_POINTS - 1);
        const y = top + plotH - (p[key] / max) * plotH;
        if (i === 0) g.moveTo(x, y);
        else g.lineTo(x, y);
      });
      g.stroke();
    };
    line('deliveries', styles.getPropertyValue('--deliveries').trim() || '#1d4ed8');
    line('publications', styles.getPropertyValue('--publications').trim() || '#db2777');
  }

  function niceMax(n) {
    const step = Math.pow(10, Math.floor(Math.log10(n)));
    for (const m of [1, 2, 5, 10]) if (m * step >= n) return m * step;
    return 10 * step;
  }

  function showChannels(channels) {
    const entries = Object.entries(channels).sort((a, b) => b[1].num_clients - a[1].num_clients || a[0].localeCompare(b[0]));
    const body = $('channels').tBodies[0];
    body.replaceChildren();
    for (const [name, c] of entries.slice(0, BUSIEST)) {
      const tr = document.createElement('tr');
      tr.dataset.channel = name;
      const channel = document.createElement('td');
      channel.textContent = name;
      const count = document.createElement('td');
      count.className = 'num';
      count.textContent = String(c.num_clients);
      tr.append(channel, count);
      tr.addEventListener('click', () => {
        $('inspect-channel').value = name;
        void inspect(name);
      });
      body.append(tr);
    }
    const shown = Math.min(entries.length, BUSIEST);
    setState('channels-state', 'note', entries.length === 0 ? 'no channel has subscribers' + (pattern ? ' matching ' + pattern : '') : 'the ' + shown + ' busiest of ' + entries.length + ' channels with subscribers' + (pattern ? ' matching ' + pattern : '') + '; click one to inspect it');
  }

  $('channels-filter').addEventListener('submit', (e) => {
    e.preventDefault();
    pattern = $('pattern').value.trim();
    void poll();
  });

  // ---- one channel: presence and last publications

  async function inspect(channel) {
    setState('presence-state', 'wait', 'loading…');
    setState('history-state', 'wait', 'loading…');
    const [presence, history] = await Promise.allSettled([api('presence', { channel }), api('history', { channel, limit: 10, reverse: true })]);
    const list = $('presence');
    list.replaceChildren();
    if (presence.status === 'fulfilled') {
      const clients = Object.values(presence.value.presence || {});
      for (const c of clients) {
        const li = document.createElement('li');
        li.dataset.client = c.client;
        li.textContent = (c.user ? 'user ' + c.user : 'anonymous') + ' · client ' + c.client + (c.conn_info !== undefined ? ' · ' + JSON.stringify(c.conn_info) : '');
        list.append(li);
      }
      setState('presence-state', 'note', clients.length + ' connection' + (clients.length === 1 ? '' : 's') + ' in ' + channel);
    } else {
      setState('presence-state', 'error', describe(presence.reason));
    }
    const pubs = $('history');
    pubs.replaceChildren();
    if (history.status === 'fulfilled') {
      const publications = history.value.publications || [];
      for (const p of publications) {
        const li = document.createElement('li');
        li.value = p.offset || 0;
        li.textContent = '#' + (p.offset || '?') + ' ' + JSON.stringify(p.data);
        pubs.append(li);
      }
      setState('history-state', 'note', publications.length ? 'newest first; the stream is at offset ' + history.value.offset : 'no publications kept');
    } else {
      setState('history-state', 'error', describe(history.reason));
    }
  }

  $('inspect').addEventListener('submit', (e) => {
    e.preventDefault();
    void inspect($('inspect-channel').value.trim());
  });

  // ---- actions

  $('publish').addEventListener('submit', async (e) => {
    e.preventDefault();
    const result = $('publish-result');
    const channel = $('publish-channel').value.trim();
    let data;
    try {
      data = JSON.parse($('publish-data').value);
    } catch (err) {
      result.dataset.level = 'error';
      result.textContent = 'The data is not valid JSON: ' + err.message;
      return;
    }
    try {
      const r = await api('publish', { channel, data });
      result.dataset.level = 'ok';
      result.textContent = r.offset ? 'Published to ' + channel + ' at offset ' + r.offset + ' (epoch ' + r.epoch + ').' : 'Published to ' + channel + ' (the channel keeps no history).';
      if ($('inspect-channel').value.trim() === channel) void inspect(channel);
    } catch (err) {
      result.dataset.level = 'error';
      result.textContent = 'Not published: ' + describe(err);
    }
  });

  $('disconnect').addEventListener('submit', async (e) => {
    e.preventDefault();
    const result = $('disconnect-result');
    const user = $('disconnect-user').value.trim();
    const client = $('disconnect-client').value.trim();
    try {
      await api('disconnect', client ? { user, client } : { user });
      result.dataset.level = 'ok';
      result.textContent = client ? 'Disconnected client ' + client + ' of user ' + user + '.' : 'Disconnected every connection of user ' + user + ' on every node.';
    } catch (err) {
      result.dataset.level = 'error';
      result.textContent = 'Not disconnected: ' + describe(err);
    }
  });

  if (session) showApp();
  else showLogin('');
})();
