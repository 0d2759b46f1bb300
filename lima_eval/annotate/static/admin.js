"use strict";
(function () {
  const base = location.pathname.replace(/\/+$/, "");
  document.getElementById("export").href = base + "/export.csv";
  function fmt(x, pct) {
    if (x === null || x === undefined) return "-";
    return pct ? (100 * x).toFixed(1) + "%" : x.toFixed(3);
  }
  function table(id, head, rows) {
    const t = document.getElementById(id);
    t.replaceChildren();
    const tr = document.createElement("tr");
    head.forEach(function (h) { const th = document.createElement("th"); th.textContent = h; tr.appendChild(th); });
    t.appendChild(tr);
    rows.forEach(function (r) {
      const row = document.createElement("tr");
      r.forEach(function (c) { const td = document.createElement("td"); td.textContent = c; row.appendChild(td); });
      t.appendChild(row);
    });
  }
  async function refresh() {
    const r = await fetch(base + "/status");
    if (!r.ok) return;
    const s = await r.json();
    document.getElementById("summary").textContent = s.task + " labels from " + s.source + ": " + s.items +
      " items, each for " + s.overlap + " annotator(s); " + s.labels + " labels, " + s.items_complete +
      " items complete" + (s.gold_items ? "; " + s.gold_items + " gold items in every queue" : "") + ".";
    table("people", ["annotator", "done / assigned", "labels", "skipped", "can't judge", "offensive", "gold accuracy"],
      s.annotators.map(function (a) {
        return [a.annotator, a.done + " / " + a.assigned, a.labels, a.skipped["skip"], a.skipped["cannot-judge"],
          a.skipped["offensive"], a.gold_answered ? fmt(a.gold_accuracy, true) + " (" + a.gold_correct + "/" +
          a.gold_answered + ")" : "-"];
      }));
    const ag = s.agreement;
    document.getElementById("fleiss").textContent = "Fleiss' kappa over the " + ag.fleiss_items +
      " items with every label in: " + fmt(ag.fleiss_kappa) + "; mean pairwise Cohen's kappa: " +
      fmt(ag.mean_pairwise_kappa) + ".";
    table("pairs", ["annotators", "items", "Cohen's kappa", "agreement", "tie-discounted (LIMA)"],
      ag.pairs.map(function (p) {
        return [p.a + " / " + p.b, p.n, fmt(p.kappa), fmt(p.with_ties, true), fmt(p.tie_discounted, true)];
      }));
    table("judges", ["judge", "people", "items", "Cohen's kappa", "agreement", "tie-discounted (LIMA)"],
      s.judges.map(function (j) {
        return [j.judge_a, j.judge_b, j.n, fmt(j.kappa), fmt(j.with_ties, true), fmt(j.tie_discounted, true)];
      }));
  }
  refresh();
  setInterval(refresh, 5000);
})();
