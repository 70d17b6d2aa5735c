// The tags table of a repository page: copy buttons that carry their text
// (data-copy-text: a tag's pull command, a digest). Delegated, so that rows swapped in by
// htmx work too. Without JavaScript the buttons stay hidden (CSS shows .copy under .js) and
// the tag's own page has the commands.
(function () {
  "use strict";

  function fallbackCopy(text) {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (error) {
      ok = false;
    }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () {
        return fallbackCopy(text);
      });
    }
    return fallbackCopy(text);
  }

  function say(button, text, state) {
    const status = button.nextElementSibling;
    if (status && status.classList.contains("copy-status")) status.textContent = text;
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

  document.addEventListener("click", function (event) {
    const button = event.target.closest && event.target.closest("button.copy[data-copy-text]");
    if (!button) return;
    const text = button.dataset.copyText;
    copy(text).then(
      function () {
        button.dataset.copied = text;
        say(button, "Copied", "ok");
      },
      function () {
        say(button, "Copy failed", "error");
      }
    );
  });
})();
