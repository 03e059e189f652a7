// 督办看板: the 督办 buttons. Everything else is rendered on the server.
"use strict";

const CSRF_HEADER = "X-Bihuan-Dashboard";

async function sendUrge(box, form) {
  const status = box.querySelector(".urge-status");
  const send = form.querySelector("button[type=submit]");
  const note = form.elements.note.value.trim();
  if (!note) {
    status.textContent = "请填写督办意见。";
    status.className = "urge-status failed";
    return;
  }
  send.disabled = true;
  status.textContent = "发送中…";
  status.className = "urge-status";
  let answer = null;
  let ok = false;
  try {
    const response = await fetch(
      "/dashboard/cases/" + encodeURIComponent(box.dataset.caseId) + "/urge", {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          "Idempotency-Key": form.dataset.key,
          [CSRF_HEADER]: "1",
        },
        body: JSON.stringify({ note: note }),
      });
    ok = response.ok;
    answer = await response.json();
  } catch (err) {
    answer = { message: "网络错误，督办未能发送，请重试。" };
  }
  if (ok) {
    status.textContent = answer.message || "督办已发送。";
    status.className = "urge-status done";
    form.hidden = true;
    box.querySelector("[data-urge-open]").disabled = true;
    if (document.getElementById("timeline")) {
      // The workflow writes the history a moment later.
      setTimeout(() => window.location.reload(), 1500);
    }
  } else {
    status.textContent = (answer && answer.message) || "督办未能发送。";
    status.className = "urge-status failed";
    send.disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const box of document.querySelectorAll(".urge")) {
    const form = box.querySelector("[data-urge-form]");
    box.querySelector("[data-urge-open]").addEventListener("click", () => {
      form.hidden = false;
      form.elements.note.focus();
    });
    box.querySelector("[data-urge-cancel]").addEventListener("click", () => {
      form.hidden = true;
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      sendUrge(box, form);
    });
  }
});
