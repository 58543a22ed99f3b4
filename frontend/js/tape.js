// The tape: the most recent trades, newest first; new prints flash in.

import { el, fmtClockNs, fmtInt, fmtPrice, priceDecimals } from "./format.js";

const SIDES = { B: ["Buy", "bid"], A: ["Sell", "ask"], N: ["—", "none"] };

export class Tape {
  constructor(root) {
    this.body = root.querySelector(".tape-body");
    this.empty = root.querySelector(".tape-empty");
    this.count = root.querySelector("#tape-count");
    this.seen = new Set();
    this.primed = false;
  }

  /** `trades`: newest last, as the receiver gives them; `instrumentId`: keep only this one's (null: all). */
  render(trades, instrumentId) {
    const shown = (trades || []).filter((t) => instrumentId === null || t.instrument_id === instrumentId).reverse();
    this.empty.hidden = shown.length > 0;
    this.count.textContent = shown.length ? `${shown.length} latest` : "";
    const decimals = priceDecimals(shown.map((t) => t.price));
    const keys = new Set();
    const rows = shown.map((trade) => {
      const identity = `${trade.ts_event}|${trade.instrument_id}|${trade.price}|${trade.size}|${trade.side}`;
      const [label, side] = SIDES[trade.side] || SIDES.N;
      const row = el("div", `tape-row ${side}`);
      row.append(
        el("span", "time num", fmtClockNs(trade.ts_event)),
        el("span", "side", label),
        el("span", "price num", fmtPrice(trade.price, decimals)),
        el("span", "size num", fmtInt(trade.size)),
      );
      keys.add(identity);
      if (this.primed && !this.seen.has(identity)) row.classList.add("fresh");
      return row;
    });
    this.seen = keys;
    this.primed = true;
    this.body.replaceChildren(...rows);
  }
}
