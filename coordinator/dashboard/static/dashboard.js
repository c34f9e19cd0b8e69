// swarmtune dashboard: a plain ES module, no build step. It reads the run over server-sent events (/events: a
// `history` snapshot first, then `record` and `workers` events), draws uPlot charts, the worker table and the
// timeline, and exposes its state as window.__dashboard for tests and for the curious (the chart data included).
/* global uPlot */

const COLORS = { blue: '#2f6fdf', orange: '#e8772e', green: '#1f9d62', red: '#d64545', violet: '#7a4fd1', grey: '#8a93a6' };

const state = {
  run: null,
  records: [],
  workers: [],
  /** Records received one by one as the run wrote them (not in a history snapshot). */
  liveRecords: 0,
  historySnapshots: 0,
  status: 'connecting',
  ended: false,
};
const charts = {};
window.__dashboard = { state, charts, series: () => seriesOf(state.records) };

// ---- data ------------------------------------------------------------------------------------------------------

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const xOf = (r) => num(r.step) ?? num(r.round);

/** The charts' series from the records: each a list of [x, ...values] rows sorted by x. */
function seriesOf(records) {
  const loss = [], evals = [], throughput = [], bytes = [];
  for (const r of records) {
    const x = xOf(r);
    if (x === null) continue;
    if (r.event === 'train') {
      loss.push([x, num(r.loss)]);
      throughput.push([x, num(r.samples_per_s), num(r.tokens_per_s)]);
      bytes.push([x, num(r.param_bytes_per_step), num(r.grad_bytes_per_step)]);
    } else if (r.event === 'round') {
      loss.push([x, num(r.train_loss)]);
      const ms = num(r.round_ms);
      throughput.push([x, ms && num(r.num_examples) !== null ? (r.num_examples / ms) * 1000 : null, null]);
      bytes.push([x, num(r.param_bytes), num(r.update_bytes)]);
    } else if (r.event === 'eval') {
      evals.push([x, num(r.eval_loss), num(r.eval_accuracy)]);
    }
  }
  const byX = (a, b) => a[0] - b[0];
  return { loss: loss.sort(byX), eval: evals.sort(byX), throughput: throughput.sort(byX), bytes: bytes.sort(byX) };
}

/** uPlot's column layout ([xs, ys1, ys2...]) from rows. */
function columns(rows, width) {
  return Array.from({ length: width }, (_, i) => rows.map((row) => row[i]));
}

// ---- formatting ------------------------------------------------------------------------------------------------

function fmtNumber(v, digits = 4) {
  if (v === null || v === undefined) return '–';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
  return Number(v.toPrecision(digits)).toString();
}
function fmtBytes(v) {
  if (v === null || v === undefined) return '–';
  // Decimal units, so that chart ticks (uPlot picks round decimal steps) read as round numbers.
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${Number(v.toFixed(i === 0 ? 0 : 1))} ${units[i]}`;
}
function fmtRate(v) { return v === null || v === undefined ? '–' : v >= 100 ? v.toFixed(0) : v.toFixed(1); }
function fmtAgo(iso) {
  if (!iso) return '–';
  const t = Date.parse(iso);
  if (state.ended || state.run?.source === 'finished') return new Date(t).toLocaleTimeString();
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : new Date(t).toLocaleTimeString();
}
function fmtDuration(ms) {
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}
const el = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// ---- charts ----------------------------------------------------------------------------------------------------

const CHARTS = {
  loss: { width: 2, series: [{ label: 'loss', stroke: COLORS.blue, fmt: fmtNumber }] },
  eval: {
    width: 3,
    scales: { acc: { range: [0, 1] } },
    series: [{ label: 'eval_loss', stroke: COLORS.orange, fmt: fmtNumber }, { label: 'eval_accuracy', stroke: COLORS.green, scale: 'acc', fmt: fmtNumber }],
    axes: [{ scale: 'acc', side: 1, grid: { show: false } }],
  },
  throughput: {
    width: 3,
    scales: { tok: {} },
    series: [{ label: 'samples/s', stroke: COLORS.blue, fmt: fmtRate }, { label: 'tokens/s', stroke: COLORS.violet, scale: 'tok', fmt: fmtRate }],
    axes: [{ scale: 'tok', side: 1, grid: { show: false }, size: 56 }],
  },
  bytes: {
    width: 3,
    series: [{ label: 'out', stroke: COLORS.blue, fmt: fmtBytes }, { label: 'in', stroke: COLORS.orange, fmt: fmtBytes }],
    yFormat: fmtBytes,
    ySize: 70,
  },
};

function chartSize(host) {
  return { width: Math.max(200, host.clientWidth - 10), height: 200 };
}

function makeChart(name, host, data) {
  const spec = CHARTS[name];
  const xLabel = state.run?.mode === 'federated' ? 'round' : 'step';
  const pointsShown = data[0].length <= 60;
  const opts = {
    ...chartSize(host),
    cursor: { drag: { x: true, y: false } },
    scales: { x: { time: false }, ...(spec.scales ?? {}) },
    series: [
      { label: xLabel, value: (u, v) => (v === null ? '–' : String(v)) },
      ...spec.series.map((s) => ({
        label: s.label,
        stroke: s.stroke,
        width: 2,
        scale: s.scale ?? 'y',
        spanGaps: true,
        points: { show: pointsShown, size: 5, fill: s.stroke },
        value: (u, v) => s.fmt(v),
      })),
    ],
    axes: [
      { stroke: COLORS.grey, grid: { stroke: '#eef0f4' }, ticks: { stroke: '#e3e6ec' } },
      { stroke: COLORS.grey, grid: { stroke: '#eef0f4' }, ticks: { stroke: '#e3e6ec' }, size: spec.ySize ?? 56, ...(spec.yFormat ? { values: (u, vals) => vals.map(spec.yFormat) } : {}) },
      ...(spec.axes ?? []).map((a) => ({ stroke: COLORS.grey, ticks: { stroke: '#e3e6ec' }, ...a })),
    ],
    legend: { live: true },
  };
  return new uPlot(opts, data, host);
}

function renderCharts() {
  const all = seriesOf(state.records);
  for (const name of Object.keys(CHARTS)) {
    const host = el(`chart-${name}`);
    const rows = all[name];
    const data = columns(rows, CHARTS[name].width);
    host.dataset.points = String(rows.length);
    let placeholder = host.querySelector('.nodata');
    if (rows.length === 0) {
      if (!placeholder) {
        placeholder = document.createElement('div');
        placeholder.className = 'nodata';
        placeholder.textContent = name === 'eval' ? 'no evaluation yet' : 'waiting for the first step';
        host.appendChild(placeholder);
      }
      continue;
    }
    placeholder?.remove();
    if (!charts[name]) charts[name] = makeChart(name, host, data);
    else charts[name].setData(data);
  }
}

window.addEventListener('resize', () => {
  for (const [name, chart] of Object.entries(charts)) chart.setSize(chartSize(el(`chart-${name}`)));
  renderTimeline();
});

// ---- summary, header, table, timeline ----------------------------------------------------------------------------

function last(event, pred = () => true) {
  for (let i = state.records.length - 1; i >= 0; i--) if (state.records[i].event === event && pred(state.records[i])) return state.records[i];
  return undefined;
}

function renderSummary() {
  const start = last('run_start');
  const federated = state.run?.mode === 'federated';
  const train = federated ? last('round') : last('train');
  const evalRec = last('eval');
  const total = federated ? start?.num_rounds : start?.total_steps;
  const position = train ? xOf(train) : 0;
  const ready = state.workers.filter((w) => w.state === 'ready').length;
  const rate = federated ? (train && train.round_ms ? (train.num_examples / train.round_ms) * 1000 : null) : num(train?.samples_per_s);
  const cards = [
    [federated ? 'round' : 'step', `${position ?? 0}${total ? ` / ${total}` : ''}`],
    ['loss', fmtNumber(num(federated ? train?.train_loss : train?.loss))],
    ['eval loss', fmtNumber(num(evalRec?.eval_loss))],
    ['eval accuracy', evalRec && num(evalRec.eval_accuracy) !== null ? `${(evalRec.eval_accuracy * 100).toFixed(1)}%` : '–'],
    ['samples/s', fmtRate(rate)],
    ['workers', state.ended ? `${state.workers.length}` : `${ready} ready${state.run?.workers ? ` / ${state.run.workers}` : ''}`],
  ];
  el('summary').innerHTML = cards.map(([label, value]) => `<div class="card"><div class="label">${esc(label)}</div><div class="value">${esc(value)}</div></div>`).join('');
  const first = state.records[0];
  const end = state.ended ? Date.parse(last('run_end')?.time ?? state.records.at(-1)?.time) : Date.now();
  const epoch = num(train?.epoch);
  el('progress').textContent = [
    total ? `${Math.round((100 * (position ?? 0)) / total)}%` : '',
    epoch !== null ? `epoch ${epoch.toFixed(2)}` : '',
    first?.time ? `elapsed ${fmtDuration(end - Date.parse(first.time))}` : '',
  ].filter(Boolean).join('  ·  ');
  el('run-mode').textContent = state.run?.mode ?? '';
  if (federated) el('chart-bytes').querySelector('figcaption').firstChild.textContent = 'Bytes per round ';
  el('run-dir').textContent = state.run?.outputDir ?? '';
}

function renderTable() {
  const body = el('workers').tBodies[0];
  el('worker-count').textContent = state.workers.length ? `(${state.workers.length})` : '';
  if (state.workers.length === 0) {
    body.innerHTML = '<tr class="empty"><td colspan="8">no worker yet</td></tr>';
    return;
  }
  body.innerHTML = state.workers
    .map((w) => {
      const shown = state.ended && (w.state === 'ready' || w.state === 'lost') ? 'finished' : w.state;
      return `<tr data-worker-id="${esc(w.id)}">
        <td title="${esc(w.peer ?? '')}">${esc(w.id)}</td><td>${esc(w.backend ?? '–')}</td>
        <td><span class="state state-${esc(shown)}">${esc(shown)}</span></td>
        <td class="num">${fmtRate(w.samples_per_s)}</td><td class="num">${fmtBytes(w.bytes_in)}</td><td class="num">${fmtBytes(w.bytes_out)}</td>
        <td>${esc(fmtAgo(w.last_seen))}</td><td class="num">${w.failures}</td></tr>`;
    })
    .join('');
}

const LANES = [
  { name: 'steps', color: COLORS.blue, match: (r) => r.event === 'train' || r.event === 'round' },
  { name: 'eval', color: COLORS.orange, match: (r) => r.event === 'eval' || r.event === 'federated_eval' },
  { name: 'workers', color: null, match: (r) => r.event === 'worker_joined' || r.event === 'worker_lost' || r.event === 'worker_quarantined' },
  { name: 'failures', color: COLORS.violet, match: (r) => r.event === 'slice_failed' || r.event === 'auth_rejected' },
];

function describe(r) {
  const x = xOf(r);
  const where = r.round !== undefined ? `round ${r.round}` : x !== null ? `step ${x}` : '';
  const fields = Object.entries(r)
    .filter(([k, v]) => !['event', 'time', 'step', 'round'].includes(k) && (typeof v !== 'object' || v === null))
    .map(([k, v]) => `${k}: ${typeof v === 'number' ? fmtNumber(v) : v}`);
  return `${r.event} ${where}\n${new Date(Date.parse(r.time)).toLocaleTimeString()}\n${fields.join('\n')}`;
}

function renderTimeline() {
  const host = el('timeline');
  const timed = state.records.filter((r) => r.time);
  const width = Math.max(240, host.clientWidth);
  const laneH = 22, left = 64, right = 8, top = 4, axisH = 16;
  const height = top + LANES.length * laneH + axisH;
  if (timed.length === 0) {
    host.innerHTML = '';
    return;
  }
  const t0 = Date.parse(timed[0].time);
  const t1 = Math.max(t0 + 1000, state.ended ? Date.parse(timed.at(-1).time) : Date.now());
  const xAt = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - right);
  let svg = `<svg viewBox="0 0 ${width} ${height}" height="${height}" role="img" aria-label="timeline">`;
  LANES.forEach((lane, i) => {
    const y = top + i * laneH;
    svg += `<text x="0" y="${y + 14}">${lane.name}</text><line x1="${left}" x2="${width - right}" y1="${y + laneH / 2}" y2="${y + laneH / 2}" stroke="#eef0f4"/>`;
    for (const r of timed.filter(lane.match)) {
      const color = lane.color ?? (r.event === 'worker_joined' ? COLORS.green : COLORS.red);
      const x = xAt(Date.parse(r.time)).toFixed(1);
      const shape = lane.name === 'eval'
        ? `<rect x="${x - 4}" y="${y + 7}" width="8" height="8" transform="rotate(45 ${x} ${y + 11})" fill="${color}"/>`
        : `<rect x="${x - 1.5}" y="${y + 4}" width="3" height="${laneH - 8}" rx="1" fill="${color}"/>`;
      svg += `<g><title>${esc(describe(r))}</title>${shape}</g>`;
    }
  });
  const axisY = top + LANES.length * laneH + 12;
  for (let k = 0; k <= 4; k++) {
    const t = t0 + ((t1 - t0) * k) / 4;
    svg += `<text x="${xAt(t) - (k === 4 ? 28 : k === 0 ? 0 : 14)}" y="${axisY}">+${fmtDuration(t - t0)}</text>`;
  }
  host.innerHTML = `${svg}</svg>`;
  el('timeline-caption').textContent = `${timed.length} events`;
}

function setStatus(status, text) {
  state.status = status;
  const node = el('status');
  node.dataset.status = status;
  node.textContent = text ?? status;
}

let pending = false;
function render() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    renderSummary();
    renderCharts();
    renderTable();
    renderTimeline();
    document.body.dataset.records = String(state.records.length);
  });
}

// ---- live updates ----------------------------------------------------------------------------------------------

function connect() {
  const events = new EventSource('/events');
  const finish = () => {
    state.ended = true;
    setStatus('finished', state.run?.source === 'finished' ? 'finished run' : 'run finished');
    events.close();
  };
  events.addEventListener('history', (e) => {
    const snapshot = JSON.parse(e.data);
    state.run = snapshot.run;
    state.records = snapshot.records;
    state.workers = snapshot.workers;
    state.historySnapshots += 1;
    state.ended = snapshot.records.some((r) => r.event === 'run_end');
    if (snapshot.run.source === 'finished' || state.ended) finish();
    else setStatus('live');
    render();
  });
  events.addEventListener('record', (e) => {
    const record = JSON.parse(e.data);
    state.records.push(record);
    state.liveRecords += 1;
    if (record.event === 'run_end') finish();
    render();
  });
  events.addEventListener('workers', (e) => {
    state.workers = JSON.parse(e.data);
    render();
  });
  events.onerror = () => {
    // EventSource reconnects by itself; the server sends the history again, which replaces ours.
    if (!state.ended) setStatus('disconnected', 'reconnecting…');
  };
}

connect();
setInterval(() => { if (!state.ended) { renderSummary(); renderTable(); renderTimeline(); } }, 1000);
