// Progress of the replay, health of the three services, and the alert strip that says what failed, where.

import { el, fmtCompact, fmtDuration, fmtInt } from "./format.js";

const SERVICE_NAMES = { orchestrator: "Orchestrator", sender: "Sender", receiver: "Receiver" };

/** One word for where the replay stands, from both services' status. */
export function replayState(sender, receiver) {
  const s = sender && sender.run ? sender.run.state : (sender && sender.state) || null;
  const r = receiver && receiver.run ? receiver.run.state : (receiver && receiver.state) || null;
  if (s === "stopped" || r === "stopped") return "stopped"; // the user pressed Stop: not a failure
  if (s === "failed" || r === "failed") return "failed";
  if (s === "done" && r === "done") return "done";
  if (s === "streaming" || r === "receiving" || (s === "done" && r && r !== "idle")) return "streaming";
  if (r === "ready") return "ready";
  if (s === "done") return "done";
  return "idle";
}

const STATE_LABELS = {
  idle: "Idle",
  ready: "Ready",
  streaming: "Replaying",
  done: "Done",
  failed: "Failed",
  stopped: "Stopped",
};

export class Progress {
  constructor(root) {
    this.root = root;
    this.q = (id) => root.querySelector(`#${id}`);
    this.rate = null;
    this.last = null;
  }

  render(sender, receiver, fileInfo) {
    const run = sender && sender.run;
    const rrun = receiver && receiver.run;
    const state = replayState(sender, receiver);
    this.root.dataset.state = state;
    this.q("run-state").textContent = STATE_LABELS[state];
    this.q("run-state").className = `state-pill ${state}`;

    const total = run ? run.records_total : rrun ? rrun.records_expected : null;
    const sent = run ? run.records_sent : 0;
    const applied = rrun ? rrun.accounting.records : 0;
    const pct = total ? Math.min(100, (100 * sent) / total) : 0;
    const appliedPct = total ? Math.min(100, (100 * applied) / total) : 0;
    this.q("progress-fill").style.width = `${pct}%`;
    this.q("progress-applied").style.width = `${appliedPct}%`;
    this.q("progress-records").textContent = total ? `${fmtInt(sent)} / ${fmtInt(total)}` : run ? fmtInt(sent) : "—";
    this.q("progress-pct").textContent = total ? `${pct.toFixed(pct === 100 ? 0 : 1)}%` : "";
    this.q("progress-applied-text").textContent = rrun ? fmtInt(applied) : "—";
    this.q("progress-events").textContent = rrun ? fmtInt(rrun.events) : "—";

    // Rate: instantaneous while streaming (from the sender's own counts and clock), the run's average after.
    let rate = run ? run.records_per_second : null;
    if (run && run.state === "streaming") {
      const now = { id: run.run_id, sent: run.records_sent, at: run.elapsed_seconds };
      if (this.last && this.last.id === now.id && now.at > this.last.at) {
        const instant = (now.sent - this.last.sent) / (now.at - this.last.at);
        this.rate = this.rate === null ? instant : 0.6 * this.rate + 0.4 * instant;
      }
      this.last = now;
      rate = this.rate ?? rate;
    } else {
      this.rate = null;
      this.last = null;
    }
    this.q("progress-rate").textContent = rate === null ? "—" : `${fmtCompact(rate)}/s`;
    this.q("progress-apply-rate").textContent = rrun ? `${fmtCompact(rrun.records_per_second)}/s` : "—";

    const span = fileInfo && fileInfo.start_ns && fileInfo.end_ns ? (fileInfo.end_ns - fileInfo.start_ns) / 1e9 : null;
    this.q("progress-market").textContent = run ? fmtDuration(run.market_seconds) : "—";
    this.q("progress-market-total").textContent = span ? `of ${fmtDuration(span)}` : "";
    this.q("progress-wall").textContent = run ? fmtDuration(run.elapsed_seconds) : "—";
    this.q("progress-file").textContent = run ? run.file : "no replay yet";
    this.q("progress-speed").textContent = run ? (run.speed ? `${fmtInt(run.speed)}× market time` : "as fast as possible") : "";
  }
}

export class Health {
  constructor(root) {
    this.pills = {};
    for (const name of Object.keys(SERVICE_NAMES)) {
      const pill = el("span", "pill unknown");
      pill.dataset.service = name;
      pill.append(el("span", "dot"), el("span", "name", SERVICE_NAMES[name]), el("span", "latency num", "…"));
      root.append(pill);
      this.pills[name] = pill;
    }
    // with several receivers (NATS), one chip each: the instruments it holds and how fast it books them
    this.receivers = el("span", "receivers");
    this.receivers.hidden = true;
    this.pills.receiver.after(this.receivers);
  }

  /** Each receiver of several: state, instrument ids held and apply rate; hidden with one receiver. */
  shares(receivers) {
    this.receivers.hidden = !receivers;
    if (!receivers) return;
    this.receivers.replaceChildren(
      ...receivers.map((receiver, index) => {
        const state = receiver.reachable ? "up" : "down";
        const held = receiver.instruments.length ? receiver.instruments.join(",") : "none";
        const rate = receiver.records_per_second === null ? "—" : `${fmtCompact(receiver.records_per_second)}/s`;
        const chip = el("span", `pill receiver-share ${state}`);
        chip.dataset.state = state;
        chip.append(el("span", "dot"), el("span", "name", `R${index + 1}`), el("span", "held num", held), el("span", "latency num", rate));
        const partitions = receiver.partitions && receiver.partitions.length ? receiver.partitions.join(",") : "all";
        const records = receiver.records === null ? "no run" : `${fmtInt(receiver.records)} records booked`;
        const lags = Object.entries(receiver.partition_lag || {}).filter(([, lag]) => lag !== null);
        const behind = lags.reduce((sum, [, lag]) => sum + lag, 0);
        if (behind) chip.append(el("span", "lag num", `lag ${fmtInt(behind)}`));
        const lagText = lags.length ? `, lag ${lags.map(([p, lag]) => `p${p} ${fmtInt(lag)}`).join(" ")} messages` : "";
        chip.title = receiver.reachable
          ? `${receiver.url} — ${receiver.state}, partitions ${partitions}, instruments ${held}, ${records}${lagText}`
          : `${receiver.url} — ${receiver.error}`;
        return chip;
      }),
    );
  }

  /** The sender's live gateway: its open sessions, each one's client, subscription, records and rate. */
  gateway(gateway) {
    if (!gateway) return;
    if (!this.pills.gateway) {
      const pill = el("span", "pill unknown");
      pill.dataset.service = "gateway";
      pill.append(el("span", "dot"), el("span", "name", "Gateway"), el("span", "latency num", "…"));
      this.pills.sender.after(pill);
      this.pills.gateway = pill;
    }
    if (!gateway.listening) {
      this.set("gateway", "unknown", "off", `live gateway: ${gateway.problem}`);
      return;
    }
    const lines = gateway.sessions.map(
      (session) =>
        `#${session.id} ${session.client} · ${session.dataset} ${session.symbols.join(",")} · ${session.state} · ` +
        `${fmtInt(session.records_sent)} records at ${fmtInt(session.records_per_second)}/s` +
        (session.problem ? ` · ${session.problem}` : ""),
    );
    const open = gateway.open_sessions;
    const title = [`live gateway on port ${gateway.port}: ${open} of ${gateway.max_sessions} sessions open`, ...lines].join("\n");
    this.set("gateway", "up", `${open} session${open === 1 ? "" : "s"}`, title);
  }

  set(name, state, text, title) {
    const pill = this.pills[name];
    pill.className = `pill ${state}`;
    pill.dataset.state = state;
    pill.querySelector(".latency").textContent = text;
    pill.title = title;
  }

  render(health) {
    const orchestrator = health.orchestrator || {};
    this.set("orchestrator", "up", `up ${fmtDuration(orchestrator.uptime_seconds)}`, "live feed connected");
    for (const name of ["sender", "receiver"]) {
      const probe = health[name];
      if (!probe) continue;
      if (probe.reachable) {
        const state = probe.status && probe.status.state ? probe.status.state : "up";
        this.set(name, "up", `${probe.latency_ms.toFixed(1)} ms`, `${probe.url} — ${state}`);
        if (name === "sender") this.gateway(probe.status && probe.status.gateway);
      } else {
        this.set(name, "down", "down", `${probe.url} — ${probe.error}`);
      }
      if (name === "receiver") this.shares(probe.status && probe.status.receivers);
    }
  }

  /** The live feed is gone: the orchestrator is unreachable, and nothing is known of the others. */
  disconnected(detail) {
    this.set("orchestrator", "down", "down", detail || "live feed disconnected");
    for (const name of ["sender", "receiver", "gateway"]) {
      if (this.pills[name]) this.set(name, "unknown", "?", "unknown while the orchestrator is unreachable");
    }
    this.shares(null);
  }
}

/** What is wrong right now, in words, from one frame: [{where, what, level}]. */
export function problemsOf(frame) {
  const problems = [];
  const health = frame.health || {};
  for (const name of ["sender", "receiver"]) {
    const probe = health[name];
    if (probe && !probe.reachable) {
      problems.push({ where: SERVICE_NAMES[name], what: `is down — ${probe.error}`, level: "error" });
    }
  }
  const sendRun = frame.sender && frame.sender.run;
  if (sendRun && sendRun.error) {
    problems.push({ where: "Sender", what: `stream of ${sendRun.file} ${sendRun.state}: ${sendRun.error}`, level: "error" });
  }
  const recvRun = frame.receiver && frame.receiver.run;
  if (recvRun) {
    if (recvRun.last_error) {
      const stopped = recvRun.state === "stopped"; // the user pressed Stop: expected, not a failure
      problems.push({ where: "Receiver", what: recvRun.last_error, level: stopped ? "info" : "error" });
    }
    const protocol = Object.entries(recvRun.protocol_errors || {});
    if (protocol.length) {
      const list = protocol.map(([code, n]) => `${code} × ${n}`).join(", ");
      problems.push({ where: "Receiver", what: `protocol errors: ${list}`, level: "error" });
    }
    if (recvRun.state === "done" && recvRun.accounted === false) {
      problems.push({ where: "Receiver", what: "records do not add up: some were neither applied, ignored nor skipped", level: "warn" });
    }
  }
  const receiverUp = health.receiver && health.receiver.reachable;
  const idle = frame.receiver && frame.receiver.state === "idle";
  for (const [what, error] of Object.entries(frame.errors || {})) {
    if (!error || (error.service === "receiver" && !receiverUp)) continue; // already said: it is down
    if (error.status_code === 404 && idle) continue; // no run yet is not a failure
    problems.push({ where: `${SERVICE_NAMES[error.service] || "Live feed"} (${what})`, what: error.message, level: "error" });
  }
  return problems;
}

export class Alerts {
  constructor(root) {
    this.root = root;
    this.live = [];
    this.sticky = new Map();
  }

  setLive(problems) {
    const before = JSON.stringify(this.live);
    this.live = problems;
    if (JSON.stringify(problems) !== before) this.draw();
  }

  /** A message about an action (start, stop, files) that stays until dismissed or replaced. */
  note(key, where, what, level = "error") {
    if (what === null) this.sticky.delete(key);
    else this.sticky.set(key, { where, what, level });
    this.draw();
  }

  draw() {
    const items = [...this.sticky.entries()].map(([key, item]) => ({ ...item, key }));
    items.push(...this.live);
    this.root.hidden = items.length === 0;
    this.root.replaceChildren(
      ...items.map((item) => {
        const row = el("div", `alert ${item.level}`);
        row.append(el("span", "icon", item.level === "info" ? "i" : "!"), el("strong", "where", item.where), el("span", "what", item.what));
        if (item.key) {
          const close = el("button", "dismiss", "×");
          close.title = "Dismiss";
          close.addEventListener("click", () => this.note(item.key, null, null));
          row.append(close);
        }
        return row;
      }),
    );
  }
}
