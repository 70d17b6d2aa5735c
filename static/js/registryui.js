// Registry UI: the little JavaScript the pages use. Everything works without it; this adds
// the "/" shortcut to search and copy-to-clipboard buttons. No inline scripts: the production
// Content-Security-Policy forbids them.
(function () {
  "use strict";

  // CSS shows the copy buttons only when this script runs (.js on <html>).
  document.documentElement.classList.add("js");

  function isTyping(target) {
    if (!target) return false;
    const tag = target.tagName;
    return target.isContentEditable || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }

  // "/" focuses the search box (the page's own search field first, else the header's).
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target)) return;
    const box =
      document.querySelector("[data-search-primary]") ||
      document.querySelector("[data-search-shortcut]");
    if (!box) return;
    event.preventDefault();
    box.focus();
    box.select();
  });

  // A command is an <input> (its value) or a <code data-command> (shown whole, see
  // templates/catalog/_command.html).
  function commandText(element) {
    return "command" in element.dataset ? element.dataset.command : element.value;
  }

  function selectAll(element) {
    if (typeof element.select === "function") {
      element.focus();
      element.select();
      return;
    }
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function fallbackCopy(input) {
    // Plain-HTTP deployments have no navigator.clipboard (it needs a secure context).
    selectAll(input);
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (error) {
      ok = false;
    }
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copyText(input) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(commandText(input)).catch(function () {
        return fallbackCopy(input);
      });
    }
    return fallbackCopy(input);
  }

  // A button that carries its text (data-copy-text: a tag's pull command or a digest in the
  // tags table) copies it through a hidden textarea when there is no clipboard API.
  function copyString(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () {
        return copyThroughArea(text);
      });
    }
    return copyThroughArea(text);
  }

  function copyThroughArea(text) {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    const done = fallbackCopy(area);
    document.body.removeChild(area);
    return done;
  }

  // Where "Copied" is said: the button's own status (a command block has one), else the
  // page's one shared region (the tags table's rows have none: 100 fewer elements a page).
  // Made when the script starts, so that it exists before its first change is announced.
  let sharedStatus = null;

  function pageStatus() {
    if (!sharedStatus || !sharedStatus.isConnected) {
      sharedStatus = document.createElement("span");
      sharedStatus.id = "copy-status";
      sharedStatus.className = "copy-status visually-hidden";
      sharedStatus.setAttribute("role", "status");
      sharedStatus.setAttribute("aria-live", "polite");
      document.body.appendChild(sharedStatus);
    }
    return sharedStatus;
  }

  function flash(button, text, state) {
    const next = button.nextElementSibling;
    const status =
      next && next.classList.contains("copy-status")
        ? next
        : (button.parentElement && button.parentElement.querySelector(".copy-status")) ||
          pageStatus();
    status.textContent = text;
    const original = button.dataset.label || button.textContent;
    button.dataset.label = original;
    button.textContent = text;
    button.dataset.state = state;
    window.clearTimeout(Number(button.dataset.timer || 0));
    button.dataset.timer = String(
      window.setTimeout(function () {
        button.textContent = original;
        delete button.dataset.state;
      }, 2000)
    );
  }

  // Delegated, so that buttons in htmx-swapped fragments work too.
  document.addEventListener("click", function (event) {
    const carrier = event.target.closest && event.target.closest("button.copy[data-copy-text]");
    if (carrier) {
      const text = carrier.dataset.copyText;
      copyString(text).then(
        function () {
          carrier.dataset.copied = text;
          flash(carrier, "Copied", "ok");
        },
        function () {
          flash(carrier, "Copy failed", "error");
        }
      );
      return;
    }
    const button = event.target.closest && event.target.closest("button.copy[data-copy-target]");
    if (button) {
      const input = document.getElementById(button.dataset.copyTarget);
      if (!input) return;
      copyText(input).then(
        function () {
          button.dataset.copied = commandText(input);
          flash(button, "Copied", "ok");
        },
        function () {
          selectAll(input);
          flash(button, "Press Ctrl+C", "error");
        }
      );
      return;
    }
    // A click in a read-only command selects it all, ready for a manual copy.
    const field = event.target.closest && event.target.closest(".command input[readonly]");
    if (field) field.select();
  });

  // A box that scrolls sideways (a wide table on a phone, a long digest or token) must be
  // reachable with the keyboard, so that its arrow keys scroll it: such boxes get a tab stop
  // and, for tables, a name that says they scroll. Boxes that fit get neither.
  const SCROLLERS = ".table-wrap, .scroll-x, code";

  function tableName(wrap) {
    const caption = wrap.querySelector("caption");
    if (caption) return caption.textContent.trim();
    let previous = wrap.previousElementSibling;
    while (previous && !/^H[1-6]$/.test(previous.tagName)) previous = previous.previousElementSibling;
    return previous ? previous.textContent.trim() : "Table";
  }

  function markScrollers(root) {
    const boxes = root.querySelectorAll ? root.querySelectorAll(SCROLLERS) : [];
    // Every width is read first, then attributes written: a read after a write would lay the
    // page out again for each box (a tags table has dozens of <code>s).
    const measured = [];
    boxes.forEach(function (box) {
      if (box.closest("pre")) return;
      measured.push([box, box.scrollWidth > box.clientWidth + 1]);
    });
    measured.forEach(function (pair) {
      const box = pair[0];
      const scrolls = pair[1];
      if (scrolls && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        box.dataset.scrollStop = "";
        if (box.classList.contains("table-wrap")) {
          box.setAttribute("role", "region");
          box.setAttribute("aria-label", tableName(box) + " (scrolls sideways)");
          // Said in words too, above the table: the edge shadow alone is easy to miss.
          const before = box.previousElementSibling;
          if (!before || !before.classList.contains("scroll-hint")) {
            const hint = document.createElement("p");
            hint.className = "scroll-hint";
            hint.setAttribute("aria-hidden", "true");
            hint.textContent = "More columns to the right: scroll the table sideways →";
            box.before(hint);
          }
        }
      } else if (!scrolls && "scrollStop" in box.dataset) {
        box.removeAttribute("tabindex");
        delete box.dataset.scrollStop;
        if (box.classList.contains("table-wrap")) {
          box.removeAttribute("role");
          box.removeAttribute("aria-label");
          const hint = box.previousElementSibling;
          if (hint && hint.classList.contains("scroll-hint")) hint.remove();
        }
      }
    });
  }

  function markAll() {
    markScrollers(document);
  }

  function start() {
    pageStatus();
    markAll();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
  let resizing = 0;
  window.addEventListener("resize", function () {
    window.clearTimeout(resizing);
    resizing = window.setTimeout(markAll, 150);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    markScrollers(event.target);
  });
})();
