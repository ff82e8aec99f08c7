"""The data map as one self-contained HTML page: no script, style or font from the network, so it
opens offline and from a file. The data is embedded as JSON and every text is set through
textContent: host names and endpoints come from traffic and are never parsed as markup."""
from __future__ import annotations

import json

_STYLE = """
body{font:14px system-ui,sans-serif;margin:0;display:flex;height:100vh;color:#1d2630}
#main{flex:1;display:flex;flex-direction:column;min-width:0}
header{padding:8px 12px;border-bottom:1px solid #d0d7de;display:flex;gap:12px;align-items:center;flex-wrap:wrap}
header h1{font-size:16px;margin:0 12px 0 0}
svg{flex:1;width:100%;background:#fafbfc}
#panel{width:340px;border-left:1px solid #d0d7de;padding:12px;overflow:auto}
.node rect{fill:#fff;stroke:#57606a;rx:4}
.node.external rect{fill:#fff8e6;stroke:#bf8700}
.node text{font-size:12px;dominant-baseline:middle}
.edge{fill:none;stroke-width:2;opacity:.75;cursor:pointer}
.edge.high{stroke:#cf222e}.edge.medium{stroke:#bf8700}.edge.low{stroke:#2da44e}
.edge.violation{stroke-dasharray:6 3}
.edge:hover,.edge.selected{stroke-width:5;opacity:1}
.hidden{display:none}
dt{font-weight:600;margin-top:8px}dd{margin:2px 0 0 0}
#changes li{margin-bottom:4px}
"""

_SCRIPT = r"""
const data = JSON.parse(document.getElementById('map-data').textContent);
const svg = document.getElementById('graph'), NS = 'http://www.w3.org/2000/svg';
const LEVELS = ['low', 'medium', 'high'];
const el = (name, attrs, parent) => { const e = document.createElementNS(NS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]); parent.appendChild(e); return e; };
// columns: nodes that only send, that send and receive, internal receivers, external destinations
const nodeById = new Map(data.nodes.map(n => [n.id, n]));
const sends = new Set(data.edges.map(e => e.source)), gets = new Set(data.edges.map(e => e.target));
const column = n => n.kind === 'external' ? 3 : (sends.has(n.id) && gets.has(n.id) ? 1 : (sends.has(n.id) ? 0 : 2));
const rows = [0, 0, 0, 0], pos = {};
for (const n of data.nodes) { const c = column(n); pos[n.id] = {x: 30 + c * 260, y: 30 + rows[c]++ * 44}; }
svg.setAttribute('viewBox', `0 0 ${4 * 260 + 40} ${Math.max(...rows, 1) * 44 + 40}`);
const edgesLayer = el('g', {}, svg), nodesLayer = el('g', {}, svg);
const edgeEls = data.edges.map(e => {
  const a = pos[e.source], b = pos[e.target], x1 = a.x + 200, y1 = a.y + 14, x2 = b.x, y2 = b.y + 14;
  const mid = (x1 + x2) / 2;
  const path = el('path', {d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`,
    class: `edge ${e.sensitivity || 'low'}${e.violations.length ? ' violation' : ''}`,
    'data-source': e.source, 'data-target': e.target}, edgesLayer);
  el('title', {}, path).textContent = `${e.source} → ${e.target}: ${e.data_types.join(', ')}`;
  path.addEventListener('click', () => show(e, path));
  return {edge: e, el: path};
});
const nodeEls = data.nodes.map(n => {
  const g = el('g', {class: `node ${n.kind}`, 'data-id': n.id, transform: `translate(${pos[n.id].x},${pos[n.id].y})`}, nodesLayer);
  el('rect', {width: 200, height: 28}, g);
  const label = el('text', {x: 8, y: 14}, g);
  label.textContent = (n.id.length > 26 ? n.id.slice(0, 25) + '…' : n.id) + (n.country ? ` (${n.country})` : '');
  el('title', {}, g).textContent = n.id;
  return {node: n, el: g};
});
function show(e, path) {
  edgeEls.forEach(x => x.el.classList.remove('selected')); path.classList.add('selected');
  const panel = document.getElementById('details'); panel.replaceChildren();
  const add = (term, value) => { const dt = document.createElement('dt'); dt.textContent = term;
    const dd = document.createElement('dd'); dd.textContent = value; panel.append(dt, dd); };
  add('Flow', `${e.source} → ${e.target}`); add('Data types', e.data_types.join(', '));
  add('Sensitivity', e.sensitivity); add('Exchanges', String(e.exchanges));
  add('Country', (e.country || 'unknown') + (e.cross_border ? ' (cross-border)' : ''));
  add('First seen', e.first_seen); add('Last seen', e.last_seen);
  add('Endpoints', e.endpoints.join('\n') || '-'); add('Policy violations', e.violations.join(', ') || 'none');
}
const types = [...new Set(data.edges.flatMap(e => e.data_types))].sort();
const typeSelect = document.getElementById('f-type');
for (const t of types) { const o = document.createElement('option'); o.value = o.textContent = t; typeSelect.append(o); }
function filter() {
  const type = typeSelect.value, level = document.getElementById('f-level').value;
  const external = document.getElementById('f-external').checked, text = document.getElementById('f-text').value.toLowerCase();
  const shown = new Set();
  for (const x of edgeEls) {
    const e = x.edge, ok = (!type || e.data_types.includes(type))
      && (!level || LEVELS.indexOf(e.sensitivity) >= LEVELS.indexOf(level))
      && (!external || nodeById.get(e.target).kind === 'external')
      && (!text || (e.source + ' ' + e.target).toLowerCase().includes(text));
    x.el.classList.toggle('hidden', !ok);
    if (ok) { shown.add(e.source); shown.add(e.target); }
  }
  for (const x of nodeEls) x.el.classList.toggle('hidden', !shown.has(x.node.id));
  document.getElementById('count').textContent = `${shown.size} nodes, ${edgeEls.filter(x => !x.el.classList.contains('hidden')).length} flows`;
}
for (const id of ['f-type', 'f-level', 'f-external', 'f-text'])
  for (const kind of ['input', 'change']) document.getElementById(id).addEventListener(kind, filter);
const list = document.getElementById('changes');
for (const c of data.changes.slice(0, 200)) { const li = document.createElement('li');
  li.textContent = `${c.time} ${c.type.replace(/_/g, ' ')}: ${c.source ? c.source + ' → ' : ''}${c.target}` +
    (c.data_type ? ` (${c.data_type})` : '') + (c.rule ? ` (${c.rule})` : '') + (c.after ? ` (${c.before} → ${c.after})` : '');
  list.append(li); }
filter();
"""


def render(document: dict, changes: list[dict] | None = None, title: str = "pii-sensor data map") -> str:
    # no '<' at all inside the script element: '</script>' or '<!--<script' in a host name cannot end or break it
    payload = json.dumps({**document, "changes": list(reversed(changes or []))}).replace("<", "\\u003c")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>
<body><div id="main"><header><h1>{_escape(title)}</h1>
<label>Data type <select id="f-type"><option value="">any</option></select></label>
<label>Sensitivity <select id="f-level"><option value="">any</option><option>medium</option><option>high</option></select></label>
<label><input type="checkbox" id="f-external"> external only</label>
<label>Workload or host <input id="f-text" type="search"></label><span id="count"></span></header>
<svg id="graph" role="img" aria-label="data map"></svg></div>
<aside id="panel"><h2>Flow</h2><p>Click a flow to see its data.</p><dl id="details"></dl>
<h2>Changes</h2><ol id="changes"></ol></aside>
<script type="application/json" id="map-data">{payload}</script>
<script>{_SCRIPT}</script></body></html>
"""


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
