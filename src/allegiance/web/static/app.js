/* Progressive enhancement for the operator pages, in the spirit of HTMX (no library shipped).
 *
 * form[data-live="#target"]: typing or changing a filter fetches the form's GET URL with the
 *   "HX-Request: true" header; the server answers with the rows fragment only, which replaces
 *   the target's content, and the address bar follows. Without JavaScript the form is a plain GET.
 * form[data-autosubmit]: a select change submits the form (its button is hidden when JS runs).
 */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function urlOf(form) {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, name) {
      if (typeof value === "string" && value.trim() !== "") { params.append(name, value); }
    });
    var query = params.toString();
    return form.getAttribute("action") + (query ? "?" + query : "");
  }

  function live(form) {
    var target = document.querySelector(form.getAttribute("data-live"));
    if (!target || !window.fetch || !window.AbortController) { return; }
    var timer = null;
    var inflight = null;

    function refresh() {
      var url = urlOf(form);
      if (inflight) { inflight.abort(); }
      inflight = new AbortController();
      form.setAttribute("aria-busy", "true");
      fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin", signal: inflight.signal })
        .then(function (response) {
          // Logged out meanwhile, or an error page: let the browser show the real page.
          if (!response.ok || response.redirected) { window.location.assign(url); return null; }
          return response.text();
        })
        .then(function (html) {
          if (html === null) { return; }
          target.innerHTML = html;
          window.history.replaceState(null, "", url);
          form.removeAttribute("aria-busy");
        })
        .catch(function (error) {
          if (error.name !== "AbortError") { window.location.assign(url); }
        });
    }

    function soon() { window.clearTimeout(timer); timer = window.setTimeout(refresh, 250); }
    form.addEventListener("input", soon);
    form.addEventListener("change", soon);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      window.clearTimeout(timer);
      refresh();
    });
  }

  function autosubmit(form) {
    form.addEventListener("change", function () { form.submit(); });
  }

  document.querySelectorAll("form[data-live]").forEach(live);
  document.querySelectorAll("form[data-autosubmit]").forEach(autosubmit);
}());
