// Cinegraph: report poster clicks and ratings to /api/events, then carry on.
(function () {
  "use strict";

  // One try waits this long: longer than the server can take (click log 1 s, mirror, confirm
  // 1 s, Kafka 1 s), so a try the page gives up on was not saved. tests/movie/test_events.py
  // checks it. A failed try is repeated with the same idempotency key while RETRY_MS lasts:
  // the server stores an event once however many tries reach it.
  const EVENT_TIMEOUT_MS = 5500;
  const RETRY_MS = 7000;
  const RETRY_PAUSE_MS = [250, 1000];

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

  async function tryOnce(body, key, timeoutMs) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const response = await fetch("/api/events", {
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

  async function sendEvent(body) {
    const key = uuid4();
    const deadline = Date.now() + RETRY_MS;
    for (let attempt = 0; ; attempt++) {
      const outcome = await tryOnce(body, key, Math.min(EVENT_TIMEOUT_MS, Math.max(deadline - Date.now(), 1)));
      const pause = RETRY_PAUSE_MS[Math.min(attempt, RETRY_PAUSE_MS.length - 1)];
      if (outcome !== "retry" || Date.now() + pause >= deadline) return outcome === "saved";
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  document.addEventListener("click", async (event) => {
    const poster = event.target.closest("a.poster[data-movie-id]");
    if (!poster) return;
    const body = { movie_id: Number(poster.dataset.movieId), kind: "click" };
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) {
      sendEvent(body); // opening in a new tab: let the browser do it, report alongside
      return;
    }
    event.preventDefault();
    await sendEvent(body);
    window.location.href = poster.href;
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
