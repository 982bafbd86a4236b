// graphattach web UI: copy buttons and the live upload-session table. Text only through
// textContent (never innerHTML): names come from whoever created the session.
"use strict";

function copyText(text, button) {
  const done = () => {
    const was = button.textContent;
    button.textContent = "Copied";
    button.dataset.copied = String(Number(button.dataset.copied || "0") + 1);
    setTimeout(() => { button.textContent = was; }, 1200);
  };
  if (navigator.clipboard && window.isSecureContext) {
    // writeText can stay pending for good when the page has no focus (a background tab, a
    // headless browser): after a second the older way copies instead, and only one of them counts.
    let settled = false;
    const once = (how) => () => { if (!settled) { settled = true; how(); } };
    const fallback = once(() => fallbackCopy(text, done));
    setTimeout(fallback, 1000);
    navigator.clipboard.writeText(text).then(once(done), fallback);
  } else {
    fallbackCopy(text, done);
  }
}

function fallbackCopy(text, done) {
  const area = document.createElement("textarea");
  area.value = text;
  document.body.appendChild(area);
  area.select();
  try { document.execCommand("copy"); done(); } finally { area.remove(); }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  const from = button.dataset.copyFrom ? document.getElementById(button.dataset.copyFrom) : null;
  copyText(from ? from.value : button.dataset.copy || "", button);
});

function size(value) {
  let n = Number(value);
  for (const unit of ["B", "KB", "MB", "GB"]) {
    if (n < 1024 || unit === "GB") return unit === "B" ? `${Math.floor(n)} B` : `${n.toFixed(1)} ${unit}`;
    n /= 1024;
  }
  return `${value} B`;
}

function cell(row, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function link(href, text, className) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  if (className) a.className = className;
  return a;
}

function sessionRow(s) {
  const tr = document.createElement("tr");
  tr.dataset.id = s.id;
  const file = cell(tr);
  file.appendChild(s.attachment_url ? link(s.attachment_url, s.name, "attachment-link") : document.createTextNode(s.name));
  file.appendChild(document.createTextNode(" "));
  file.appendChild(link(s.item_url, "item", "muted"));
  cell(tr).textContent = s.user;
  const tag = document.createElement("span");
  tag.className = `tag state-${s.state}`;
  tag.textContent = s.state;
  cell(tr).appendChild(tag);
  const progressCell = cell(tr, "progress-col");
  const bar = document.createElement("progress");
  bar.max = s.size;
  bar.value = s.received;
  progressCell.appendChild(bar);
  const bytes = document.createElement("span");
  bytes.className = "bytes";
  bytes.textContent = ` ${size(s.received)} / ${size(s.size)}`;
  progressCell.appendChild(bytes);
  const active = s.state === "active";
  cell(tr, "num rate").textContent = active ? `${size(s.rate)}/s` : "";
  cell(tr, "num expires").textContent = active ? `${s.expires_in} s` : "";
  const code = document.createElement("code");
  code.textContent = s.next;
  cell(tr, "next").appendChild(code);
  return tr;
}

function startLive(table) {
  const status = document.getElementById("live-status");
  const source = new EventSource(table.dataset.live);
  source.onopen = () => { if (status) status.textContent = "live"; };
  source.onerror = () => { if (status) status.textContent = "reconnecting…"; };
  source.onmessage = (event) => {
    const data = JSON.parse(event.data);
    const body = document.createElement("tbody");
    for (const s of data.sessions) body.appendChild(sessionRow(s));
    if (!data.sessions.length) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      const td = cell(tr, "muted");
      td.colSpan = 7;
      td.textContent = "No upload sessions yet.";
      body.appendChild(tr);
    }
    table.replaceChild(body, table.tBodies[0]);
    table.dataset.updates = String(Number(table.dataset.updates || "0") + 1);
  };
  window.addEventListener("pagehide", () => source.close());
}

function requestRow(r) {
  const tr = document.createElement("tr");
  cell(tr, "nowrap").appendChild(link(`/requests/${r.seq}`, r.time));
  cell(tr).textContent = r.method;
  cell(tr, "path").textContent = r.path;
  const status = cell(tr, `num status-${Math.floor(r.status / 100)}xx`);
  status.textContent = String(r.status);
  cell(tr, "num").textContent = String(r.ms);
  const op = document.createElement("code");
  op.textContent = r.operation;
  const opCell = cell(tr);
  opCell.appendChild(op);
  if (r.fault) {
    const fault = document.createElement("span");
    fault.className = "fault";
    fault.textContent = " " + r.fault;
    opCell.appendChild(fault);
  }
  cell(tr).textContent = r.who;
  const id = document.createElement("code");
  id.className = "muted";
  id.textContent = r.request_id;
  cell(tr).appendChild(id);
  return tr;
}

function startRequests(table) {
  const status = document.getElementById("live-status");
  const source = new EventSource(table.dataset.live);
  source.onopen = () => { if (status) status.textContent = "live"; };
  source.onerror = () => { if (status) status.textContent = "reconnecting…"; };
  source.onmessage = (event) => {
    const body = table.tBodies[0];
    const empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    for (const r of JSON.parse(event.data).requests) body.insertBefore(requestRow(r), body.firstChild);
    while (body.rows.length > 500) body.deleteRow(body.rows.length - 1);
  };
  window.addEventListener("pagehide", () => source.close());
}

document.addEventListener("DOMContentLoaded", () => {
  const sessions = document.querySelector("table#sessions[data-live]");
  if (sessions) startLive(sessions);
  const requests = document.querySelector("table#requests[data-live]");
  if (requests) startRequests(requests);
});
