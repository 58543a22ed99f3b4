// Time travel: the history panel under the live view. It keeps the run's timeline (refreshed while the run is
// received), and, once the user clicks the history or steps an event, shows the book at that point
// (GET /api/order-book?at= | ?at_event=) in place of the live one until "Live" is pressed.

import { apiExactTimes } from "./api.js";
import { fmtInt, fmtNsUtc, fmtRawPrice } from "./format.js";
import { HistoryChart } from "./history.js";

const REFRESH_MS = 3000; // how often the timeline is read again while a run is received
const TAPE_TRADES = 30; // trades the tape shows at a point, as many as the live tape
const OPEN_KEY = "obm.history";

export class TimeTravel {
  /**
   * `depth`: levels per side read at a point; `onPoint(book | null, trades, instrumentId, message)`: draw the
   * book at the point; `onLive()`: draw the live feed again.
   */
  constructor(root, bookBadge, { depth, onPoint, onLive }) {
    this.root = root;
    this.badge = bookBadge;
    this.depth = depth;
    this.onPoint = onPoint;
    this.onLive = onLive;
    const q = (id) => root.querySelector(`#${id}`);
    this.toggle = q("history-toggle");
    this.time = q("history-time");
    this.event = q("history-event");
    this.facts = q("history-facts");
    this.note = q("history-note");
    this.buttons = { back: q("history-back"), forward: q("history-forward"), live: q("history-live") };
    this.chart = new HistoryChart(q("history-canvas"), q("history-readout"), (ns) => this.go({ at: ns }));
    this.timeline = null;
    this.loadedAt = -Infinity;
    this.loading = null;
    this.stale = false;
    this.watch = { runId: null, instrumentId: null, publisherId: null, state: null };
    this.traveling = false;
    this.shown = null; // the answer at the point shown: {point, book}
    this.eventIndex = null; // the event last asked for or shown, where a step starts from
    this.wanted = null;
    this.busy = false;
    this.pointNote = null;
    this.timelineNote = null;

    this.toggle.addEventListener("click", () => this.setOpen(!this.open));
    this.buttons.back.addEventListener("click", () => this.step(-1));
    this.buttons.forward.addEventListener("click", () => this.step(1));
    this.buttons.live.addEventListener("click", () => this.live());
    document.addEventListener("keydown", (event) => this.key(event));
    this.setOpen(localStorage.getItem(OPEN_KEY) === "open");
  }

  get open() {
    return this.root.dataset.open === "true";
  }

  setOpen(open) {
    this.root.dataset.open = String(open);
    this.toggle.setAttribute("aria-expanded", String(open));
    localStorage.setItem(OPEN_KEY, open ? "open" : "closed");
    if (open) this.loadTimeline();
    else if (this.traveling) this.live();
    this.describe();
  }

  /** A live frame: which run and book the page watches, and whether the timeline is due a refresh. */
  follow(frame, instrumentId, publisherId) {
    const run = frame.receiver && frame.receiver.run;
    const before = this.watch;
    // a frame whose book read failed names no run: the receiver's status does, else it is the run last seen
    const runId = frame.run_id || (run && run.run_id) || before.runId;
    const now = { runId, instrumentId, publisherId, state: run ? run.state : null };
    this.watch = now;
    if (this.traveling && now.runId !== before.runId) {
      this.live(); // a new run: the point shown belonged to the last one
    } else if (this.traveling && (now.instrumentId !== before.instrumentId || now.publisherId !== before.publisherId)) {
      this.go(this.eventIndex === null ? { at: this.shownTime() ?? 0n } : { at_event: this.eventIndex });
    }
    if (!this.open) return;
    const changed = now.runId !== before.runId || now.instrumentId !== before.instrumentId || now.state !== before.state;
    // an answer may come from before the run's last change (the orchestrator caches timelines a moment)
    const behind = this.timeline !== null && this.timeline.state !== now.state;
    const due = (now.state === "receiving" || behind) && performance.now() - this.loadedAt > REFRESH_MS;
    if (changed || due) this.loadTimeline();
  }

  loadTimeline() {
    if (this.loading) {
      this.stale = true; // what changed meanwhile may not be in the answer on its way: read again after it
      return this.loading;
    }
    this.stale = false;
    this.loadedAt = performance.now();
    const params = new URLSearchParams();
    if (this.watch.instrumentId !== null && this.watch.instrumentId !== undefined) {
      params.set("instrument_id", String(this.watch.instrumentId));
    }
    this.loading = apiExactTimes(`/api/timeline?${params}`)
      .then((timeline) => {
        this.timeline = timeline;
        this.sayOfTimeline(null);
      })
      .catch((error) => {
        this.timeline = null;
        this.sayOfTimeline(error.status === 404 ? "No run to travel yet: start a replay." : `Timeline: ${error.message}`);
      })
      .finally(() => {
        this.loading = null;
        this.chart.render(this.timeline ? this.timeline.history : null);
        this.describe();
        if (this.stale) this.loadTimeline();
      });
    return this.loading;
  }

  /** Show the book at `target`: `{at: BigInt ns}` or `{at_event: number}`; the newest target wins. */
  go(target) {
    this.traveling = true;
    this.wanted = target;
    if ("at_event" in target) this.eventIndex = target.at_event;
    this.describe();
    if (!this.busy) this.drain();
  }

  async drain() {
    this.busy = true;
    while (this.wanted) {
      const target = this.wanted;
      this.wanted = null;
      try {
        const answer = await apiExactTimes(`/api/order-book?${this.query(target)}`);
        if (this.traveling) this.show(answer);
      } catch (error) {
        if (this.traveling && !this.wanted) this.refused(error, target);
      }
    }
    this.busy = false;
  }

  query(target) {
    const params = new URLSearchParams({ depth: String(this.depth), per_publisher: "false" });
    if ("at" in target) params.set("at", String(target.at));
    else params.set("at_event", String(target.at_event));
    // a point chosen on a run's timeline is that run's, even if another run has begun since
    if (this.timeline) params.set("run_id", this.timeline.run_id);
    const instrumentId = this.watch.instrumentId ?? (this.timeline && this.timeline.history ? this.timeline.history.instrument_id : null);
    if (instrumentId !== null && instrumentId !== undefined) params.set("instrument_id", String(instrumentId));
    if (this.watch.publisherId !== null && this.watch.publisherId !== undefined) {
      params.set("publisher_id", String(this.watch.publisherId));
    }
    return params;
  }

  show(answer) {
    const book = answer.books && answer.books.length ? answer.books[0] : null;
    this.shown = { point: answer.point, book };
    this.eventIndex = answer.point.event_index;
    this.say(null);
    this.chart.setCursor(answer.point.ts_recv);
    this.describe();
    this.redraw();
  }

  refused(error, target) {
    if (error.status === 404) {
      // no such book at that point (or no such run): an empty ladder says so better than a stale one
      this.shown = null;
      this.onPoint(null, [], this.historyInstrument(), error.message);
    }
    const progress = error.payload && error.payload.events_received !== undefined
      ? ` (received so far: ${fmtInt(error.payload.events_received)} events, up to ${fmtNsUtc(error.payload.last_ts_recv)})`
      : "";
    this.say(`${"at" in target ? fmtNsUtc(target.at) : `event ${fmtInt(target.at_event)}`}: ${error.message}${progress}`);
    if (this.shown) this.eventIndex = this.shown.point.event_index;
    this.describe();
  }

  /** Draw the point shown again (after the rows shown change). */
  redraw() {
    if (!this.traveling || !this.shown) return;
    const { point, book } = this.shown;
    const message = point.event_index === null ? "Before the first event: the books are empty." : "No book for this instrument at this point.";
    this.onPoint(book, this.tapeAt(point.ts_recv), this.historyInstrument(), book ? null : message);
  }

  historyInstrument() {
    return this.timeline && this.timeline.history ? this.timeline.history.instrument_id : this.watch.instrumentId;
  }

  /** The history's trades in the buckets that end by `ns`, newest last, as the tape shows trades. */
  tapeAt(ns) {
    const history = this.timeline && this.timeline.history;
    if (!history || ns === null || ns === undefined) return [];
    const trades = [];
    for (const bucket of history.buckets) {
      if (bucket.end_ns > ns) break;
      for (const [price, size, side] of bucket.trades) {
        trades.push({ ts_event: bucket.end_ns, instrument_id: history.instrument_id, side, price: fmtRawPrice(price), size });
      }
    }
    return trades.slice(-TAPE_TRADES);
  }

  shownTime() {
    return this.shown ? this.shown.point.ts_recv : null;
  }

  step(delta) {
    const events = this.timeline ? this.timeline.events : 0;
    if (!events) return;
    const from = this.traveling ? this.eventIndex : events - 1;
    const next = from === null ? (delta > 0 ? 0 : null) : from + delta;
    const receiving = this.watch.state === "receiving";
    if (next === null || next < 0 || (!receiving && next > events - 1)) return;
    this.go({ at_event: next });
  }

  live() {
    this.traveling = false;
    this.wanted = null;
    this.shown = null;
    this.eventIndex = null;
    this.say(null);
    this.chart.setCursor(null);
    this.describe();
    this.onLive();
  }

  key(event) {
    if (!this.open || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.target.closest && event.target.closest("select, input, textarea")) return;
    const action = { ArrowLeft: () => this.step(-1), ArrowRight: () => this.step(1), Escape: () => this.live() }[event.key];
    if (!action) return;
    event.preventDefault();
    action();
  }

  /** Say `message` about the point asked for (null: nothing to say). */
  say(message) {
    this.pointNote = message;
    this.showNote();
  }

  /** Say `message` about the timeline (null: nothing to say); a note about the point asked for is kept. */
  sayOfTimeline(message) {
    this.timelineNote = message;
    this.showNote();
  }

  showNote() {
    const message = [this.timelineNote, this.pointNote].filter(Boolean).join(" · ");
    this.note.textContent = message;
    this.note.hidden = !message;
  }

  /** The point shown (or "Live"), the timeline's facts, and which buttons make sense. */
  describe() {
    this.root.dataset.mode = this.traveling ? "travel" : "live";
    // the timeline shown, for whoever reads the page (and its tests)
    this.root.dataset.run = this.timeline ? this.timeline.run_id : "";
    this.root.dataset.events = this.timeline ? String(this.timeline.events) : "";
    const point = this.shown && this.shown.point;
    const timeline = this.timeline;
    if (this.traveling) {
      this.time.textContent = point ? (point.ts_recv === null ? "before the first event" : fmtNsUtc(point.ts_recv)) : "…";
      this.event.textContent = point && point.event_index !== null ? fmtInt(point.event_index) : "—";
    } else {
      this.time.textContent = "Live: following the replay";
      this.event.textContent = "—";
    }
    const facts = [];
    if (point) facts.push(`ts_event ${point.ts_event === null ? "—" : fmtNsUtc(point.ts_event)}`, `${fmtInt(point.records)} records`);
    if (timeline) facts.push(`${fmtInt(timeline.events)} events · ${fmtNsUtc(timeline.start_ns)} → ${fmtNsUtc(timeline.end_ns).slice(11)}`);
    this.facts.textContent = facts.join(" · ");
    this.badge.hidden = !this.traveling;
    this.badge.textContent = point && point.ts_recv !== null ? `History · ${fmtNsUtc(point.ts_recv).slice(11, 29)}` : "History";
    const events = timeline ? timeline.events : 0;
    this.buttons.back.disabled = !events || (this.traveling && (this.eventIndex === null || this.eventIndex <= 0));
    this.buttons.forward.disabled = !events || !this.traveling;
    this.buttons.live.disabled = !this.traveling;
  }
}
