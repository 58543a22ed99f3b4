// The depth chart: cumulative size by price on both sides, drawn on a <canvas> (no library).

import { fitCanvas } from "./canvas.js";
import { fmtCompact, fmtInt, priceDecimals } from "./format.js";

const SCALE = 1e9; // prices arrive as fixed-point integers, 1e-9 units
const COLORS = {
  bid: "#2ebd85",
  bidFill: "rgba(46, 189, 133, 0.22)",
  ask: "#f6465d",
  askFill: "rgba(246, 70, 93, 0.22)",
  grid: "rgba(255, 255, 255, 0.06)",
  axis: "#6b7585",
  text: "#9aa4b2",
  mid: "rgba(230, 236, 245, 0.45)",
  cross: "rgba(246, 180, 70, 0.14)",
};

function niceStep(range, ticks) {
  const raw = range / Math.max(ticks, 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  const nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
  return nice * power;
}

/** [[price (float), cumulative size], ...] from the best level outwards. */
function cumulative(levels) {
  let total = 0;
  return levels.map((level) => {
    total += level.size;
    return [level.price_raw / SCALE, total];
  });
}

export class DepthChart {
  constructor(canvas, readout) {
    this.canvas = canvas;
    this.readout = readout;
    this.book = null;
    this.hoverX = null;
    new ResizeObserver(() => this.draw()).observe(canvas.parentElement);
    canvas.addEventListener("mousemove", (event) => {
      this.hoverX = event.offsetX;
      this.draw();
    });
    canvas.addEventListener("mouseleave", () => {
      this.hoverX = null;
      this.draw();
    });
  }

  render(book) {
    this.book = book;
    this.draw();
  }

  size() {
    return fitCanvas(this.canvas, 200, 160);
  }

  draw() {
    const { ctx, width, height } = this.size();
    ctx.clearRect(0, 0, width, height);
    const book = this.book;
    if (!book || (book.bids.length === 0 && book.asks.length === 0)) {
      ctx.fillStyle = COLORS.axis;
      ctx.font = "12px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.fillText("No depth to draw yet", width / 2, height / 2);
      if (this.readout) this.readout.textContent = "";
      return;
    }
    const pad = { left: 10, right: 58, top: 14, bottom: 24 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const bids = cumulative(book.bids);
    const asks = cumulative(book.asks);
    const prices = [...bids, ...asks].map(([p]) => p);
    let low = Math.min(...prices);
    let high = Math.max(...prices);
    const margin = (high - low || Math.abs(high) * 0.001 || 1) * 0.04;
    low -= margin;
    high += margin;
    const top = Math.max(bids.length ? bids[bids.length - 1][1] : 0, asks.length ? asks[asks.length - 1][1] : 0) * 1.12 || 1;
    const x = (price) => pad.left + ((price - low) / (high - low)) * plotW;
    const y = (size) => pad.top + plotH - (size / top) * plotH;
    const base = y(0);
    const decimals = priceDecimals([...book.bids, ...book.asks].map((l) => l.price));

    // grid and axes
    ctx.font = "11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";
    ctx.lineWidth = 1;
    const sizeStep = niceStep(top, 4);
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    for (let s = 0; s <= top; s += sizeStep) {
      const yy = Math.round(y(s)) + 0.5;
      ctx.strokeStyle = COLORS.grid;
      ctx.beginPath();
      ctx.moveTo(pad.left, yy);
      ctx.lineTo(pad.left + plotW, yy);
      ctx.stroke();
      ctx.fillStyle = COLORS.text;
      ctx.fillText(fmtCompact(s), pad.left + plotW + 6, yy);
    }
    const priceStep = niceStep(high - low, Math.max(2, Math.floor(plotW / 90)));
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (let p = Math.ceil(low / priceStep) * priceStep; p <= high; p += priceStep) {
      const xx = Math.round(x(p)) + 0.5;
      ctx.strokeStyle = COLORS.grid;
      ctx.beginPath();
      ctx.moveTo(xx, pad.top);
      ctx.lineTo(xx, base);
      ctx.stroke();
      ctx.fillStyle = COLORS.text;
      ctx.fillText(p.toFixed(Math.min(decimals, 6)), xx, base + 6);
    }

    // a crossed book: shade where bids stand at or above asks
    if (book.best_bid && book.best_ask && book.best_bid.price_raw >= book.best_ask.price_raw) {
      const from = x(book.best_ask.price_raw / SCALE);
      const to = x(book.best_bid.price_raw / SCALE);
      ctx.fillStyle = COLORS.cross;
      ctx.fillRect(from, pad.top, Math.max(2, to - from), plotH);
      ctx.fillStyle = "#f0b44a";
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      ctx.fillText(book.locked ? "LOCKED" : "CROSSED", (from + to) / 2, pad.top + 2);
    }

    // bids step leftwards from the best bid, asks rightwards from the best ask
    const area = (points, edge, stroke, fill) => {
      if (!points.length) return;
      ctx.beginPath();
      ctx.moveTo(x(points[0][0]), base);
      let previous = null;
      for (const [price, total] of points) {
        if (previous !== null) ctx.lineTo(x(price), y(previous));
        ctx.lineTo(x(price), y(total));
        previous = total;
      }
      ctx.lineTo(edge, y(previous));
      ctx.lineTo(edge, base);
      ctx.closePath();
      ctx.fillStyle = fill;
      ctx.fill();
      ctx.strokeStyle = stroke;
      ctx.lineWidth = 1.5;
      ctx.stroke();
    };
    area(bids, pad.left, COLORS.bid, COLORS.bidFill);
    area(asks, pad.left + plotW, COLORS.ask, COLORS.askFill);

    // mid
    if (book.mid !== null) {
      const xx = Math.round(x(Number(book.mid))) + 0.5;
      ctx.strokeStyle = COLORS.mid;
      ctx.setLineDash([3, 3]);
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(xx, pad.top + 14);
      ctx.lineTo(xx, base);
      ctx.stroke();
      ctx.setLineDash([]);
    }

    // baseline
    ctx.strokeStyle = COLORS.axis;
    ctx.beginPath();
    ctx.moveTo(pad.left, Math.round(base) + 0.5);
    ctx.lineTo(pad.left + plotW, Math.round(base) + 0.5);
    ctx.stroke();

    this.drawHover(ctx, { x, low, high, pad, plotW, plotH, bids, asks, decimals });
  }

  drawHover(ctx, { x, low, high, pad, plotW, plotH, bids, asks, decimals }) {
    if (this.hoverX === null || this.hoverX < pad.left || this.hoverX > pad.left + plotW) {
      if (this.readout) this.readout.textContent = "";
      return;
    }
    // Snap to the price grid of the book's decimals, then read the depth on each side of that price.
    const unit = 10 ** decimals;
    const price = Math.round((low + ((this.hoverX - pad.left) / plotW) * (high - low)) * unit) / unit;
    const depthAt = (levels, through) => levels.filter(([p]) => through(p)).reduce((_, [, total]) => total, 0);
    const bidDepth = depthAt(bids, (p) => p >= price - 0.5 / unit);
    const askDepth = depthAt(asks, (p) => p <= price + 0.5 / unit);
    const xx = Math.round(x(price)) + 0.5;
    ctx.strokeStyle = "rgba(255, 255, 255, 0.35)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(xx, pad.top);
    ctx.lineTo(xx, pad.top + plotH);
    ctx.stroke();
    if (this.readout) {
      this.readout.textContent = `${price.toFixed(decimals)} · bids at or above ${fmtInt(bidDepth)} · asks at or below ${fmtInt(askDepth)}`;
    }
  }
}
