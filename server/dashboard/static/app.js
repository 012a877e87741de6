// flashsale live dashboard: a snapshot from /dashboard/api/products, then
// server-sent events from /dashboard/events (a product's status read again
// each time it sold or changed, its sales rate a few times a second,
// resync requests). A card's figures are always those of one reading, the
// newest the page got: never counts added up from the sales. No library,
// no build step: this file is served as written.
'use strict';

(() => {
  const API = '/dashboard/api/products';
  const EVENTS = '/dashboard/events';
  const HISTORY_MS = 120000;   // the chart's widest span in time
  // The chart's span grows with the time the page has been open, so a
  // page opened at the drop shows its first seconds large; each span has
  // its tick step.
  const SPANS = [[30000, 5000], [60000, 10000], [120000, 20000]];
  const SAMPLE_MS = 250;       // one chart point per product this often
  const RATE_STALE_MS = 1500;  // rates not refreshed this long read as 0
  const REFRESH_MS = 30000;    // a full snapshot this often, for anything missed
  // While a product has a waiting room, a snapshot this often: joins and
  // admissions publish no event, and the server shares one snapshot a
  // second between its browsers.
  const ROOM_REFRESH_MS = 1000;
  const REFUSED_RETRY_MS = 10000;
  // A reading older than the one shown is ignored (a snapshot is shared
  // for up to a second, so it can be older than the stream's last
  // reading), unless by more than this: then the shown one came from a
  // Redis whose clock ran ahead (a failover), and the new one wins.
  const CLOCK_JUMP_MS = 5000;
  const MAX_LINES = 6;         // products drawn as their own line
  const COLORS = ['#38bdf8', '#a78bfa', '#f472b6', '#34d399', '#fb923c', '#f87171', '#2dd4bf', '#c084fc'];
  const STATE_ORDER = { OPEN: 0, UPCOMING: 1, SOLD_OUT: 2, ENDED: 3 };

  const $ = (id) => document.getElementById(id);
  const num = new Intl.NumberFormat('en-US');
  const fmtRate = (v) => (v >= 10 || v === 0 ? num.format(Math.round(v)) : v.toFixed(1));

  const products = new Map(); // id → {p: Product, el, color, rate}
  let colorNext = 0;
  let rates = new Map();      // id → units/s, from the last sales message
  let lastSales = 0;
  let clockOffset = 0;        // server clock − this clock, ms
  let peak = 0;
  const samples = [];         // {t, total, per: Map}
  const openedAt = Date.now();
  let orderDirty = true;
  let truncated = false;      // the snapshot left products out: their sales are expected

  // ---- state ----------------------------------------------------------

  const serverNow = () => Date.now() + clockOffset;

  // The same rule as engine.ProductStatus.State.
  function stateOf(p, now) {
    if (p.start && now < p.start) return 'UPCOMING';
    if (p.end && now >= p.end) return 'ENDED';
    if (p.remaining <= 0) return 'SOLD_OUT';
    return 'OPEN';
  }

  function upsert(p) {
    let e = products.get(p.id);
    if (e && p.at < e.p.at && e.p.at - p.at < CLOCK_JUMP_MS) return;
    if (!e) {
      e = { p, el: makeCard(p.id), color: COLORS[colorNext++ % COLORS.length], rate: 0 };
      products.set(p.id, e);
      orderDirty = true;
    }
    e.p = p;
    scheduleRender();
  }

  function remove(id) {
    const e = products.get(id);
    if (!e) return;
    e.el.remove();
    products.delete(id);
    rates.delete(id);
    scheduleRender();
  }

  let snapSeq = 0;
  let snapTimer = 0;
  async function loadSnapshot() {
    const seq = ++snapSeq;
    try {
      const res = await fetch(API, { cache: 'no-store' });
      const body = await res.json();
      if (seq !== snapSeq) return; // a newer one is on its way
      if (!res.ok) throw new Error(body.error || res.statusText);
      if (body.now) clockOffset = body.now - Date.now();
      const seen = new Set();
      for (const p of body.products) { upsert(p); seen.add(p.id); }
      truncated = !!body.truncated;
      if (!truncated) for (const id of [...products.keys()]) if (!seen.has(id)) remove(id);
      banner(body.truncated ? 'Showing the first ' + body.products.length + ' products only.' : '');
      $('updated').textContent = 'snapshot ' + new Date().toLocaleTimeString();
    } catch (err) {
      if (seq === snapSeq) banner('Snapshot failed: ' + err.message + '. Retrying…');
    }
    clearTimeout(snapTimer);
    snapTimer = setTimeout(loadSnapshot, [...products.values()].some((e) => e.p.room_rate) ? ROOM_REFRESH_MS : REFRESH_MS);
  }

  // A sale of a product the page does not know yet: read the snapshot
  // once, not once per message.
  let unknownPending = false;
  function unknownProduct() {
    if (unknownPending || truncated) return;
    unknownPending = true;
    setTimeout(() => { unknownPending = false; loadSnapshot(); }, 300);
  }

  // The rates only: the figures come with the product messages, each one
  // reading, sent just before.
  function onSales(m) {
    lastSales = Date.now();
    rates = new Map();
    for (const s of m.products) {
      rates.set(s.id, s.rate);
      if (!products.has(s.id)) unknownProduct();
    }
    scheduleRender();
  }

  // ---- the stream -----------------------------------------------------

  function setLive(state, text) {
    document.body.dataset.live = state;
    $('conn-text').textContent = text;
  }

  let source = null;
  function connect() {
    source = new EventSource(EVENTS);
    setLive('connecting', 'connecting…');
    source.addEventListener('hello', (ev) => {
      const h = JSON.parse(ev.data);
      setLive('open', 'live · ' + h.clients + (h.clients === 1 ? ' viewer' : ' viewers'));
      loadSnapshot();
    });
    source.addEventListener('sales', (ev) => onSales(JSON.parse(ev.data)));
    source.addEventListener('product', (ev) => upsert(JSON.parse(ev.data)));
    source.addEventListener('removed', (ev) => remove(JSON.parse(ev.data).id));
    source.addEventListener('resync', () => loadSnapshot());
    source.addEventListener('redis', (ev) => {
      if (JSON.parse(ev.data).ok) setLive('open', 'live');
      else setLive('down', 'Redis unreachable · numbers are stale');
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (too many viewers) or not an event stream: the browser
        // will not retry by itself.
        setLive('closed', 'disconnected · retrying');
        source.close();
        setTimeout(connect, REFUSED_RETRY_MS);
      } else {
        setLive('connecting', 'reconnecting…');
      }
    };
  }

  // ---- cards ----------------------------------------------------------

  const CARD = '<div class="head"><div class="id"></div><div class="state"></div></div>' +
    '<div class="stock"><span class="remaining"></span><span class="initial"></span></div>' +
    '<div class="bar"><div></div></div>' +
    '<div class="stats"><div><b class="rate"></b><span>units/s</span></div>' +
    '<div><b class="sold"></b><span>units sold</span></div>' +
    '<div><b class="orders"></b><span>orders</span></div><div><b class="customers"></b><span>customers</span></div></div>' +
    '<div class="hold" hidden><div class="stats hold-stats"><div><b class="reserved"></b><span>reserved</span></div>' +
    '<div><b class="paid"></b><span>paid</span></div><div><b class="released"></b><span>released</span></div></div>' +
    '<canvas class="spark" role="img" aria-label="Units reserved and paid over time"></canvas></div>' +
    '<div class="room" hidden><div class="stats room-stats"><div><b class="room-waiting"></b><span>in line</span></div>' +
    '<div><b class="room-admitted"></b><span>admitted</span></div><div><b class="room-rate"></b><span>admitted/s</span></div>' +
    '<div><b class="room-waited"></b><span>waited p50 / p99</span></div></div></div>' +
    '<div class="when"></div>';

  function makeCard(id) {
    const el = document.createElement('article');
    el.className = 'card';
    el.dataset.product = id;
    el.innerHTML = CARD; // a fixed template: the id goes in as text below
    el.querySelector('.id').textContent = id;
    el.querySelector('.id').title = id;
    return el;
  }

  function setText(el, sel, text) {
    const n = el.querySelector(sel);
    if (n.textContent !== text) n.textContent = text;
  }

  function duration(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + String(s % 60).padStart(2, '0') + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + String(Math.floor(s / 60) % 60).padStart(2, '0') + 'm';
    return Math.floor(s / 86400) + 'd ' + (Math.floor(s / 3600) % 24) + 'h';
  }

  function when(p, state, now) {
    switch (state) {
      case 'UPCOMING': return 'opens in ' + duration(p.start - now);
      case 'ENDED': return 'ended ' + duration(now - p.end) + ' ago';
      default:
        if (p.end) return 'ends in ' + duration(p.end - now);
        return (p.hold_ms ? 'pay within ' + duration(p.hold_ms) + ' · ' : '') +
          (p.limit ? 'limit ' + p.limit + ' per customer' : 'no per-customer limit');
    }
  }

  // A product sold with a hold, or that had one: its card shows its
  // reservations, and a line of reserved and paid units over time.
  const held = (p) => !!(p.hold_ms || p.reserved || p.paid || p.expired || p.cancelled);
  const RESERVED_COLOR = '#fbbf24', PAID_COLOR = '#22c55e';

  function renderHold(e) {
    const p = e.p, box = e.el.querySelector('.hold');
    const on = held(p);
    if (box.hidden === on) box.hidden = !on;
    if (!on) return;
    setText(e.el, '.reserved', num.format(p.reserved || 0));
    setText(e.el, '.paid', num.format(p.paid || 0));
    setText(e.el, '.released', num.format((p.expired || 0) + (p.cancelled || 0)));
  }

  // A product with a waiting room: its card shows the line, the customers
  // admitted, the admit rate (from the admitted count between the last
  // two readings at least a second apart; the set rate until then) and
  // this server's waits.
  const waitText = (ms) => (ms < 10000 ? (ms / 1000).toFixed(1) + 's' : duration(ms));

  function renderRoom(e) {
    const p = e.p, box = e.el.querySelector('.room');
    const on = !!p.room_rate;
    if (box.hidden === on) box.hidden = !on;
    if (!on) return;
    const r = e.room || (e.room = { at: p.at, admitted: p.room_admitted || 0, rate: null });
    if (p.at - r.at >= 1000) {
      r.rate = (1000 * ((p.room_admitted || 0) - r.admitted)) / (p.at - r.at);
      r.at = p.at;
      r.admitted = p.room_admitted || 0;
    }
    setText(e.el, '.room-waiting', num.format(p.room_waiting || 0));
    setText(e.el, '.room-admitted', num.format(p.room_admitted || 0));
    setText(e.el, '.room-rate', r.rate === null ? 'set ' + num.format(p.room_rate) : fmtRate(Math.max(0, r.rate)));
    const w = p.waited;
    setText(e.el, '.room-waited', w && w.admissions ? waitText(w.p50_ms) + ' / ' + waitText(w.p99_ms) : '–');
  }

  // The reserved and paid units of each held product, one point per sample.
  function sampleHolds(t) {
    for (const e of products.values()) {
      if (!held(e.p)) continue;
      const h = e.hist || (e.hist = []);
      h.push({ t, reserved: e.p.reserved || 0, paid: e.p.paid || 0 });
      while (h.length && h[0].t < t - HISTORY_MS - 2000) h.shift();
      drawSpark(e, t);
    }
  }

  // drawSpark draws a card's reserved and paid units over the chart's span.
  function drawSpark(e, now) {
    const c = e.el.querySelector('.spark');
    const g = c.getContext('2d');
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (!w || !h) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const [span] = chartSpan(now);
    const pts = e.hist.filter((s) => s.t >= now - span - SAMPLE_MS);
    let top = 1;
    for (const s of pts) top = Math.max(top, s.reserved, s.paid);
    const x = (t) => ((t - (now - span)) / span) * w;
    const y = (v) => h - 2 - (v / (top * 1.1)) * (h - 4);
    for (const [key, color] of [['reserved', RESERVED_COLOR], ['paid', PAID_COLOR]]) {
      g.beginPath();
      pts.forEach((s, i) => (i ? g.lineTo(x(s.t), y(s[key])) : g.moveTo(x(s.t), y(s[key]))));
      if (pts.length === 1) g.lineTo(w, y(pts[0][key]));
      g.strokeStyle = color;
      g.lineWidth = 1.5;
      g.lineJoin = 'round';
      g.stroke();
    }
  }

  function renderCard(e, now) {
    const p = e.p;
    const state = stateOf(p, now);
    if (e.el.dataset.state !== state) { e.el.dataset.state = state; orderDirty = true; }
    setText(e.el, '.state', state.replace('_', ' '));
    setText(e.el, '.remaining', num.format(p.remaining));
    setText(e.el, '.initial', '/ ' + num.format(p.initial) + ' left');
    setText(e.el, '.rate', fmtRate(e.rate));
    setText(e.el, '.sold', num.format(p.initial - p.remaining));
    setText(e.el, '.orders', num.format(p.active_orders));
    setText(e.el, '.customers', num.format(p.customers));
    setText(e.el, '.when', when(p, state, now));
    renderHold(e);
    renderRoom(e);
    const pct = p.initial > 0 ? Math.max(0, Math.min(100, (100 * p.remaining) / p.initial)) : 0;
    e.el.querySelector('.bar > div').style.width = pct.toFixed(2) + '%';
    return state;
  }

  let renderPending = false;
  function scheduleRender() {
    if (renderPending) return;
    renderPending = true;
    requestAnimationFrame(() => { renderPending = false; render(); });
  }

  function render() {
    const now = serverNow();
    const stale = Date.now() - lastSales > RATE_STALE_MS;
    let total = 0, sold = 0, left = 0, open = 0;
    for (const [id, e] of products) {
      e.rate = stale ? 0 : rates.get(id) || 0;
      total += e.rate;
      sold += e.p.initial - e.p.remaining;
      left += e.p.remaining;
      if (renderCard(e, now) === 'OPEN') open++;
    }
    if (orderDirty) {
      orderDirty = false;
      const grid = $('products');
      const sorted = [...products.values()].sort((a, b) =>
        STATE_ORDER[a.el.dataset.state] - STATE_ORDER[b.el.dataset.state] || (a.p.id < b.p.id ? -1 : 1));
      sorted.forEach((e, i) => { if (grid.children[i] !== e.el) grid.insertBefore(e.el, grid.children[i] || null); });
    }
    $('empty').hidden = products.size > 0;
    peak = Math.max(peak, total);
    setText(document, '#k-rate', fmtRate(total));
    setText(document, '#k-sold', num.format(sold));
    setText(document, '#k-left', num.format(left));
    setText(document, '#k-open', num.format(open));
    setText(document, '#k-products', 'of ' + num.format(products.size));
    setText(document, '#k-peak', fmtRate(peak));
  }

  function banner(text) {
    const b = $('banner');
    b.textContent = text;
    b.hidden = !text;
  }

  // ---- chart ----------------------------------------------------------

  function sample() {
    const t = Date.now();
    const stale = t - lastSales > RATE_STALE_MS;
    const per = new Map();
    let total = 0;
    if (!stale) for (const [id, r] of rates) { per.set(id, r); total += r; }
    samples.push({ t, total, per });
    while (samples.length && samples[0].t < t - HISTORY_MS - 2000) samples.shift();
    render();
    sampleHolds(t);
  }

  function niceStep(max, ticks) {
    const raw = max / ticks;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
  }

  const canvas = $('chart');
  const ctx = canvas.getContext('2d');

  function drawChart() {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const L = 56, R = 12, T = 10, B = 24;
    const pw = w - L - R, ph = h - T - B;
    const now = Date.now();
    const [span, tickStep] = chartSpan(now);
    const t0 = now - span;
    const x = (t) => L + ((t - t0) / span) * pw;
    setText(document, '#span', spanText(span));

    let max = 0;
    for (const s of samples) if (s.t >= t0) max = Math.max(max, s.total);
    const step = niceStep(Math.max(max * 1.15, 4), 4);
    const top = Math.ceil(Math.max(max * 1.15, 4) / step) * step;
    const y = (v) => T + ph - (v / top) * ph;

    // grid and axes
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#8b97b3';
    ctx.strokeStyle = '#24304d';
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let v = 0; v <= top + step / 2; v += step) {
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(L, yy); ctx.lineTo(L + pw, yy); ctx.stroke();
      ctx.fillText(num.format(v), L - 8, yy);
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (let ms = span; ms >= 0; ms -= tickStep) {
      const xx = Math.round(x(now - ms)) + 0.5;
      ctx.fillText(ms === 0 ? 'now' : '−' + ago(ms / 1000), Math.max(L + 14, Math.min(xx, L + pw - 12)), T + ph + 7);
    }

    const visible = samples.filter((s) => s.t >= t0 - SAMPLE_MS);
    if (visible.length < 2 || max === 0) {
      ctx.fillStyle = '#5b6785';
      ctx.font = '13px system-ui, sans-serif';
      ctx.textBaseline = 'middle';
      ctx.fillText(products.size ? 'waiting for sales…' : 'no product yet', L + pw / 2, T + ph / 2);
    }

    ctx.save();
    ctx.beginPath(); ctx.rect(L, T, pw, ph); ctx.clip();
    if (visible.length >= 2) {
      // the total, as a filled area
      const grad = ctx.createLinearGradient(0, T, 0, T + ph);
      grad.addColorStop(0, 'rgba(250, 204, 21, 0.35)');
      grad.addColorStop(1, 'rgba(250, 204, 21, 0.02)');
      ctx.beginPath();
      ctx.moveTo(x(visible[0].t), y(0));
      for (const s of visible) ctx.lineTo(x(s.t), y(s.total));
      ctx.lineTo(x(visible[visible.length - 1].t), y(0));
      ctx.closePath();
      ctx.fillStyle = grad;
      ctx.fill();
      line(visible, (s) => s.total, '#facc15', 2, x, y);
      // the busiest products, each its own line
      for (const id of busiest(visible)) {
        const e = products.get(id);
        line(visible, (s) => s.per.get(id) || 0, e ? e.color : '#94a3b8', 1.5, x, y);
      }
    }
    ctx.restore();
    requestAnimationFrame(drawChart);
  }

  // chartSpan is the span the charts show now, and its tick step.
  function chartSpan(now) {
    return SPANS.find(([sp]) => sp >= now - openedAt) || SPANS[SPANS.length - 1];
  }

  function ago(s) {
    if (s < 60) return s + 's';
    return Math.floor(s / 60) + 'm' + (s % 60 ? String(s % 60).padStart(2, '0') + 's' : '');
  }

  function spanText(ms) {
    return ms < 60000 ? 'last ' + ms / 1000 + ' seconds' : ms === 60000 ? 'last minute' : 'last ' + ms / 60000 + ' minutes';
  }

  function line(pts, val, color, width, x, y) {
    ctx.beginPath();
    pts.forEach((s, i) => (i ? ctx.lineTo(x(s.t), y(val(s))) : ctx.moveTo(x(s.t), y(val(s)))));
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.lineJoin = 'round';
    ctx.stroke();
  }

  // busiest returns the products with the most sales in pts (at most
  // MAX_LINES), when more than one product sold: with one, its line is
  // the total.
  let legendKey = '';
  function busiest(pts) {
    const sum = new Map();
    for (const s of pts) for (const [id, r] of s.per) sum.set(id, (sum.get(id) || 0) + r);
    const ids = [...sum.entries()].filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]).map(([id]) => id);
    const shown = ids.length > 1 ? ids.slice(0, MAX_LINES) : [];
    const key = shown.join('\u0000');
    if (key !== legendKey) {
      legendKey = key;
      const lg = $('legend');
      lg.textContent = '';
      const item = (color, text) => {
        const s = document.createElement('span');
        const i = document.createElement('i');
        i.style.background = color;
        s.append(i, text);
        lg.append(s);
      };
      item('#facc15', 'all products');
      for (const id of shown) item(products.get(id)?.color || '#94a3b8', id);
    }
    return shown;
  }

  connect();
  setInterval(sample, SAMPLE_MS);
  requestAnimationFrame(drawChart);
})();
