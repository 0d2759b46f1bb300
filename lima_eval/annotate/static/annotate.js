"use strict";
// The labelling page. Model text is only ever put into the page as text (textContent), never as HTML.
(function () {
  const base = location.pathname.replace(/\/+$/, "");
  const csrf = document.querySelector('meta[name="csrf"]').content;
  const task = document.querySelector('meta[name="task"]').content;
  const choices = task === "pairwise"
    ? [["1", "Answer 1 is significantly better"], ["2", "Answer 2 is significantly better"], ["0", "Neither"]]
    : [["fail", "Fail"], ["pass", "Pass"], ["excellent", "Excellent"]];
  const keys = task === "pairwise" ? { "1": "1", "2": "2", "0": "0", "n": "0" }
    : { "1": "fail", "2": "pass", "3": "excellent" };
  let current = null;
  let busy = false;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function show(state) {
    current = state.item;
    document.getElementById("progress").max = Math.max(1, state.total);
    document.getElementById("progress").value = state.done;
    document.getElementById("count").textContent = state.done + " / " + state.total;
    document.getElementById("undo").disabled = !state.can_undo;
    const main = document.getElementById("item");
    main.replaceChildren();
    const finished = state.item === null;
    document.getElementById("done").hidden = !finished;
    document.querySelector("nav.actions").classList.toggle("finished", finished);
    if (finished) return;
    state.turns.forEach(function (turn, t) {
      const block = el("section", "turn");
      block.appendChild(el("h2", null, state.turns.length > 1 ? "Request, turn " + (t + 1) : "Request"));
      block.appendChild(el("pre", "user", turn.user));
      const row = el("div", "answers");
      turn.answers.forEach(function (text, i) {
        const box = el("article", "answer");
        box.appendChild(el("h3", null, turn.answers.length > 1 ? "Answer " + (i + 1) : "Answer"));
        box.appendChild(el("pre", null, text));
        row.appendChild(box);
      });
      block.appendChild(row);
      main.appendChild(block);
    });
  }

  function say(text) { document.getElementById("status").textContent = text; }

  async function call(path, body) {
    const init = body === undefined ? {} : {
      method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body) };
    const r = await fetch(base + path, init);
    const data = await r.json();
    if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
    return data;
  }

  async function act(path, body) {
    if (busy) return;
    busy = true;
    try {
      show(await call(path, body));
      say("");
    } catch (e) {
      say("Not saved: " + e.message);
    } finally {
      busy = false;
    }
  }

  function label(choice) { if (current) act("/label", { item: current, choice: choice }); }
  function skip(reason) { if (current) act("/skip", { item: current, reason: reason }); }

  const bar = document.getElementById("choices");
  choices.forEach(function (c, i) {
    const b = el("button", "choice", c[1] + " ");
    b.type = "button";
    b.dataset.choice = c[0];
    b.appendChild(el("kbd", null, task === "pairwise" ? c[0] : String(i + 1)));
    b.addEventListener("click", function () { label(c[0]); });
    bar.appendChild(b);
  });
  document.querySelectorAll("[data-task]").forEach(function (d) { d.hidden = d.dataset.task !== task; });
  ["skip", "cannot", "offensive"].forEach(function (id) {
    const b = document.getElementById(id);
    b.addEventListener("click", function () { skip(b.dataset.reason); });
  });
  document.getElementById("undo").addEventListener("click", function () { act("/undo", {}); });
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const k = e.key.toLowerCase();
    if (keys[k] !== undefined) label(keys[k]);
    else if (k === "s") skip("skip");
    else if (k === "c") skip("cannot-judge");
    else if (k === "o") skip("offensive");
    else if (k === "u") act("/undo", {});
    else return;
    e.preventDefault();
  });
  call("/next").then(show).catch(function (e) { say("Could not load: " + e.message); });
})();
