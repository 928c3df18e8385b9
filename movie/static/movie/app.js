// Cinegraph: report poster clicks, ratings and "Not interested" to /api/events, then carry on;
// report each list of posters the page shows (its impression) to /api/impressions.
(function () {
  "use strict";

  // One try waits this long: longer than the server can take (click log 1 s, mirror, confirm
  // 1 s, Kafka 1 s), so a try the page gives up on was not saved. tests/movie/tracking/test_events.py
  // checks it. A failed try is repeated with the same idempotency key while RETRY_MS lasts:
  // the server stores an event once however many tries reach it.
  const EVENT_TIMEOUT_MS = 5500;
  const RETRY_MS = 7000;
  const RETRY_PAUSE_MS = [250, 1000];
  // A click right after the page loads waits this long at most for its list's impression to
  // be saved, so the server knows the list when the click arrives; past it, the click goes
  // unattributed rather than slow.
  const IMPRESSION_WAIT_MS = 1000;

  function cookie(name) {
    const match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : "";
  }

  function uuid4() {
    // crypto.getRandomValues works on plain http too (randomUUID needs a secure context).
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  async function tryOnce(url, body, key, timeoutMs) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          "X-CSRFToken": cookie("csrftoken"),
          "Idempotency-Key": key,
        },
        body: JSON.stringify(body),
        credentials: "same-origin",
        signal: controller.signal,
      });
      return response.ok ? "saved" : response.status >= 500 ? "retry" : "refused";
    } catch (error) {
      return "retry"; // no answer: the event may or may not be stored; the key makes a retry safe
    } finally {
      clearTimeout(timer);
    }
  }

  async function send(url, body, key) {
    const deadline = Date.now() + RETRY_MS;
    for (let attempt = 0; ; attempt++) {
      const outcome = await tryOnce(url, body, key, Math.min(EVENT_TIMEOUT_MS, Math.max(deadline - Date.now(), 1)));
      const pause = RETRY_PAUSE_MS[Math.min(attempt, RETRY_PAUSE_MS.length - 1)];
      if (outcome !== "retry" || Date.now() + pause >= deadline) return outcome === "saved";
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  function sendEvent(body) {
    return send("/api/events", body, uuid4());
  }

  // A list the server signed (data-impression-token) is reported once, keyed by its impression
  // id: a retry, or the same page restored from the back-forward cache, stores nothing new.
  const impressions = new Map(); // list -> promise of its report
  document.querySelectorAll("ul[data-impression][data-impression-token]").forEach((list) => {
    impressions.set(list, send("/api/impressions", { token: list.dataset.impressionToken }, list.dataset.impression));
  });

  async function listFields(poster) {
    const list = poster.closest("ul[data-impression]");
    if (!list) return {};
    const position = Array.from(list.querySelectorAll("a.poster[data-movie-id]")).indexOf(poster) + 1;
    const reported = impressions.get(list) || Promise.resolve();
    await Promise.race([reported, new Promise((resolve) => setTimeout(resolve, IMPRESSION_WAIT_MS))]);
    return { impression: list.dataset.impression, position };
  }

  document.addEventListener("click", async (event) => {
    const poster = event.target.closest("a.poster[data-movie-id]");
    if (!poster) return;
    const body = { movie_id: Number(poster.dataset.movieId), kind: "click" };
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) {
      listFields(poster).then((fields) => sendEvent({ ...body, ...fields })); // a new tab: report alongside
      return;
    }
    event.preventDefault();
    await sendEvent({ ...body, ...(await listFields(poster)) });
    window.location.href = poster.href;
  });

  // "Not interested": the poster leaves the list at once (hidden, so the list keeps its
  // positions for the clicks that follow) and comes back if the event could not be saved.
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-dismiss]");
    if (!button) return;
    const item = button.closest("li");
    item.hidden = true;
    const ok = await sendEvent({ movie_id: Number(button.dataset.dismiss), kind: "dismiss" });
    if (!ok) {
      item.hidden = false;
      button.textContent = "Could not save, try again";
    }
  });

  function showRating(stars, value) {
    stars.forEach((star) => star.classList.toggle("on", Number(star.dataset.value) <= value));
  }

  document.querySelectorAll(".rate[data-movie-id]").forEach((rate) => {
    const stars = Array.from(rate.querySelectorAll(".star"));
    const status = rate.querySelector(".rate-status");
    stars.forEach((star) => {
      star.addEventListener("mouseenter", () => showRating(stars, Number(star.dataset.value)));
      star.addEventListener("click", async () => {
        const value = Number(star.dataset.value);
        rate.dataset.value = String(value);
        showRating(stars, value);
        const ok = await sendEvent({ movie_id: Number(rate.dataset.movieId), kind: "rate", value });
        status.textContent = ok ? "Saved: " + value + " ★" : "Could not save your rating, please try again.";
      });
    });
    rate.addEventListener("mouseleave", () => showRating(stars, Number(rate.dataset.value || 0)));
  });
})();
