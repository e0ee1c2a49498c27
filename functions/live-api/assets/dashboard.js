// The dashboard: polls /api/v1/dashboard every few seconds and redraws in place (no reload).
// Text from the data is only ever set with textContent.
"use strict";

const REFRESH_MS = 5000;
const RULE_COLORS = { paid_user: "#e08a1e", property_status: "#7a5cd6", possible_broker: "#d9534f" };
const number = new Intl.NumberFormat("en-US");
const $ = (id) => document.getElementById(id);
const charts = {};

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function hhmm(iso) {
  return iso ? iso.slice(11, 16) : "";
}

function setStatus(live, text) {
  $("status").className = "status " + (live ? "live" : "offline");
  $("status-text").textContent = text;
}

// One row of a bar list: its rank, its name over a bar of `count` out of `max`, the count.
function bar(rank, name, count, max) {
  const li = el("li");
  li.append(el("span", "rank", rank));
  const label = el("div", "label");
  const track = el("div", "track");
  const fill = el("span", "fill");
  fill.style.width = (100 * count / max).toFixed(1) + "%";
  track.append(fill);
  label.append(name, track);
  li.append(label, el("span", "count", number.format(count)));
  return li;
}

function renderTopEvents(rsvp) {
  const list = $("top-events");
  const top = rsvp.top_events || [];
  const max = Math.max(1, ...top.map((e) => e.yes));
  list.replaceChildren(
    ...top.map((e, i) => {
      const name = el("div", "name", e.event_name || "(no name)");
      name.title = e.event_name;
      name.append(el("span", "id", "#" + e.event_id));
      return bar(String(i + 1), name, e.yes, max);
    })
  );
  $("top-empty").hidden = top.length > 0;
  $("window").textContent = rsvp.window_start
    ? `${hhmm(rsvp.window_start)}–${hhmm(rsvp.window_end)} UTC, yes RSVPs`
    : "last 5 minutes";
}

// The ML step's latest run: each cluster's groups, named by its commonest topics, and the model
// of the clusters against always answering the commonest one.
function renderClusters(clusters) {
  const sizes = (clusters && clusters.per_cluster) || [];
  const max = Math.max(1, ...sizes.map((c) => c.groups));
  $("clusters").replaceChildren(
    ...sizes.map((c) => {
      const name = el("div", "name", c.topics.join(", ") || "(no topics)");
      name.title = c.topics.join(", ");
      return bar(String(c.cluster), name, c.groups, max);
    })
  );
  $("clusters-empty").hidden = sizes.length > 0;
  $("clusters-when").textContent = clusters
    ? `by topic, ${number.format(clusters.groups)} groups, ${clusters.at.slice(0, 16).replace("T", " ")} UTC`
    : "by topic";
  const model = clusters && clusters.model;
  const share = (x) => (100 * x).toFixed(0) + "%";
  $("model-accuracy").textContent = model ? share(model.accuracy) : "–";
  $("model-baseline").textContent = model ? share(model.baseline_accuracy) : "–";
  $("model-note").textContent = model
    ? `${model.model} on ${number.format(model.n_train)} groups, tested on ${number.format(model.n_test)}; ` +
      "goes by " + model.importance_by_kind.slice(0, 2).map((i) => i.feature).join(" and ")
    : clusters ? "Too few groups to hold some out." : "No model yet.";
}

// The warehouse's answer: today's flyer opens, each for the vendor its flyer had when opened.
function renderVendorOpens(answer) {
  const vendors = (answer && answer.vendors) || [];
  const max = Math.max(1, ...vendors.map((v) => v.opens));
  $("vendor-opens").replaceChildren(
    ...vendors.map((v, i) => {
      const name = el("div", "name", v.name || "(no name)");
      name.title = `${v.name || ""} · ${number.format(v.flyers)} flyers`;
      name.append(el("span", "id", "#" + v.vendor_id));
      return bar(String(i + 1), name, v.opens, max);
    })
  );
  $("vendor-opens-empty").hidden = vendors.length > 0;
  $("vendor-opens-when").textContent = answer
    ? `${answer.day}, as of ${answer.at.slice(11, 16)} UTC`
    : "today, from the warehouse";
  $("opens-total").textContent = answer ? number.format(answer.opens) : "–";
  $("opens-unknown").textContent = answer ? number.format(answer.unknown) : "–";
  $("opens-note").textContent = answer && answer.other_vendors
    ? `${number.format(answer.other_vendors)} more opens for vendors after these`
    : "";
}

function renderTotals(totals) {
  $("total-yes").textContent = number.format(totals.yes);
  $("total-no").textContent = number.format(totals.no);
  $("total-rsvps").textContent = number.format(totals.rsvps);
  const answered = totals.yes + totals.no;
  // Grey, not all "no", before the first answer.
  $("ratio").classList.toggle("none", answered === 0);
  $("ratio-yes").style.width = answered ? (100 * totals.yes / answered).toFixed(1) + "%" : "0";
  $("yes-share").textContent = answered ? Math.round(100 * totals.yes / answered) + "% yes" : "";
}

function renderNewest(rsvp) {
  $("newest").textContent = rsvp.window_end
    ? "newest RSVP in the minute ending " + rsvp.window_end.slice(0, 16).replace("T", " ") + " UTC"
    : "";
}

function lastHour() {
  const now = Math.floor(Date.now() / 60000) * 60;
  return [now - 3600, now];
}

function chart(id, series, data, bars) {
  const target = $(id);
  const width = Math.max(300, target.clientWidth);
  if (charts[id] && charts[id].series.length === series.length + 1) {
    charts[id].setData(data);
    if (Math.abs(charts[id].width - width) > 4) charts[id].setSize({ width, height: 220 });
    return;
  }
  if (charts[id]) charts[id].destroy();
  const paths = bars && uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined;
  charts[id] = new uPlot(
    {
      width,
      height: 220,
      legend: { show: true },
      cursor: { points: { show: false } },
      // UTC like the rest of the page; half a minute of room on each side for the bars.
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
      // Before any data: the hour up to now, and counts from 0 to 1 (not one repeated label).
      scales: {
        x: { time: true, range: (u, min, max) => (Number.isFinite(min) ? [min - 30, max + 30] : lastHour()) },
        y: { range: (u, min, max) => [0, Number.isFinite(max) && max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        { stroke: "#6b7385", grid: { stroke: "#eef1f6" }, values: (u, splits) => splits.map((v) => new Date(v * 1000).toISOString().slice(11, 16)) },
        // Counts: whole-number steps only.
        { stroke: "#6b7385", grid: { stroke: "#eef1f6" }, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7] },
      ],
      series: [{}].concat(
        series.map((s) => ({ label: s.label, stroke: s.color, fill: s.fill, width: 2, paths: s.bars ? paths : undefined, points: { show: false } }))
      ),
    },
    data,
    target
  );
}

function renderPerMinute(rsvp) {
  const minutes = rsvp.per_minute || [];
  const xs = minutes.map((m) => Date.parse(m.minute) / 1000);
  chart("per-minute", [{ label: "RSVPs", color: "#3b6fd8", fill: "rgba(59,111,216,.25)", bars: true }], [xs, minutes.map((m) => m.rsvps)], true);
}

function renderAnswers(panels) {
  const list = $("answers");
  list.replaceChildren(
    ...panels.answers.map((m) => {
      const li = el("li");
      const head = el("div", "head");
      head.append(el("span", "", m.model), el("span", "", number.format(m.male + m.female)));
      const split = el("div", "split");
      const total = Math.max(1, m.male + m.female);
      const male = el("span", "male");
      male.style.width = (100 * m.male / total).toFixed(1) + "%";
      const female = el("span", "female");
      female.style.width = (100 * m.female / total).toFixed(1) + "%";
      split.append(male, female);
      const legend = el("div", "legend");
      const sw = (cls) => { const s = el("span", "swatch " + cls); s.style.background = cls === "male" ? "var(--male)" : "var(--female)"; return s; };
      legend.append(sw("male"), document.createTextNode("male " + number.format(m.male)), sw("female"), document.createTextNode("female " + number.format(m.female)));
      li.append(head, split, legend);
      return li;
    })
  );
  $("answers-empty").hidden = panels.answers.length > 0;
}

function renderAlerts(panels) {
  $("alerts").replaceChildren(
    ...panels.alerts.map((r) => {
      const li = el("li");
      li.style.borderLeftColor = RULE_COLORS[r.rule] || "#3b6fd8";
      li.append(el("span", "rule", r.rule), el("span", "number", number.format(r.alerts)));
      return li;
    })
  );
  const body = $("latest").querySelector("tbody");
  body.replaceChildren(
    ...panels.latest_alerts.map((a) => {
      const tr = el("tr");
      [hhmm(a.at), a.rule, String(a.key), String(a.count)].forEach((t) => tr.append(el("td", "", t)));
      return tr;
    })
  );
  $("latest").hidden = panels.latest_alerts.length === 0;
  $("latest-empty").hidden = panels.latest_alerts.length > 0;
  const xs = panels.per_minute.map((m) => Date.parse(m.minute) / 1000);
  const series = [{ label: "answers", color: "#3b6fd8" }].concat(
    panels.alerts.map((r) => ({ label: r.rule + " alerts", color: RULE_COLORS[r.rule] || "#6b7385" }))
  );
  const data = [xs, panels.per_minute.map((m) => m.answers)].concat(
    panels.alerts.map((r) => panels.per_minute.map((m) => m.alerts[r.rule] || 0))
  );
  chart("activity", series, data, false);
}

const TYPE_COLORS = ["#3b6fd8", "#e07b39", "#2f9e6b", "#b04fc7", "#d04a5a", "#7a8699", "#c9a227", "#2aa3b8"];

function renderEvents(events) {
  const types = Object.keys(events.totals).sort();
  $("event-types").replaceChildren(
    ...types.map((t, i) => {
      const li = el("li");
      li.style.borderLeftColor = TYPE_COLORS[i % TYPE_COLORS.length];
      li.append(el("span", "rule", t), el("span", "number", number.format(events.totals[t])));
      return li;
    })
  );
  $("events-total").textContent = events.events ? number.format(events.events) + " events" : "";
  $("events-empty").hidden = types.length > 0;
  const xs = events.per_minute.map((m) => Date.parse(m.minute) / 1000);
  const series = types.map((t, i) => ({ label: t, color: TYPE_COLORS[i % TYPE_COLORS.length] }));
  const data = [xs].concat(types.map((t) => events.per_minute.map((m) => m.counts[t] || 0)));
  chart("events-per-minute", series, data, false);
}

// With ApiReadAuth=jwt the page is opened as /dashboard#access_token=<JWT> (an identity
// provider's redirect does that): the token is kept for the tab, out of the address bar, and
// sent with every data request.
const TOKEN = (() => {
  const given = new URLSearchParams(location.hash.slice(1)).get("access_token");
  if (given) {
    sessionStorage.setItem("tally-token", given);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("tally-token");
})();

async function refresh() {
  try {
    const headers = TOKEN ? { authorization: "Bearer " + TOKEN } : {};
    const response = await fetch("/api/v1/dashboard", { cache: "no-store", headers });
    if (response.status === 401 || response.status === 403) {
      throw new Error("sign-in needed: open /dashboard#access_token=<token>");
    }
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || "HTTP " + response.status);
    renderTopEvents(body.rsvp);
    renderTotals(body.rsvp.totals);
    renderNewest(body.rsvp);
    renderPerMinute(body.rsvp);
    renderAnswers(body.panels);
    renderAlerts(body.panels);
    renderEvents(body.events);
    renderClusters(body.clusters);
    renderVendorOpens(body.vendor_opens);
    setStatus(true, "live · updated " + new Date(body.as_of).toISOString().slice(11, 19) + " UTC");
  } catch (e) {
    setStatus(false, "offline (" + e.message + "), retrying");
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
