// The phone's Menu (issue 17, point 5) is a <details> and works without this script; with it, a tap
// outside the open menu or the Escape key closes it, as people expect of a menu.
(function () {
  "use strict";
  var more = document.querySelector(".bottombar details.more");
  if (!more) return;
  // In the capture phase, and swallowed: the tap that dismisses the menu must not also follow the link
  // or press the button that happens to lie under it.
  document.addEventListener("click", function (event) {
    if (more.open && !more.contains(event.target)) {
      more.open = false;
      event.preventDefault();
      event.stopPropagation();
    }
  }, true);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && more.open) {
      more.open = false;
      more.querySelector("summary").focus();
    }
  });
})();
