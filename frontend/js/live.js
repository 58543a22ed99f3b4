// The live feed: one WebSocket to the orchestrator, reconnecting; frames are coalesced to screen pace
// (the newest frame wins and is drawn at the next animation frame).

import { askForToken, currentToken } from "./token.js";

const LIVE_SUBPROTOCOL = "obm.live";
const POLICY_VIOLATION = 1008; // the server's close code for a missing or wrong token

export class LiveFeed {
  /**
   * @param {(frame: object) => void} render  draws one frame (called at most once per animation frame)
   * @param {(state: {connected: boolean, detail: string|null}) => void} onConnection
   */
  constructor(render, onConnection) {
    this.render = render;
    this.onConnection = onConnection;
    // What this page chose; a field it leaves out (the depth, unless set) takes the server's default, which
    // every frame's `subscription` then carries.
    this.subscription = { instrument_id: null, publisher_id: null };
    this.socket = null;
    this.latest = null;
    this.scheduled = false;
    this.retryMs = 500;
    this.framesReceived = 0;
    this.framesDrawn = 0;
    this.onNotice = () => {};
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/api/live`;
  }

  /** The subprotocols offered: the feed's own, and the token (a browser cannot set a WebSocket's headers). */
  subprotocols(token) {
    return token ? [LIVE_SUBPROTOCOL, `bearer.${token}`] : [LIVE_SUBPROTOCOL];
  }

  connect() {
    const token = currentToken();
    let socket;
    try {
      socket = new WebSocket(this.url(), this.subprotocols(token));
    } catch (error) {
      // A token with characters a subprotocol cannot carry.
      this.onConnection({ connected: false, detail: `live feed not opened: ${error.message}` });
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.onConnection({ connected: true, detail: null });
      this.sendSubscription();
    });
    socket.addEventListener("message", (event) => {
      this.retryMs = 500; // reset on data, not on open: a refused token is closed right after the open
      this.receive(event.data);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      if (event.code === POLICY_VIOLATION && (currentToken() !== token || askForToken(event.reason))) {
        this.connect();
        return;
      }
      const seconds = (this.retryMs / 1000).toFixed(1);
      const why = event.code === 1006 ? "connection lost" : `closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`;
      this.onConnection({ connected: false, detail: `live feed ${why}; reconnecting in ${seconds} s` });
      setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 5000);
    });
  }

  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.type === "frame") {
      this.framesReceived += 1;
      this.latest = message;
      if (!this.scheduled) {
        this.scheduled = true;
        requestAnimationFrame(() => this.draw());
      }
    } else {
      this.onNotice(message);
    }
  }

  draw() {
    this.scheduled = false;
    const frame = this.latest;
    if (!frame) return;
    this.latest = null;
    this.framesDrawn += 1;
    this.render(frame);
  }

  /** Watch another book: `{instrument_id, publisher_id, depth}` (null ids: first instrument, consolidated). */
  subscribe(change) {
    this.subscription = { ...this.subscription, ...change };
    if (this.subscription.instrument_id === null) this.subscription.publisher_id = null;
    this.sendSubscription();
  }

  sendSubscription() {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ type: "subscribe", ...this.subscription }));
    }
  }

  /** Whether a frame shows the book this page asked for (frames in flight may not yet). */
  matches(frame) {
    const got = frame.subscription || {};
    return Object.entries(this.subscription).every(([field, wanted]) => got[field] === wanted);
  }
}
