// The ladder: best bids and asks side by side with size, order count and a size bar; BBO, spread, mid and
// the crossed / locked / maybe-bad badges. Rows are built once and updated in place.

import { el, fmtClockNs, fmtInt, fmtPrice, priceDecimals } from "./format.js";

const FLASH_MS = 350;

export class Ladder {
  constructor(root) {
    this.root = root;
    this.body = root.querySelector(".ladder-body");
    this.empty = root.querySelector(".ladder-empty");
    this.rows = [];
    this.previous = { bid: new Map(), ask: new Map() };
    this.bbo = {
      bidPrice: root.querySelector("#bbo-bid-price"),
      bidSize: root.querySelector("#bbo-bid-size"),
      askPrice: root.querySelector("#bbo-ask-price"),
      askSize: root.querySelector("#bbo-ask-size"),
      spread: root.querySelector("#bbo-spread"),
      mid: root.querySelector("#bbo-mid"),
      imbalance: root.querySelector("#bbo-imbalance"),
      imbalanceBar: root.querySelector("#bbo-imbalance-bar"),
    };
    this.badges = {
      crossed: root.querySelector("#badge-crossed"),
      locked: root.querySelector("#badge-locked"),
      maybeBad: root.querySelector("#badge-maybe-bad"),
    };
    this.meta = root.querySelector("#book-meta");
  }

  ensureRows(count) {
    while (this.rows.length < count) {
      const level = this.rows.length;
      const row = el("div", "ladder-row");
      row.dataset.level = String(level);
      const sides = {};
      for (const side of ["bid", "ask"]) {
        const half = el("div", `side ${side}`);
        const bar = el("div", "bar");
        const cells = { count: el("span", "count num"), size: el("span", "size num"), price: el("span", "price num") };
        half.append(bar);
        if (side === "bid") half.append(cells.count, cells.size, cells.price);
        else half.append(cells.price, cells.size, cells.count);
        row.append(half);
        sides[side] = { half, bar, ...cells };
      }
      this.body.append(row);
      this.rows.push({ row, ...sides });
    }
    this.rows.forEach((r, i) => (r.row.hidden = i >= count));
  }

  /** Show `message` instead of a book (no run yet, receiver down, ...). */
  showEmpty(message) {
    this.empty.textContent = message;
    this.empty.hidden = false;
    this.root.dataset.state = "empty";
    for (const badge of Object.values(this.badges)) badge.hidden = true;
    for (const key of ["bidPrice", "bidSize", "askPrice", "askSize", "spread", "mid", "imbalance"]) {
      this.bbo[key].textContent = "—";
    }
    this.bbo.imbalanceBar.style.width = "0";
    this.meta.textContent = "";
    for (const r of this.rows) {
      for (const side of ["bid", "ask"]) {
        r[side].count.textContent = r[side].size.textContent = r[side].price.textContent = "";
        r[side].bar.style.width = "0";
        r[side].half.classList.remove("through");
      }
    }
    this.previous = { bid: new Map(), ask: new Map() };
  }

  render(book, rows) {
    this.ensureRows(rows);
    this.empty.hidden = true;
    this.root.dataset.state = "book";
    const bids = book.bids.slice(0, rows);
    const asks = book.asks.slice(0, rows);
    const decimals = priceDecimals([...bids, ...asks].map((level) => level.price));
    const biggest = Math.max(1, ...bids.map((l) => l.size), ...asks.map((l) => l.size));
    const bestBid = book.best_bid ? book.best_bid.price_raw : null;
    const bestAsk = book.best_ask ? book.best_ask.price_raw : null;
    const seen = { bid: new Map(), ask: new Map() };

    this.rows.slice(0, rows).forEach((r, i) => {
      for (const [side, levels] of [["bid", bids], ["ask", asks]]) {
        const level = levels[i];
        const cells = r[side];
        if (!level) {
          cells.count.textContent = cells.size.textContent = cells.price.textContent = "";
          cells.bar.style.width = "0";
          cells.half.classList.remove("through");
          continue;
        }
        cells.price.textContent = fmtPrice(level.price, decimals);
        cells.size.textContent = fmtInt(level.size);
        // A top-of-book venue's level has no order count (0): show a dash rather than a false zero.
        cells.count.textContent = level.count ? fmtInt(level.count) : "—";
        cells.bar.style.width = `${((100 * level.size) / biggest).toFixed(1)}%`;
        const through =
          side === "bid" ? bestAsk !== null && level.price_raw >= bestAsk : bestBid !== null && level.price_raw <= bestBid;
        cells.half.classList.toggle("through", through);
        cells.price.title = through ? `at or through the best ${side === "bid" ? "ask" : "bid"}: the book is crossed here` : "";
        const before = this.previous[side].get(level.price_raw);
        if (before !== undefined && before !== level.size) flash(cells.size, level.size > before ? "up" : "down");
        else if (before === undefined && this.previous[side].size > 0) flash(cells.price, "new");
        seen[side].set(level.price_raw, level.size);
      }
    });
    this.previous = seen;

    const bid = book.best_bid;
    const ask = book.best_ask;
    this.bbo.bidPrice.textContent = bid ? fmtPrice(bid.price, decimals) : "—";
    this.bbo.bidSize.textContent = bid ? fmtInt(bid.size) : "—";
    this.bbo.askPrice.textContent = ask ? fmtPrice(ask.price, decimals) : "—";
    this.bbo.askSize.textContent = ask ? fmtInt(ask.size) : "—";
    this.bbo.spread.textContent = book.spread === null ? "—" : fmtPrice(book.spread, decimals);
    this.bbo.spread.classList.toggle("negative", book.spread !== null && book.spread.startsWith("-"));
    this.bbo.mid.textContent = book.mid === null ? "—" : fmtPrice(book.mid, decimals + 1);
    if (book.imbalance === null || book.imbalance === undefined) {
      this.bbo.imbalance.textContent = "—";
      this.bbo.imbalanceBar.style.width = "0";
    } else {
      const pct = Math.round(book.imbalance * 100);
      this.bbo.imbalance.textContent = `${pct > 0 ? "+" : ""}${pct}%`;
      this.bbo.imbalanceBar.style.width = `${Math.abs(pct) / 2}%`;
      this.bbo.imbalanceBar.style.left = pct >= 0 ? "50%" : `${50 - Math.abs(pct) / 2}%`;
      this.bbo.imbalanceBar.className = pct >= 0 ? "imbalance-bar bid" : "imbalance-bar ask";
    }

    this.badges.crossed.hidden = !book.crossed;
    this.badges.crossed.textContent = book.crossed_since_ns
      ? `Crossed since ${fmtClockNs(book.crossed_since_ns)}`
      : "Crossed";
    this.badges.locked.hidden = !book.locked;
    this.badges.maybeBad.hidden = !book.maybe_bad;

    const who = book.publisher_id === null ? "consolidated" : `publisher ${book.publisher_id}`;
    this.meta.textContent = `${fmtInt(book.orders)} orders · ${fmtInt(book.bid_levels)} bid / ${fmtInt(
      book.ask_levels,
    )} ask levels · ${who}`;
  }
}

function flash(node, kind) {
  if (!node.animate) return;
  const color = { up: "rgba(46, 189, 133, 0.3)", down: "rgba(246, 70, 93, 0.3)", new: "rgba(76, 141, 255, 0.18)" }[kind];
  node.animate([{ backgroundColor: color }, { backgroundColor: "transparent" }], { duration: FLASH_MS, easing: "ease-out" });
}
