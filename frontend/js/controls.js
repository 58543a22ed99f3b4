// Replay controls: the sender's files (with what each holds), the speed, Start and Stop.

import { api, ApiError } from "./api.js";
import { el, fmtBytes, fmtDateTimeNs, fmtDuration, fmtInt } from "./format.js";

const REMEMBERED = "obm.file";

export class Controls {
  /** `alerts`: where failures are said; `onStarted(run)`: after a successful start. */
  constructor(root, alerts, onStarted) {
    this.alerts = alerts;
    this.onStarted = onStarted;
    this.select = root.querySelector("#file");
    this.info = root.querySelector("#file-info");
    this.speed = root.querySelector("#speed");
    this.start = root.querySelector("#start");
    this.stop = root.querySelector("#stop");
    this.refresh = root.querySelector("#refresh-files");
    this.liveForm = root.querySelector("#live-form");
    this.liveDatasets = root.querySelector("#live-datasets");
    this.files = [];
    this.running = false;
    this.busy = false;
    this.select.addEventListener("change", () => {
      localStorage.setItem(REMEMBERED, this.select.value);
      this.describe();
      this.update();
    });
    this.start.addEventListener("click", () => this.startReplay());
    this.stop.addEventListener("click", () => this.stopReplay());
    this.refresh.addEventListener("click", () => this.load());
    for (const field of this.liveForm.querySelectorAll("#live-host, #live-port")) {
      field.addEventListener("input", () => (field.dataset.edited = "true"));
    }
    this.liveForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.startLive();
    });
  }

  selected() {
    return this.files.find((file) => file.name === this.select.value) || null;
  }

  async load() {
    this.select.disabled = true;
    this.info.textContent = "Loading the sender's files…";
    try {
      this.files = await api("GET", "/api/files");
      this.alerts.note("files", null, null);
    } catch (error) {
      this.files = [];
      const where = error instanceof ApiError ? `${cap(error.service)} (file list)` : "File list";
      this.alerts.note("files", where, error.message);
      this.info.textContent = "No file list: see the message above.";
    }
    this.fill();
    this.select.disabled = this.files.length === 0;
    this.update();
  }

  fill() {
    const streamable = this.files.filter((file) => file.streamable);
    const broken = this.files.filter((file) => !file.streamable);
    const groups = [];
    if (streamable.length) {
      const group = el("optgroup");
      group.label = "Ready to replay";
      for (const file of streamable) {
        const option = el("option", null, `${file.name}  —  ${file.symbols.join(", ")}`);
        option.title = `${fmtInt(file.record_count)} records, ${fmtDateTimeNs(file.start_ns)} to ${fmtDateTimeNs(file.end_ns)}`;
        option.value = file.name;
        group.append(option);
      }
      groups.push(group);
    }
    if (broken.length) {
      const group = el("optgroup");
      group.label = "Cannot be replayed";
      for (const file of broken) {
        const option = el("option", null, `${file.name}  —  ${file.problem}`);
        option.value = file.name;
        option.disabled = true;
        option.title = file.problem;
        group.append(option);
      }
      groups.push(group);
    }
    if (!this.files.length) {
      const option = el("option", null, "no files");
      option.value = "";
      groups.push(option);
    }
    const datasets = [...new Set(streamable.map((file) => file.dataset).filter(Boolean))];
    this.liveDatasets.replaceChildren(...datasets.map((dataset) => Object.assign(el("option"), { value: dataset })));
    const keep = this.select.value || localStorage.getItem(REMEMBERED);
    this.select.replaceChildren(...groups);
    if (streamable.some((file) => file.name === keep)) this.select.value = keep;
    else if (streamable.length) this.select.value = streamable[0].name;
    this.describe();
  }

  describe() {
    const file = this.selected();
    this.info.replaceChildren();
    if (!file) return;
    const broken = this.files.filter((f) => !f.streamable).length;
    const facts = [
      ["Symbols", file.symbols.join(", ") || "—"],
      ["Records", fmtInt(file.record_count)],
      ["Time range", timeRange(file.start_ns, file.end_ns)],
      ["Dataset", `${file.dataset || "—"} · DBN v${file.dbn_version ?? "?"} · ${fmtBytes(file.size_bytes)}`],
    ];
    for (const [label, value] of facts) {
      const fact = el("span", "fact");
      fact.append(el("span", "label", label), el("span", "value", value));
      this.info.append(fact);
    }
    if (broken) {
      const note = el("span", "fact muted", `${broken} file${broken > 1 ? "s" : ""} cannot be replayed (see list)`);
      this.info.append(note);
    }
  }

  /** Enable what makes sense: Start with a replayable file and no replay running; Stop while one runs. */
  setRunning(running) {
    this.running = running;
    this.update();
  }

  update() {
    const file = this.selected();
    this.start.disabled = this.busy || this.running || !file || !file.streamable;
    this.stop.disabled = this.busy || !this.running;
    this.liveForm.querySelector("#live-book").disabled = this.busy || this.running;
  }

  speedValue() {
    return this.speed.value === "max" ? null : Number(this.speed.value);
  }

  async startReplay() {
    const file = this.selected();
    if (!file) return;
    this.busy = true;
    this.update();
    try {
      const run = await api("POST", "/api/start-streaming", { file: file.name, speed: this.speedValue() });
      this.alerts.note("action", null, null);
      this.running = true;
      this.onStarted(run);
    } catch (error) {
      const where = error instanceof ApiError ? `Start failed at the ${error.service}` : "Start failed";
      this.alerts.note("action", where, error.message);
    } finally {
      this.busy = false;
      this.update();
    }
  }

  /** Fill the gateway fields with the first gateway the receiver may book from, until the user edits them. */
  suggestGateway(gateways) {
    const host = this.liveForm.querySelector("#live-host");
    const port = this.liveForm.querySelector("#live-port");
    if (!gateways || !gateways.length || host.dataset.edited || port.dataset.edited) return;
    const [suggested, number] = [gateways[0].slice(0, gateways[0].lastIndexOf(":")), gateways[0].slice(gateways[0].lastIndexOf(":") + 1)];
    host.value = suggested.replace(/^\[|\]$/g, "");
    port.value = number;
  }

  /** The live source the form describes; the key field is emptied, so the page never keeps it. */
  liveSource() {
    const value = (id) => this.liveForm.querySelector(id).value.trim();
    const symbols = value("#live-symbols").split(",").map((symbol) => symbol.trim()).filter(Boolean);
    const key = this.liveForm.querySelector("#live-key");
    const source = {
      host: value("#live-host"),
      port: Number(value("#live-port")),
      dataset: value("#live-dataset"),
      schema: "mbo",
      symbols: symbols.length ? symbols : null,
      start: value("#live-start") || null,
      api_key: key.value,
    };
    key.value = "";
    return source;
  }

  async startLive() {
    this.busy = true;
    this.update();
    try {
      const run = await api("POST", "/api/start-live", this.liveSource());
      this.alerts.note("action", null, null);
      this.running = true;
      this.onStarted(run);
    } catch (error) {
      const where = error instanceof ApiError ? `Live feed refused at the ${error.service}` : "Live feed refused";
      this.alerts.note("action", where, error.message);
    } finally {
      this.busy = false;
      this.update();
    }
  }

  async stopReplay() {
    this.busy = true;
    this.update();
    try {
      await api("POST", "/api/stop");
      this.alerts.note("action", null, null);
    } catch (error) {
      const where = error instanceof ApiError ? `Stop failed at the ${error.service}` : "Stop failed";
      this.alerts.note("action", where, error.message);
    } finally {
      this.busy = false;
      this.update();
    }
  }
}

/** "2024-04-03 08:00:00 → 14:00:00 UTC (6:00:00)"; the end date too when it differs. */
function timeRange(startNs, endNs) {
  if (!startNs || !endNs) return "—";
  const start = fmtDateTimeNs(startNs).replace(" UTC", "");
  const end = fmtDateTimeNs(endNs).replace(" UTC", "");
  const endShown = end.slice(0, 10) === start.slice(0, 10) ? end.slice(11) : end;
  return `${start} → ${endShown} UTC (${fmtDuration((endNs - startNs) / 1e9)})`;
}

function cap(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}
