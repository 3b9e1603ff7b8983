// Listening page: sortable tables, and per group of players one window control.
// Hand-written, no library: the page must work from file:// with no network.
"use strict";
(function () {
  function cellValue(row, column) {
    const cell = row.children[column];
    const value = cell ? parseFloat(cell.dataset.value) : NaN;
    return Number.isNaN(value) ? null : value;
  }

  // Clicking a header with data-sort sorts the rows of its table's body by that column:
  // highest first, again for lowest first; rows without a value stay last.
  function sortBy(header) {
    const table = header.closest("table");
    const column = Array.prototype.indexOf.call(header.parentNode.children, header);
    const descending = !header.classList.contains("sorted-desc");
    table.querySelectorAll("th[data-sort]").forEach(function (other) {
      other.classList.remove("sorted-desc", "sorted-asc");
    });
    header.classList.add(descending ? "sorted-desc" : "sorted-asc");
    table.querySelectorAll("tbody").forEach(function (body) {
      const rows = Array.from(body.rows);
      rows.sort(function (a, b) {
        const x = cellValue(a, column), y = cellValue(b, column);
        if (x === null || y === null) { return (x === null) - (y === null); }
        return descending ? y - x : x - y;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  }

  document.querySelectorAll("table.sortable th[data-sort]").forEach(function (header) {
    header.addEventListener("click", function () { sortBy(header); });
  });

  // A group's players all play the same excerpt. Its control sets the part of the excerpt
  // they play (from, to, loop), and starting one player pauses the others and, if asked,
  // goes on from the moment the previous one had reached, for A/B listening.
  function setUpGroup(group) {
    const players = Array.from(group.querySelectorAll("audio"));
    const from = group.querySelector(".loop-from");
    const to = group.querySelector(".loop-to");
    const loop = group.querySelector(".loop");
    const follow = group.querySelector(".follow");
    const label = group.querySelector(".loop-label");
    if (!from || !to || players.length === 0) { return; }
    let moment = 0;

    function range() {
      const start = parseFloat(from.value), end = parseFloat(to.value);
      return end > start ? [start, end] : [start, Math.min(start + 0.1, parseFloat(to.max))];
    }
    function show() {
      const bounds = range();
      label.textContent = bounds[0].toFixed(1) + "–" + bounds[1].toFixed(1) + " s";
    }
    from.addEventListener("input", show);
    to.addEventListener("input", show);
    show();

    players.forEach(function (player) {
      player.addEventListener("play", function () {
        players.forEach(function (other) {
          if (other !== player && !other.paused) {
            moment = other.currentTime;
            other.pause();
          }
        });
        const bounds = range();
        let start = follow && follow.checked ? moment : player.currentTime;
        if (start < bounds[0] || start >= bounds[1]) { start = bounds[0]; }
        if (Math.abs(player.currentTime - start) > 0.05) { player.currentTime = start; }
      });
      player.addEventListener("timeupdate", function () {
        if (player.paused) { return; }
        moment = player.currentTime;
        const bounds = range();
        if (player.currentTime >= bounds[1]) {
          if (loop && loop.checked) { player.currentTime = bounds[0]; } else { player.pause(); }
        }
      });
    });
  }

  document.querySelectorAll(".group").forEach(setUpGroup);
})();
