// Number, price and time formatting: the one place where values become text for people.

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });

/** 1234567 -> "1,234,567"; null/undefined -> "—". */
export function fmtInt(value) {
  return value === null || value === undefined || Number.isNaN(value) ? "—" : integer.format(value);
}

/** 1234567 -> "1.2M" (for rates and axes). */
export function fmtCompact(value) {
  return value === null || value === undefined ? "—" : compact.format(value);
}

/** Digits after the decimal point of a decimal price string: "65.4" -> 1. */
export function decimalsOf(price) {
  const dot = price.indexOf(".");
  return dot < 0 ? 0 : price.length - dot - 1;
}

/** The decimals to show for a set of decimal price strings: enough for all of them, at least 2. */
export function priceDecimals(prices, minimum = 2) {
  let decimals = minimum;
  for (const price of prices) if (price) decimals = Math.max(decimals, decimalsOf(price));
  return Math.min(decimals, 9);
}

/** A decimal price string padded to `decimals` places, exactly (no float rounding): "65.4", 2 -> "65.40". */
export function fmtPrice(price, decimals = 2) {
  if (price === null || price === undefined) return "—";
  const negative = price.startsWith("-");
  const body = negative ? price.slice(1) : price;
  const [whole, fraction = ""] = body.split(".");
  const padded = decimals > 0 ? `${whole}.${fraction.padEnd(decimals, "0")}` : whole;
  return (negative ? "-" : "") + padded;
}

/** Nanoseconds since the epoch -> "19:30:00.125" (UTC). */
export function fmtClockNs(ns) {
  if (ns === null || ns === undefined) return "—";
  return new Date(Number(ns) / 1e6).toISOString().slice(11, 23);
}

const NS_PER_SECOND = 1_000_000_000n;
const PRICE_SCALE = 1_000_000_000n; // prices are fixed-point integers, 1e-9 units

/** Nanoseconds since the epoch (BigInt, or integer text) -> "2025-09-24 21:47:19.747164115 UTC", exactly. */
export function fmtNsUtc(ns) {
  if (ns === null || ns === undefined) return "—";
  const value = BigInt(ns);
  const iso = new Date(Number(value / NS_PER_SECOND) * 1000).toISOString();
  const fraction = String(value % NS_PER_SECOND).padStart(9, "0");
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${fraction} UTC`;
}

/** A fixed-point price (1e-9 units) -> its exact decimal text: 65400000000 -> "65.4". */
export function fmtRawPrice(raw) {
  const value = BigInt(raw);
  const magnitude = value < 0n ? -value : value;
  const fraction = String(magnitude % PRICE_SCALE).padStart(9, "0").replace(/0+$/, "");
  return `${value < 0n ? "-" : ""}${magnitude / PRICE_SCALE}${fraction ? `.${fraction}` : ""}`;
}

/** Nanoseconds since the epoch -> "2025-09-24 19:30:00 UTC". */
export function fmtDateTimeNs(ns) {
  if (ns === null || ns === undefined) return "—";
  const iso = new Date(Number(ns) / 1e6).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

/** Seconds -> "2:30:05" or "4:05.3" for short spans. */
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  const whole = Math.floor(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = whole % 60;
  const two = (n) => String(n).padStart(2, "0");
  if (h > 0) return `${h}:${two(m)}:${two(s)}`;
  return `${m}:${two(s)}.${Math.floor((seconds - whole) * 10)}`;
}

/** Bytes -> "2.1 MB". */
export function fmtBytes(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  const units = ["B", "kB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** Shorthand to create an element with a class and text. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
