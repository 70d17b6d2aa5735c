// Bulk delete: "select all" ticks every tag checkbox that belongs to the same form (through
// the form="…" attribute), on the tags shown now, including rows htmx swapped in later.
// Without JavaScript the checkboxes still work one by one.
(function () {
  "use strict";

  function boxes(formId) {
    return document.querySelectorAll(
      'input[type="checkbox"][name="tag"][form="' + CSS.escape(formId) + '"]'
    );
  }

  document.addEventListener("change", function (event) {
    const target = event.target;
    if (!(target instanceof HTMLInputElement)) return;
    const formId = target.dataset.selectAll;
    if (formId) {
      boxes(formId).forEach(function (box) {
        box.checked = target.checked;
      });
      document.querySelectorAll('[data-select-all="' + CSS.escape(formId) + '"]').forEach(
        function (other) {
          other.checked = target.checked;
        }
      );
      return;
    }
    const owner = target.getAttribute("form");
    if (target.name === "tag" && owner) {
      const all = Array.prototype.every.call(boxes(owner), function (box) {
        return box.checked;
      });
      document.querySelectorAll('[data-select-all="' + CSS.escape(owner) + '"]').forEach(
        function (master) {
          master.checked = all;
        }
      );
    }
  });

  // Rows swapped in by htmx (another page of tags) start unticked: so does "select all".
  document.addEventListener("htmx:afterSwap", function () {
    document.querySelectorAll("[data-select-all]").forEach(function (master) {
      master.checked = false;
    });
  });
})();

// "Delete selected tags…" with nothing ticked: say so next to the button instead of opening
// the confirmation (without JavaScript the server sends the user back with the same note).
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || form.id !== "bulk-delete") return;
    const ticked = document.querySelectorAll(
      'input[type="checkbox"][name="tag"][form="bulk-delete"]:checked'
    );
    if (ticked.length) return;
    event.preventDefault();
    const note = document.getElementById("bulk-delete-note");
    if (note) {
      note.textContent =
        "No tag was selected: tick the tags to delete in the table below, then press " +
        "“Delete selected tags…” again.";
      note.classList.add("banner", "warning");
    }
  });
})();
