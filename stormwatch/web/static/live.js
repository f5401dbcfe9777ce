// stormwatch's live page: server-sent events (`events`), else polling `feed.json`; says when the server is lost.
// No inline script anywhere (the Content-Security-Policy forbids it): this file is the page's only script.
"use strict";
(function () {
  const live = document.getElementById("live");
  const banner = document.getElementById("connection");
  const mode = document.getElementById("mode");
  const POLL_MS = 3000;     // polling: a new view within about 3 s
  const SILENCE_MS = 12000; // the server sends something at least every 5 s: this long without a word, it is lost
  let version = null;
  let lastHeard = Date.now();
  let lost = false;
  let source = null;
  let pollTimer = null;

  function clock(date) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function show(feed) {
    lastHeard = Date.now();
    if (lost) {
      lost = false;
      banner.hidden = true;
      banner.textContent = "";
    }
    if (!feed || feed.version === version) return;
    version = feed.version;
    // The fragment was rendered (and escaped) by the server's template; parsed inert, then swapped in whole.
    const parsed = new DOMParser().parseFromString(`<main>${feed.html}</main>`, "text/html");
    live.replaceChildren(...parsed.body.firstElementChild.childNodes);
  }

  function lose(why) {
    if (!lost) {
      lost = true;
      banner.hidden = false;
    }
    banner.className = "connection";
    banner.textContent = `Lost the server at ${clock(new Date(lastHeard))} (${why}): these figures may be out of date. ` +
      "Trying again…";
  }

  async function poll() {
    try {
      const response = await fetch("feed.json", { cache: "no-store", credentials: "omit" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      show(await response.json());
    } catch (error) {
      lose(error.message || "no answer");
    }
  }

  function startPolling(why) {
    if (pollTimer !== null) return;
    mode.textContent = `updates every ${POLL_MS / 1000} s (${why})`;
    poll();
    pollTimer = setInterval(poll, POLL_MS);
  }

  function startEvents() {
    source = new EventSource("events");
    source.addEventListener("view", (event) => show(JSON.parse(event.data)));
    source.addEventListener("ping", () => show(null));
    source.addEventListener("open", () => { mode.textContent = "live updates"; });
    source.addEventListener("error", () => {
      // The browser reconnects by itself; until it does, the page says the server is gone.
      if (source.readyState !== EventSource.OPEN) lose("no connection");
      if (source.readyState === EventSource.CLOSED) {
        source = null;
        startPolling("live updates closed");
      }
    });
  }

  setInterval(() => {
    if (Date.now() - lastHeard > SILENCE_MS) lose("nothing heard for a while");
  }, 2000);

  if (typeof window.EventSource === "function") startEvents();
  else startPolling("this browser has no live updates");
})();
