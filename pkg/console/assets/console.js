// site-controller console: renders the snapshots the daemon sends over
// server-sent events (/api/events). No request leaves the host; nothing
// polls: the page changes when the daemon says something changed.
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0, v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? String(v) : v.toFixed(1)) + " " + units[i];
}

function short(s, n) { return s.length > n ? s.slice(0, n - 1) + "…" : s; }

// positions places the sites: a row for a few, a circle for more.
function positions(sites, width, height) {
  const pos = new Map();
  const n = sites.length;
  if (n <= 4) {
    sites.forEach((s, i) => pos.set(s.id, { x: (width / n) * (i + 0.5), y: height / 2 }));
    return pos;
  }
  // an ellipse whose arcs leave room for a box between two sites
  const rx = width / 2 - 90, ry = height / 2 - 40;
  sites.forEach((s, i) => {
    const a = (2 * Math.PI * i) / n - Math.PI / 2;
    pos.set(s.id, { x: width / 2 + rx * Math.cos(a), y: height / 2 + ry * Math.sin(a) });
  });
  return pos;
}

function renderGraph(net) {
  const g = document.getElementById("graph");
  const n = net.sites.length;
  const width = n <= 4 ? 1000 : Math.max(1000, 60 * n), height = n <= 4 ? 170 : Math.max(460, 34 * n);
  g.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const pos = positions(net.sites, width, height);
  const defs = svg("defs", {},
    ...["up", "down"].map(st => svg("marker", { id: "arrow-" + st, viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      svg("path", { d: "M0,0 L10,5 L0,10 z", class: st }))));
  const links = svg("g", { class: "links" });
  const boxW = 150, boxH = 54;
  for (const l of net.links) {
    const a = pos.get(l.from), b = pos.get(l.to);
    if (!a || !b) continue;
    // from the edge of one box to the edge of the other
    const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1;
    const cut = t => Math.min(Math.abs((boxW / 2 + 4) / (dx / len || 1e-9)), Math.abs((boxH / 2 + 4) / (dy / len || 1e-9)));
    const ca = cut(), x1 = a.x + (dx / len) * ca, y1 = a.y + (dy / len) * ca, x2 = b.x - (dx / len) * ca, y2 = b.y - (dy / len) * ca;
    const st = l.up ? "up" : "down";
    const line = svg("line", { class: "link " + st, x1, y1, x2, y2, "marker-end": `url(#arrow-${st})`, "data-from": l.fromName, "data-to": l.toName || "", "data-state": st, "data-name": l.name },
      svg("title", {}, `${l.fromName} → ${l.toName || "?"} (${l.name}): ${st}${l.message ? "\n" + l.message : ""}`));
    links.append(line);
    if (!l.up && l.message) {
      // under the line, as much of the reason as fits beside it
      const room = Math.max(12, Math.floor(Math.hypot(x2 - x1, y2 - y1) / 6.5));
      links.append(svg("text", { class: "reason", x: (x1 + x2) / 2, y: (y1 + y2) / 2 + 18 }, short(l.message, room)));
    }
  }
  const nodes = svg("g", { class: "sites" });
  for (const s of net.sites) {
    const p = pos.get(s.id);
    const cls = "site" + (s.local ? " local" : "") + (s.reachable ? "" : " gone");
    // the router's version when it reports one, else the site's
    const meta = [s.platform || "?", s.router ? "router " + s.router : (s.version ? "version " + s.version : "")].filter(Boolean).join(" · ");
    nodes.append(svg("g", { class: cls, "data-name": s.name, "data-id": s.id, transform: `translate(${p.x},${p.y})` },
      svg("title", {}, `${s.name} (${s.id})${s.namespace ? "\nnamespace " + s.namespace : ""}${s.version ? "\nversion " + s.version : ""}${s.router ? "\nskupper-router " + s.router : ""}${s.local ? "\nthis host" : ""}${s.reachable ? "" : "\nnot reachable now"}`),
      svg("rect", { x: -boxW / 2, y: -boxH / 2, width: boxW, height: boxH, rx: 8 }),
      svg("text", { class: "name", y: -6 }, short(s.name, 20)),
      svg("text", { class: "meta", y: 12 }, short(meta, 26)),
      s.reachable ? null : svg("text", { class: "meta", y: 24 }, "unreachable")));
  }
  g.replaceChildren(defs, links, nodes);
  document.getElementById("network-count").textContent = `${n} site${n === 1 ? "" : "s"}, ${net.links.length} link${net.links.length === 1 ? "" : "s"}`;

  const rows = net.links.map(l => {
    const st = l.up ? "up" : "down";
    return el("tr", { "data-link": l.name, "data-from": l.fromName, "data-to": l.toName || "", "data-state": st },
      el("td", {}, l.fromName), el("td", {}, l.name), el("td", {}, l.toName || "?"),
      el("td", { class: st }, st), el("td", { class: "msg reason" }, l.up ? "" : (l.message || "")));
  });
  document.querySelector("#links tbody").replaceChildren(...rows);
}

function endpoints(list) {
  if (!list || list.length === 0) return el("span", { class: "empty" }, "none");
  const f = document.createDocumentFragment();
  list.forEach((e, i) => {
    if (i > 0) f.append(", ");
    f.append(el("span", { title: e.siteId }, `${e.name} @ ${e.site}`));
  });
  return f;
}

function renderServices(services) {
  const body = document.querySelector("#services tbody");
  const f = document.createDocumentFragment();
  for (const s of services) {
    const t = s.traffic;
    f.append(el("tr", { "data-key": s.routingKey, "data-bytes-in": t ? t.bytesIn : "", "data-bytes-out": t ? t.bytesOut : "" },
      el("td", {}, s.routingKey),
      el("td", {}, endpoints(s.listeners)),
      el("td", {}, endpoints(s.connectors)),
      el("td", { class: s.matched ? "yes" : "no" }, s.matched ? "yes" : "no"),
      el("td", { class: "num" }, t ? t.open : "–"),
      el("td", { class: "num bytes-in", title: t ? t.bytesIn + " bytes" : "no flow records" }, t ? bytes(t.bytesIn) : "–"),
      el("td", { class: "num bytes-out", title: t ? t.bytesOut + " bytes" : "no flow records" }, t ? bytes(t.bytesOut) : "–")));
  }
  if (services.length === 0) f.append(el("tr", {}, el("td", { colspan: 7, class: "empty" }, "no listeners or connectors in the network")));
  body.replaceChildren(f);
  document.getElementById("services-count").textContent = String(services.length);
}

function matched(st) {
  if (st.remoteSiteName) return "→ " + st.remoteSiteName;
  for (const k of ["hasMatchingConnector", "hasMatchingListener", "hasDestination"]) {
    if (k in st) return String(st[k]);
  }
  return "–";
}

function where(file, line) {
  if (!file) return "";
  return line ? `${file}:${line}` : file;
}

function renderNamespaces(nss) {
  const out = document.createDocumentFragment();
  for (const ns of nss) {
    const box = el("div", { class: "namespace", "data-namespace": ns.name });
    box.append(el("h3", {}, ns.name, ns.site ? el("span", { class: "count" }, ` — site ${ns.site}`) : null));
    if (ns.problems && ns.problems.length) {
      box.append(el("ul", { class: "problems" }, ...ns.problems.map(p =>
        el("li", { class: p.warning ? "warning" : "error" },
          el("span", { class: "where" }, where(p.file, p.line)), " ",
          [p.warning ? "warning" : "", p.id, p.field, p.message].filter(Boolean).join(": ")))));
    }
    const rows = ns.resources.map(r => {
      const st = r.status || {};
      const state = r.error ? "Error" : (st.status || "?");
      return el("tr", { "data-kind": r.kind, "data-name": r.name, "data-status": state },
        el("td", {}, r.kind), el("td", {}, r.name), el("td", { class: state }, state),
        el("td", {}, matched(st)), el("td", { class: "msg" }, r.error || st.message || ""),
        el("td", { class: "where" }, where(r.file, r.line)));
    });
    if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 6, class: "empty" }, "no status yet")));
    box.append(el("table", { class: "resources" },
      el("thead", {}, el("tr", {}, ...["Kind", "Name", "Status", "Matched", "Message", "Defined at"].map(h => el("th", {}, h)))),
      el("tbody", {}, ...rows)));
    out.append(box);
  }
  if (nss.length === 0) out.append(el("p", { class: "empty" }, "no namespaces"));
  document.getElementById("namespace-list").replaceChildren(out);
}

let painted = false;

function render(snap) {
  const start = performance.now();
  renderGraph(snap.network);
  renderServices(snap.services);
  renderNamespaces(snap.namespaces);
  document.body.dataset.updated = String(Date.now());
  document.body.dataset.renderMs = (performance.now() - start).toFixed(1);
  if (!painted) {
    painted = true;
    // the frame after the one that draws the first snapshot: it is on
    // the screen (performance.now() counts from the navigation's start)
    requestAnimationFrame(() => requestAnimationFrame(() => {
      document.body.dataset.firstPaint = performance.now().toFixed(1);
    }));
  }
}

function connect() {
  document.body.dataset.scriptAt = performance.now().toFixed(1);
  const state = document.getElementById("state");
  const es = new EventSource("api/events");
  es.addEventListener("open", () => { state.textContent = "live"; state.className = "state live"; });
  es.addEventListener("snapshot", e => { if (!document.body.dataset.snapshotAt) document.body.dataset.snapshotAt = performance.now().toFixed(1); document.body.dataset.snapshotBytes = String(e.data.length); render(JSON.parse(e.data)); });
  es.addEventListener("problem", e => { state.textContent = "daemon: " + e.data; state.className = "state lost"; });
  // EventSource reconnects by itself; the page only says so
  es.addEventListener("error", () => { state.textContent = "reconnecting…"; state.className = "state lost"; });
}

connect();
