// The liquidity history: a heatmap of resting size by price (y) over market time (x) from GET /api/timeline,
// the best bid and ask as lines, trades as dots sized by volume, crossed intervals marked; a click or a drag
// asks to travel to the market time under the pointer.

import { fitCanvas } from "./canvas.js";
import { fmtCompact, fmtInt, fmtNsUtc } from "./format.js";

const SCALE = 1e9; // prices arrive as fixed-point integers, 1e-9 units
const PAD = { left: 8, right: 70, top: 10, bottom: 22 };
const OUTLIER_SHARE = 0.01; // prices and sizes beyond these quantiles do not stretch the axes or the colours
const MAX_DOT_RADIUS = 9;
const CONTEXT_TICKS = 8; // price steps shown beyond the best prices' range, at least
const COLORS = {
  background: "#0b0f16",
  bid: "#2ebd85",
  ask: "#f6465d",
  outline: "rgba(0, 0, 0, 0.75)",
  crossed: "rgba(240, 180, 74, 0.16)",
  crossedMark: "#f0b44a",
  cursor: "#ffffff",
  hover: "rgba(255, 255, 255, 0.35)",
  grid: "rgba(255, 255, 255, 0.05)",
  text: "#9aa4b2",
  trade: { B: "rgba(120, 255, 200, 0.9)", A: "rgba(255, 130, 150, 0.9)", N: "rgba(220, 226, 235, 0.85)" },
};
// Size from none (dark blue) to the largest (pale yellow), on a log scale.
const HEAT = [
  [0, [14, 30, 62]],
  [0.35, [30, 92, 168]],
  [0.6, [38, 170, 160]],
  [0.82, [232, 200, 70]],
  [1, [255, 246, 196]],
];

function heat(fraction) {
  const f = Math.min(1, Math.max(0, fraction));
  let i = 1;
  while (i < HEAT.length - 1 && HEAT[i][0] < f) i += 1;
  const [f0, c0] = HEAT[i - 1];
  const [f1, c1] = HEAT[i];
  const t = (f - f0) / (f1 - f0);
  return `rgb(${c0.map((v, k) => Math.round(v + (c1[k] - v) * t)).join(",")})`;
}

function quantile(sorted, q) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))] : null;
}

function niceStep(range, ticks) {
  const raw = range / Math.max(ticks, 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  return (fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10) * power;
}

/** The drawable form of a timeline's history: offsets from its start in ns (numbers), prices as floats. */
function prepare(history) {
  const buckets = history && history.buckets.length ? history.buckets : null;
  if (!buckets) return null;
  const start = BigInt(buckets[0].start_ns);
  const end = BigInt(buckets[buckets.length - 1].end_ns);
  const prices = [];
  const bests = [];
  const sizes = [];
  let biggestTrade = 1;
  const columns = buckets.map((bucket) => {
    const levels = [...bucket.bids, ...bucket.asks];
    for (const [price, size] of levels) {
      prices.push(price / SCALE);
      sizes.push(size);
    }
    for (const best of [bucket.best_bid, bucket.best_ask]) if (best !== null) bests.push(best / SCALE);
    for (const [, size] of bucket.trades) biggestTrade = Math.max(biggestTrade, size);
    return {
      from: Number(BigInt(bucket.start_ns) - start),
      to: Number(BigInt(bucket.end_ns) - start),
      bid: bucket.best_bid === null ? null : bucket.best_bid / SCALE,
      ask: bucket.best_ask === null ? null : bucket.best_ask / SCALE,
      crossed: bucket.crossed,
      levels,
      trades: bucket.trades,
    };
  });
  if (!prices.length && !bests.length) return null;
  prices.sort((a, b) => a - b);
  bests.sort((a, b) => a - b);
  sizes.sort((a, b) => a - b);
  // The price grid's step: the smallest gap between distinct prices, for the height of a level's cell.
  let tick = Infinity;
  for (let i = 1; i < prices.length; i += 1) if (prices[i] > prices[i - 1]) tick = Math.min(tick, prices[i] - prices[i - 1]);
  if (!Number.isFinite(tick)) tick = (prices[prices.length - 1] || bests[bests.length - 1]) * 1e-4 || 1;
  // Centred on where the best prices spent the run, with room for the liquidity around them; far levels and
  // brief excursions of the best prices do not flatten the rest.
  const around = bests.length ? bests : prices;
  let low = quantile(around, OUTLIER_SHARE);
  let high = quantile(around, 1 - OUTLIER_SHARE);
  const margin = Math.max((high - low) * 0.5, CONTEXT_TICKS * tick);
  low -= margin;
  high += margin;
  return {
    start,
    span: Math.max(1, Number(end - start)),
    columns,
    low,
    high,
    tick,
    biggestSize: Math.max(1, quantile(sizes, 1 - OUTLIER_SHARE) || 1),
    biggestTrade,
  };
}

export class HistoryChart {
  /** `onTravel(ns: BigInt)`: the user clicked or dragged to this market time. */
  constructor(canvas, readout, onTravel) {
    this.canvas = canvas;
    this.readout = readout;
    this.onTravel = onTravel;
    this.data = null;
    this.cursorNs = null;
    this.hoverX = null;
    this.dragging = false;
    new ResizeObserver(() => this.draw()).observe(canvas.parentElement);
    canvas.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 || !this.data) return;
      this.dragging = true;
      canvas.setPointerCapture(event.pointerId);
      this.travelTo(event.offsetX);
    });
    canvas.addEventListener("pointermove", (event) => {
      this.hoverX = event.offsetX;
      if (this.dragging) this.travelTo(event.offsetX);
      else this.draw();
    });
    const release = () => (this.dragging = false);
    canvas.addEventListener("pointerup", release);
    canvas.addEventListener("pointercancel", release);
    canvas.addEventListener("pointerleave", () => {
      this.hoverX = null;
      this.draw();
    });
  }

  /** Draw a timeline's history (null: none yet). */
  render(history) {
    this.data = prepare(history);
    this.draw();
  }

  /** Mark the market time the book shown stands at (null: following the replay). */
  setCursor(ns) {
    this.cursorNs = ns === null || ns === undefined ? null : BigInt(ns);
    this.draw();
  }

  plot() {
    const { width, height } = this.box;
    return { width: width - PAD.left - PAD.right, height: height - PAD.top - PAD.bottom };
  }

  /** The market time (BigInt ns) at pixel `px`, clamped to the history. */
  timeAt(px) {
    const fraction = Math.min(1, Math.max(0, (px - PAD.left) / this.plot().width));
    return this.data.start + BigInt(Math.round(fraction * this.data.span));
  }

  travelTo(px) {
    this.hoverX = px;
    this.onTravel(this.timeAt(px));
    this.draw();
  }

  size() {
    const { ctx, width, height } = fitCanvas(this.canvas, 200, 120);
    this.box = { width, height };
    return ctx;
  }

  /** The scene (heat, best prices, trades, axes) is drawn once per history and size; a move of the cursor or
   * the pointer only copies it and draws the marks on top. */
  draw() {
    const ctx = this.size();
    const { width, height } = this.box;
    const key = `${this.canvas.width}x${this.canvas.height}`;
    if (!this.scene || this.scene.data !== this.data || this.scene.key !== key) {
      const layer = document.createElement("canvas");
      layer.width = this.canvas.width;
      layer.height = this.canvas.height;
      const layerCtx = layer.getContext("2d");
      layerCtx.setTransform(ctx.getTransform());
      this.drawScene(layerCtx, width, height);
      this.scene = { data: this.data, key, layer };
    }
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(this.scene.layer, 0, 0);
    ctx.restore();
    if (!this.data) {
      this.readout.textContent = "";
      return;
    }
    const plot = this.plot();
    this.drawMarks(ctx, (offset) => PAD.left + (offset / this.data.span) * plot.width, plot);
  }

  drawScene(ctx, width, height) {
    ctx.fillStyle = COLORS.background;
    ctx.fillRect(0, 0, width, height);
    const data = this.data;
    if (!data) {
      ctx.fillStyle = COLORS.text;
      ctx.font = "12px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText("No history yet: it fills in as a replay is received", width / 2, height / 2);
      return;
    }
    const plot = this.plot();
    const x = (offset) => PAD.left + (offset / data.span) * plot.width;
    const y = (price) => PAD.top + ((data.high - price) / (data.high - data.low)) * plot.height;
    const cell = Math.max(1, (data.tick / (data.high - data.low)) * plot.height);
    const scale = Math.log1p(data.biggestSize);

    ctx.save();
    ctx.beginPath();
    ctx.rect(PAD.left, PAD.top, plot.width, plot.height);
    ctx.clip();
    for (const column of data.columns) {
      const left = x(column.from);
      const w = Math.max(1, x(column.to) - left + 0.5);
      if (column.crossed) {
        ctx.fillStyle = COLORS.crossed;
        ctx.fillRect(left, PAD.top, w, plot.height);
      }
      for (const [price, size] of column.levels) {
        ctx.fillStyle = heat(Math.log1p(size) / scale);
        ctx.fillRect(left, y(price / SCALE) - cell / 2, w, cell);
      }
    }
    this.drawBest(ctx, x, y, "bid");
    this.drawBest(ctx, x, y, "ask");
    this.drawTrades(ctx, x, y);
    ctx.restore();

    // crossed intervals also as a strip under the plot, readable where the heat is bright
    ctx.fillStyle = COLORS.crossedMark;
    for (const column of data.columns) {
      if (column.crossed) ctx.fillRect(x(column.from), PAD.top + plot.height + 1, Math.max(1, x(column.to) - x(column.from)), 3);
    }
    this.drawAxes(ctx, x, y, plot);
  }

  drawBest(ctx, x, y, side) {
    const color = side === "bid" ? COLORS.bid : COLORS.ask;
    for (const [stroke, lineWidth] of [[COLORS.outline, 3.5], [color, 1.6]]) {
      ctx.strokeStyle = stroke;
      ctx.lineWidth = lineWidth;
      ctx.beginPath();
      let drawing = false;
      for (const column of this.data.columns) {
        const price = column[side];
        if (price === null) {
          drawing = false;
          continue;
        }
        if (drawing) ctx.lineTo(x(column.from), y(price));
        else ctx.moveTo(x(column.from), y(price));
        ctx.lineTo(x(column.to), y(price));
        drawing = true;
      }
      ctx.stroke();
    }
  }

  drawTrades(ctx, x, y) {
    const largest = Math.sqrt(this.data.biggestTrade);
    ctx.lineWidth = 1;
    ctx.strokeStyle = COLORS.outline;
    for (const column of this.data.columns) {
      const middle = x((column.from + column.to) / 2);
      for (const [price, size, side] of column.trades) {
        ctx.fillStyle = COLORS.trade[side] || COLORS.trade.N;
        ctx.beginPath();
        ctx.arc(middle, y(price / SCALE), Math.max(1.5, (MAX_DOT_RADIUS * Math.sqrt(size)) / largest), 0, 2 * Math.PI);
        ctx.fill();
        ctx.stroke();
      }
    }
  }

  drawAxes(ctx, x, y, plot) {
    const data = this.data;
    ctx.font = "11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";
    ctx.fillStyle = COLORS.text;
    ctx.lineWidth = 1;
    const priceStep = niceStep(data.high - data.low, Math.max(2, Math.floor(plot.height / 36)));
    const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(priceStep))));
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    for (let p = Math.ceil(data.low / priceStep) * priceStep; p <= data.high; p += priceStep) {
      const yy = Math.round(y(p)) + 0.5;
      ctx.strokeStyle = COLORS.grid;
      ctx.beginPath();
      ctx.moveTo(PAD.left, yy);
      ctx.lineTo(PAD.left + plot.width, yy);
      ctx.stroke();
      ctx.fillText(p.toFixed(decimals), PAD.left + plot.width + 6, yy);
    }
    // time ticks in whole seconds (or finer) of market time, labelled as UTC clock times
    const steps = [1e6, 1e7, 1e8, 1e9, 5e9, 1e10, 3e10, 6e10, 3e11, 6e11, 1.8e12, 3.6e12];
    const wanted = data.span / Math.max(2, Math.floor(plot.width / 110));
    const step = BigInt(steps.find((s) => s >= wanted) || steps[steps.length - 1]);
    const startNs = data.start;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (let t = ((startNs + step - 1n) / step) * step; t <= startNs + BigInt(data.span); t += step) {
      const xx = Math.round(x(Number(t - startNs))) + 0.5;
      ctx.strokeStyle = COLORS.grid;
      ctx.beginPath();
      ctx.moveTo(xx, PAD.top);
      ctx.lineTo(xx, PAD.top + plot.height);
      ctx.stroke();
      const clock = fmtNsUtc(t).slice(11, step < 1_000_000_000n ? 23 : 19);
      ctx.fillText(clock, xx, PAD.top + plot.height + 6);
    }
  }

  drawMarks(ctx, x, plot) {
    const data = this.data;
    if (this.cursorNs !== null) {
      const offset = Number(this.cursorNs - data.start);
      const xx = Math.round(x(Math.min(data.span, Math.max(0, offset)))) + 0.5;
      ctx.strokeStyle = COLORS.cursor;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.moveTo(xx, PAD.top);
      ctx.lineTo(xx, PAD.top + plot.height);
      ctx.stroke();
      ctx.fillStyle = COLORS.cursor;
      ctx.beginPath();
      ctx.moveTo(xx - 5, PAD.top);
      ctx.lineTo(xx + 5, PAD.top);
      ctx.lineTo(xx, PAD.top + 6);
      ctx.fill();
    }
    if (this.hoverX === null || this.hoverX < PAD.left || this.hoverX > PAD.left + plot.width) {
      this.readout.textContent = `${fmtInt(data.columns.length)} buckets · heat up to ${fmtCompact(data.biggestSize)} resting`;
      return;
    }
    ctx.strokeStyle = COLORS.hover;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(this.hoverX + 0.5, PAD.top);
    ctx.lineTo(this.hoverX + 0.5, PAD.top + plot.height);
    ctx.stroke();
    this.readout.textContent = `${fmtNsUtc(this.timeAt(this.hoverX))} · click or drag to travel`;
  }
}
