// Signs the page out after a time without any keyboard, pointer or touch activity, in any of the
// browser's tabs of the page. The server enforces the same limit on its side, counted from the
// last request: so activity that sends none (a long comment being typed) calls `onActive` at most
// once a minute, for the page to tell the server (a keepalive), and each tab tells the others of
// its activity through localStorage (a time, nothing else), so that a tab left alone does not sign
// out the session another tab is using.
const activity = ['pointerdown', 'pointermove', 'keydown', 'wheel', 'touchstart', 'scroll'];
const sharedKey = 'tsunagu.activity';
const keepAliveEvery = 60 * 1000;
const shareEvery = 5 * 1000;

export class IdleTimer {
  constructor(seconds, onIdle, onActive = () => {}) {
    this.milliseconds = seconds * 1000;
    this.onIdle = onIdle;
    this.onActive = onActive;
    this.timer = null;
    this.lastKeepAlive = Date.now();
    this.lastShared = 0;
    this.active = this.active.bind(this);
    this.heard = this.heard.bind(this);
  }

  start() {
    for (const name of activity) window.addEventListener(name, this.active, { passive: true, capture: true });
    window.addEventListener('storage', this.heard);
    this.reset();
  }

  // Activity in this tab.
  active() {
    const now = Date.now();
    this.reset();
    if (now - this.lastShared >= shareEvery) {
      this.lastShared = now;
      try {
        localStorage.setItem(sharedKey, String(now));
      } catch {
        // Storage refused (a private window): each tab then keeps its own time.
      }
    }
    if (now - this.lastKeepAlive >= keepAliveEvery) {
      this.lastKeepAlive = now;
      this.onActive();
    }
  }

  // Activity in another tab of the page (it keeps the server's session alive itself).
  heard(event) {
    if (event.key === sharedKey) {
      this.lastKeepAlive = Date.now();
      this.reset();
    }
  }

  reset() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.stop();
      this.onIdle();
    }, this.milliseconds);
  }

  stop() {
    clearTimeout(this.timer);
    for (const name of activity) window.removeEventListener(name, this.active, { capture: true });
    window.removeEventListener('storage', this.heard);
  }
}
