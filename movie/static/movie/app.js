// Cinegraph: report poster clicks and ratings to /api/events, then carry on.
(function () {
  "use strict";

  // Long enough for a healthy request, short enough that a slow pipeline never blocks navigation.
  // Longer than the server can take (click log 1.5 s + Kafka 1.5 s + the database): a click
  // the page reports as not saved was not saved. tests/movie/test_events.py checks it.
  const EVENT_TIMEOUT_MS = 5000;

  function cookie(name) {
    const match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function sendEvent(body) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), EVENT_TIMEOUT_MS);
    try {
      const response = await fetch("/api/events", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": cookie("csrftoken") },
        body: JSON.stringify(body),
        credentials: "same-origin",
        signal: controller.signal,
      });
      return response.ok;
    } catch (error) {
      return false;
    } finally {
      clearTimeout(timer);
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
