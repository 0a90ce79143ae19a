// The live page: polls /live.json for the figures and their recent history (charts with uPlot),
// and runs the explorer over the run-list queries on the same port. No framework, no build step.
/* global uPlot */

const TOKEN_KEY = 'runs-cdc-api-token';
const REFRESH_MS = Number(new URLSearchParams(location.search).get('refresh')) || 2000;
const $ = (selector) => document.querySelector(selector);

/** GET a JSON path of this process, with the API token when one was given. */
async function api(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const response = await fetch(path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (response.status === 401) {
    $('#token-form').hidden = false;
    throw new Error('this endpoint needs the API token');
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `answered ${response.status}`);
  return body;
}

$('#token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $('#token').value);
  $('#token-form').hidden = true;
  refresh();
});

function text(element, value) {
  element.textContent = value;
  return element;
}

function cell(row, value, className) {
  const td = row.insertCell();
  td.textContent = value ?? '';
  if (className) td.className = className;
  return td;
}

function fillTable(selector, rows, columns) {
  const body = $(`${selector} tbody`);
  body.replaceChildren();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const [value, className] of columns(row)) cell(tr, value, className);
  }
}

function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  for (; Math.abs(n) >= 1024 && i < units.length - 1; i++) n /= 1024;
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

function seconds(n) {
  if (n === null || n === undefined) return '–';
  if (n < 60) return `${n.toFixed(1)} s`;
  if (n < 3600) return `${(n / 60).toFixed(1)} min`;
  return `${(n / 3600).toFixed(1)} h`;
}

const count = (n) => (n === null || n === undefined ? '–' : Math.round(n).toLocaleString('en-US'));
const clock = (ms) => new Date(ms).toISOString().slice(11, 19);

/** Show a figure; the raw number and its sample time stay in data-value and data-at. */
function tile(id, raw, shown, at) {
  const element = text($(`#${id}`), shown);
  element.dataset.value = raw === null || raw === undefined ? '' : String(raw);
  element.dataset.at = String(at);
}

// ---- live figures -----------------------------------------------------------------------------

const charts = {};

function chart(id, series, options = {}) {
  const element = $(`#${id}`);
  const width = Math.max(300, element.clientWidth || 600);
  return new uPlot(
    {
      width,
      height: 160,
      legend: { show: series.length > 1 },
      scales: { x: { time: true } },
      axes: [{}, { size: 70, values: options.values }],
      series: [{}, ...series],
    },
    [[], ...series.map(() => [])],
    element,
  );
}

function setupCharts() {
  charts.lagSeconds = chart('chart-lag-seconds', [{ label: 'lag s', stroke: '#c0392b', width: 2 }]);
  charts.lagBytes = chart('chart-lag-bytes', [{ label: 'lag bytes', stroke: '#8e44ad', width: 2 }], {
    values: (_, ticks) => ticks.map(bytes),
  });
  charts.throughput = chart('chart-throughput', [
    { label: 'changes/s', stroke: '#2980b9', width: 2 },
    { label: 'rows written/s', stroke: '#27ae60', width: 2 },
  ]);
  charts.buffer = chart('chart-buffer', [
    { label: 'buffered rows', stroke: '#d35400', width: 2 },
    { label: 'limit', stroke: '#7f8c8d', dash: [6, 4] },
  ]);
}

function renderLive(live) {
  const ready = $('#ready');
  ready.className = `badge ${live.now.ready === false ? 'bad' : live.now.ready ? 'ok' : ''}`;
  text(ready, live.now.ready === false ? 'not ready' : live.now.ready ? 'ready' : '?');
  text($('#slot'), live.slot);
  text($('#confirmed-lsn'), live.confirmedLsn);
  text($('#updated'), `updated ${clock(live.now.at)} UTC`);
  tile('lag-seconds', live.now.lagSeconds, seconds(live.now.lagSeconds), live.now.at);
  tile('lag-bytes', live.now.lagBytes, bytes(live.now.lagBytes), live.now.at);
  tile('changes-rate', live.now.changesPerSecond, count(live.now.changesPerSecond), live.now.at);
  tile('rows-rate', live.now.rowsPerSecond, count(live.now.rowsPerSecond), live.now.at);
  tile(
    'buffer',
    live.now.bufferedRows,
    `${count(live.now.bufferedRows)} / ${count(live.maxBufferedRows)} rows · ${bytes(live.now.bufferedBytes)}`,
    live.now.at,
  );

  const history = live.history;
  const xs = history.map((s) => s.at / 1000);
  const column = (name) => history.map((s) => s[name]);
  charts.lagSeconds.setData([xs, column('lagSeconds')]);
  charts.lagBytes.setData([xs, column('lagBytes')]);
  charts.throughput.setData([xs, column('changesPerSecond'), column('rowsPerSecond')]);
  charts.buffer.setData([xs, column('bufferedRows'), history.map(() => live.maxBufferedRows)]);

  fillTable('#events', live.events, (e) => [[clock(e.at)], [e.kind], [e.detail]]);
  if (live.events.length === 0) fillTable('#events', [null], () => [['–'], ['nothing since the page started sampling'], ['']]);
  fillTable('#backfill', live.backfillJobs, (j) => [[j.jobId], [j.status], [count(j.rowsCopied), 'num'], [j.updatedAt]]);
  if (live.backfillJobs.length === 0) fillTable('#backfill', [null], () => [['–'], ['no backfill jobs yet'], [''], ['']]);
}

async function refresh() {
  try {
    renderLive(await api('/live.json'));
  } catch (error) {
    text($('#updated'), `could not refresh: ${error.message}`);
  }
}

// ---- runs explorer ----------------------------------------------------------------------------

const explorer = { cursor: undefined, page: 1, last: undefined };

function filterParams() {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData($('#explorer'))) {
    const v = String(value).trim();
    if (v !== '' && name !== 'limit') params.append(name, v);
  }
  return params;
}

function showError(message) {
  const element = $('#explorer-error');
  element.hidden = !message;
  text(element, message || '');
}

async function loadRuns(cursor, pageNumber) {
  const params = filterParams();
  params.set('limit', $('#explorer [name=limit]').value || '25');
  if (cursor) params.set('cursor', cursor);
  try {
    const page = await api(`/runs?${params}`);
    explorer.last = page;
    explorer.page = pageNumber;
    showError('');
    fillTable('#runs', page.runs, (r) => [
      [r.friendlyId],
      [r.taskIdentifier],
      [r.status],
      [r.createdAt],
      [r.durationMs === null ? '' : seconds(r.durationMs / 1000), 'num'],
      [r.sourceTable],
      [r.tags.join(', '), 'tags'],
    ]);
    $('#older').disabled = !page.hasNextPage;
    $('#newer').disabled = !page.hasPreviousPage;
    text($('#page-info'), `page ${pageNumber} · ${page.runs.length} runs`);
    $('#runs').dataset.page = String(pageNumber);
    $('#runs').dataset.loaded = String(Date.now());
  } catch (error) {
    showError(error.message);
  }
}

const STATUS_COLOURS = ['#2e86de', '#27ae60', '#c0392b', '#f39c12', '#8e44ad', '#16a085', '#7f8c8d', '#d35400', '#2c3e50', '#e84393'];

const utcMs = (text) => Date.parse(`${text.replace(' ', 'T')}Z`);

/** The status histogram as stacked bars over the whole period, inline SVG (one slot per bucket). */
function drawHistogram(stats) {
  const statuses = [...new Set(stats.histogram.map((b) => b.status))].sort();
  const step = stats.bucketSeconds * 1000;
  const from = utcMs(stats.from);
  const slots = Math.max(1, Math.ceil((utcMs(stats.to) - from) / step));
  const stacks = Array.from({ length: slots }, () => new Map());
  for (const b of stats.histogram) {
    const i = Math.min(slots - 1, Math.max(0, Math.floor((utcMs(b.bucket) - from) / step)));
    stacks[i].set(b.status, (stacks[i].get(b.status) ?? 0) + b.runs);
  }
  const max = Math.max(1, ...stacks.map((m) => [...m.values()].reduce((a, n) => a + n, 0)));
  const width = 600;
  const height = 160;
  const barWidth = width / slots;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  const legendRows = Math.ceil(statuses.length / 3);
  svg.setAttribute('viewBox', `0 0 ${width} ${height + 8 + legendRows * 16}`);
  svg.setAttribute('width', '100%');
  const element = (name, attributes) => {
    const node = document.createElementNS(ns, name);
    for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, String(v));
    return node;
  };
  svg.append(element('line', { x1: 0, x2: width, y1: height, y2: height, stroke: '#aab' }));
  stacks.forEach((stack, i) => {
    let y = height;
    statuses.forEach((status, j) => {
      const runs = stack.get(status) ?? 0;
      if (!runs) return;
      const h = (runs / max) * height;
      y -= h;
      const rect = element('rect', {
        x: i * barWidth + barWidth * 0.1,
        y,
        width: Math.max(1, barWidth * 0.8),
        height: h,
        fill: STATUS_COLOURS[j % STATUS_COLOURS.length],
      });
      const title = document.createElementNS(ns, 'title');
      title.textContent = `${new Date(from + i * step).toISOString().slice(0, 16)} ${status}: ${runs}`;
      rect.append(title);
      svg.append(rect);
    });
  });
  statuses.forEach((status, j) => {
    const x = (j % 3) * 200;
    const y = height + 20 + Math.floor(j / 3) * 16;
    svg.append(element('rect', { x, y: y - 9, width: 10, height: 10, fill: STATUS_COLOURS[j % STATUS_COLOURS.length] }));
    const label = element('text', { x: x + 14, y, 'font-size': 11 });
    label.textContent = status;
    svg.append(label);
  });
  const caption = document.createElement('p');
  caption.className = 'muted';
  caption.textContent = `${stats.from} → ${stats.to} UTC, ${seconds(stats.bucketSeconds)} per bar, tallest ${max} runs`;
  $('#histogram').replaceChildren(svg, caption);
}

async function loadStats() {
  try {
    const stats = await api(`/runs/stats?${filterParams()}`);
    drawHistogram(stats);
    fillTable('#tasks', stats.tasks, (t) => [
      [t.taskIdentifier],
      [count(t.runs), 'num'],
      [count(t.failures), 'num'],
      [t.avgDurationMs === null ? '' : seconds(t.avgDurationMs / 1000), 'num'],
      [t.p95DurationMs === null ? '' : seconds(t.p95DurationMs / 1000), 'num'],
      [count(t.totalCostInCents), 'num'],
    ]);
  } catch (error) {
    showError(error.message);
  }
}

$('#explorer').addEventListener('submit', (event) => {
  event.preventDefault();
  const query = filterParams();
  history.replaceState(null, '', `?${query}`);
  loadRuns(undefined, 1);
  loadStats();
});
$('#older').addEventListener('click', () => loadRuns(explorer.last?.nextCursor, explorer.page + 1));
$('#newer').addEventListener('click', () => loadRuns(explorer.last?.previousCursor, explorer.page - 1));

// Filters given in the address (e.g. ?org=o1&project=p1&env=e1) fill the form and search at once.
const initial = new URLSearchParams(location.search);
for (const [name, value] of initial) {
  const input = $(`#explorer [name="${CSS.escape(name)}"]`);
  if (input) input.value = value;
}

setupCharts();
refresh();
setInterval(refresh, REFRESH_MS);
if ($('#explorer').checkValidity()) $('#explorer').requestSubmit();
