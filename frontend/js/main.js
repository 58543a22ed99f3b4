// Wires the page: controls, the live feed, and the views it draws at screen pace.

import { Controls } from "./controls.js";
import { DepthChart } from "./depth.js";
import { el, fmtCompact } from "./format.js";
import { Ladder } from "./ladder.js";
import { LiveFeed } from "./live.js";
import { Alerts, Health, Progress, problemsOf } from "./status.js";
import { Tape } from "./tape.js";
import { takeTokenFromAddress } from "./token.js";
import { TimeTravel } from "./travel.js";

const CHART_LEVELS = 50; // levels per side polled for the depth chart; the ladder shows the top `rows`

const $ = (selector) => document.querySelector(selector);
const alerts = new Alerts($("#alerts"));
const health = new Health($("#health"));
const progress = new Progress($("#progress"));
const ladder = new Ladder($("#book"));
const depth = new DepthChart($("#depth-canvas"), $("#depth-readout"));
const tape = new Tape($("#tape"));
const controls = new Controls($("#controls"), alerts, () => {
  tape.primed = false;
});
const instrumentSelect = $("#instrument");
const publisherSelect = $("#publisher");
const rowsSelect = $("#rows");
const liveStatus = $("#live-status");
const footer = { seq: $("#frame-seq"), rate: $("#frame-rate"), run: $("#frame-run") };
const travel = new TimeTravel($("#history"), $("#badge-history"), {
  depth: CHART_LEVELS,
  onPoint: showBook,
  onLive: () => {
    tape.primed = false;
    if (lastFrame) drawLive(lastFrame);
  },
});

const feed = new LiveFeed(render, onConnection);
feed.subscription.depth = CHART_LEVELS;
feed.onNotice = (message) => {
  if (message.type === "error") alerts.note("subscribe", "Live feed", message.detail);
};

let instrumentsKey = "";
let lastFrame = null;
let loadingFiles = null;

function onConnection({ connected, detail }) {
  liveStatus.dataset.state = connected ? "live" : "down";
  liveStatus.querySelector(".text").textContent = connected ? "Live" : "Offline";
  if (!connected) {
    health.disconnected(detail);
    alerts.setLive([{ where: "Orchestrator", what: `unreachable: ${detail}`, level: "error" }]);
  }
}

/** The instrument and publisher choosers, rebuilt only when the run's instruments change. */
function updateChoosers(frame) {
  const instruments = frame.instruments || [];
  const key = JSON.stringify(instruments);
  const wanted = feed.subscription;
  if (wanted.instrument_id !== null && instruments.length && !instruments.some((i) => i.instrument_id === wanted.instrument_id)) {
    feed.subscribe({ instrument_id: null, publisher_id: null }); // a new run without that instrument
  }
  const shownInstrument = frame.book ? frame.book.instrument_id : wanted.instrument_id;
  if (key !== instrumentsKey) {
    instrumentsKey = key;
    instrumentSelect.replaceChildren(
      ...(instruments.length
        ? instruments.map((i) => {
            const option = el("option", null, `${i.symbol} · ${i.instrument_id}`);
            option.value = String(i.instrument_id);
            return option;
          })
        : [el("option", null, "—")]),
    );
    instrumentSelect.disabled = instruments.length <= 1;
  }
  if (shownInstrument !== null && shownInstrument !== undefined) instrumentSelect.value = String(shownInstrument);
  const instrument = instruments.find((i) => i.instrument_id === shownInstrument);
  const publishers = instrument ? instrument.publishers : [];
  const publisherKey = `${shownInstrument}|${publishers.join(",")}`;
  if (publisherSelect.dataset.key !== publisherKey) {
    publisherSelect.dataset.key = publisherKey;
    const all = el("option", null, `All ${publishers.length > 1 ? `${publishers.length} ` : ""}publishers (consolidated)`);
    all.value = "";
    publisherSelect.replaceChildren(
      all,
      ...publishers.map((p) => {
        const option = el("option", null, `Publisher ${p}`);
        option.value = String(p);
        return option;
      }),
    );
    publisherSelect.disabled = publishers.length <= 1;
  }
  publisherSelect.value = wanted.publisher_id === null ? "" : String(wanted.publisher_id);
}

/** Draw a book (live or at a point in history) in the ladder and the depth chart. */
function drawBook(book) {
  ladder.render(book, Number(rowsSelect.value));
  depth.render(book);
  $("#book-symbol").textContent = book.symbol;
}

/** The book at a point in history, and the trades up to it; `message` says why there is no book. */
function showBook(book, trades, instrumentId, message) {
  if (book) drawBook(book);
  else {
    ladder.showEmpty(message);
    depth.render(null);
    $("#book-symbol").textContent = "";
  }
  tape.primed = false;
  tape.render(trades, instrumentId);
}

function renderBook(frame) {
  const receiverUp = frame.health && frame.health.receiver && frame.health.receiver.reachable;
  const receiverState = frame.receiver ? frame.receiver.state : null;
  if (frame.book) {
    drawBook(frame.book);
    return;
  }
  let message;
  if (!receiverUp) message = "Receiver unreachable: no book to show.";
  else if (receiverState === "idle") message = "No replay yet. Choose a file and press Start.";
  else if (frame.errors && frame.errors.book && frame.errors.book.status_code !== 404) message = frame.errors.book.message;
  else message = "Waiting for the first records…";
  ladder.showEmpty(message);
  depth.render(null);
  $("#book-symbol").textContent = "";
}

function render(frame) {
  lastFrame = frame;
  health.render(frame.health || {});
  alerts.setLive(problemsOf(frame));
  const run = frame.sender && frame.sender.run;
  const received = frame.receiver && frame.receiver.run;
  if (frame.receiver) controls.suggestGateway(frame.receiver.live_gateways);
  // a live feed is received with the sender idle
  controls.setRunning(Boolean((run && run.state === "streaming") || (received && received.state === "receiving")));
  if (!controls.files.length && !loadingFiles && frame.health.sender && frame.health.sender.reachable) {
    loadingFiles = controls.load().finally(() => (loadingFiles = null));
  }
  const fileInfo = run ? controls.files.find((file) => file.name === run.file) : null;
  progress.render(frame.sender, frame.receiver, fileInfo);
  updateChoosers(frame);
  if (feed.matches(frame)) {
    const instrument = frame.book ? frame.book.instrument_id : feed.subscription.instrument_id;
    travel.follow(frame, instrument, feed.subscription.publisher_id);
    if (!travel.traveling) drawLive(frame);
  }
  footer.seq.textContent = `frame ${frame.seq}`;
  footer.run.textContent = frame.run_id ? `run ${frame.run_id}` : "";
}

/** The live frame's book and trades. */
function drawLive(frame) {
  renderBook(frame);
  tape.render(frame.trades, frame.book ? frame.book.instrument_id : null);
}

instrumentSelect.addEventListener("change", () => {
  feed.subscribe({ instrument_id: Number(instrumentSelect.value), publisher_id: null });
});
publisherSelect.addEventListener("change", () => {
  const instrument = lastFrame && lastFrame.book ? lastFrame.book.instrument_id : Number(instrumentSelect.value);
  feed.subscribe({
    instrument_id: instrument,
    publisher_id: publisherSelect.value === "" ? null : Number(publisherSelect.value),
  });
});
rowsSelect.addEventListener("change", () => {
  localStorage.setItem("obm.rows", rowsSelect.value);
  if (travel.traveling) travel.redraw();
  else if (lastFrame) renderBook(lastFrame);
});
rowsSelect.value = localStorage.getItem("obm.rows") || rowsSelect.value;

// Frames received and drawn per second, to show the page keeps up.
let counted = { received: 0, drawn: 0, at: performance.now() };
setInterval(() => {
  const now = performance.now();
  const seconds = (now - counted.at) / 1000;
  const received = (feed.framesReceived - counted.received) / seconds;
  const drawn = (feed.framesDrawn - counted.drawn) / seconds;
  footer.rate.textContent = `${fmtCompact(received)} frames/s in · ${fmtCompact(drawn)} drawn/s`;
  counted = { received: feed.framesReceived, drawn: feed.framesDrawn, at: now };
}, 1000);

takeTokenFromAddress();
controls.load();
feed.connect();
