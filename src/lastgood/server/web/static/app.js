// lastgood dashboard: lazy fragments (they ask AWS) and the rollback page's live steps and timeline (SSE).
"use strict";

function loadFragment(box) {
  fetch(box.dataset.src, { credentials: "same-origin", headers: { Accept: "text/html" } })
    .then(async (answer) => {
      const html = await answer.text();
      if (answer.ok) {
        box.innerHTML = html;
        return;
      }
      const page = new DOMParser().parseFromString(html, "text/html");
      const why = page.querySelector("#error-message");
      box.innerHTML = "";
      const p = document.createElement("p");
      p.className = "alert error";
      p.textContent = why ? why.textContent : "could not load (" + answer.status + ")";
      box.appendChild(p);
    })
    .catch(() => { box.textContent = "could not load: the server did not answer"; });
}

function badge(status) {
  const span = document.createElement("span");
  span.className = "badge s-" + status.replace(/ /g, "-");
  span.textContent = status;
  return span;
}

function showSteps(progress) {
  const state = document.getElementById("rollback-status");
  if (state && state.dataset.status !== progress.status) {
    state.dataset.status = progress.status;
    state.replaceChildren(badge(progress.status));
  }
  const error = document.getElementById("rollback-error");
  if (error) {
    error.hidden = !progress.error;
    error.textContent = progress.error || "";
  }
  for (const step of progress.steps) {
    const row = document.getElementById("step-" + step.component);
    if (!row) continue;
    const cell = row.querySelector(".step-status");
    if (cell.dataset.status !== step.status) {
      cell.dataset.status = step.status;
      cell.replaceChildren(badge(step.status));
    }
    row.querySelector(".step-attempts").textContent = String(step.attempts);
  }
}

function addEvent(list, event) {
  if (list.querySelector('li[data-id="' + event.id + '"]')) return;
  const item = document.createElement("li");
  item.dataset.id = String(event.id);
  item.className = "new";
  const at = document.createElement("time");
  at.textContent = event.at.replace("T", " ").slice(0, 19);
  const type = document.createElement("span");
  type.className = "etype";
  type.textContent = event.type;
  const who = document.createElement("small");
  who.className = "muted";
  who.textContent = event.actor;
  item.append(at, " ", type, " " + event.message + " ", who);
  list.appendChild(item);
}

function follow(list) {
  const feed = new EventSource(list.dataset.feed);
  feed.addEventListener("ledger", (message) => addEvent(list, JSON.parse(message.data)));
  feed.addEventListener("steps", (message) => showSteps(JSON.parse(message.data)));
  window.addEventListener("pagehide", () => feed.close());
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".lazy[data-src]").forEach(loadFragment);
  const timeline = document.getElementById("timeline");
  if (timeline && timeline.dataset.feed) follow(timeline);
});
