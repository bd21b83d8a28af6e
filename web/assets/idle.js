// Signs the page out after a time without any keyboard, pointer or touch activity. The server
// enforces the same limit on its side; this only makes the page leave in time on its own.
const activity = ['pointerdown', 'pointermove', 'keydown', 'wheel', 'touchstart', 'scroll'];

export class IdleTimer {
  constructor(seconds, onIdle) {
    this.milliseconds = seconds * 1000;
    this.onIdle = onIdle;
    this.timer = null;
    this.reset = this.reset.bind(this);
  }

  start() {
    for (const name of activity) window.addEventListener(name, this.reset, { passive: true, capture: true });
    this.reset();
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
    for (const name of activity) window.removeEventListener(name, this.reset, { capture: true });
  }
}
