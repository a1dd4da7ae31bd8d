// mll hub web UI: a drop zone for the task's images and a job page that follows its job.
"use strict";

function setUpDrop() {
  const zone = document.getElementById("drop");
  if (!zone) return;
  const input = zone.querySelector("input[type=file]");
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("over"));
  }
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) input.files = e.dataTransfer.files;
  });
}

function followJob() {
  const box = document.getElementById("job");
  if (!box) return;
  const url = "/api/jobs/" + encodeURIComponent(box.dataset.job);
  const show = (job) => {
    document.getElementById("job-state").textContent = job.state;
    document.getElementById("job-phase").textContent = job.phase;
    const bar = document.getElementById("job-progress");
    bar.max = Math.max(job.progress.total, 1);
    bar.value = job.progress.done;
    document.getElementById("job-count").textContent =
      job.progress.done + " / " + job.progress.total + " sample images labelled";
    const message = document.getElementById("job-message");
    message.textContent = job.message;
    message.className = job.state === "failed" ? "error" : "";
    if (job.state === "done" && job.model_id) {
      document.getElementById("model-link").href = "/models/" + encodeURIComponent(job.model_id);
      document.getElementById("job-live").hidden = false;
    }
    return job.state === "done" || job.state === "failed";
  };
  const poll = () => {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then((job) => { if (!show(job)) setTimeout(poll, 1000); })
      .catch(() => setTimeout(poll, 3000));
  };
  if (!["done", "failed"].includes(document.getElementById("job-state").textContent)) poll();
}

document.addEventListener("DOMContentLoaded", () => { setUpDrop(); followJob(); });
