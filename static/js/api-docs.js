// The API reference page (templates/api/docs.html): Swagger UI from static/vendor/swagger-ui,
// started here because the Content-Security-Policy forbids inline scripts. "Try it out" calls
// the API with the page's session; unsafe methods carry the CSRF token.
(function () {
  "use strict";
  function start() {
    var root = document.getElementById("swagger-ui");
    if (!root || typeof window.SwaggerUIBundle !== "function") {
      return;
    }
    var csrfToken = root.getAttribute("data-csrf-token");
    window.SwaggerUIBundle({
      url: root.getAttribute("data-openapi-url"),
      domNode: root,
      // Deep links put an <a> inside each operation's <button> (nested interactive controls).
      deepLinking: false,
      layout: "BaseLayout",
      defaultModelsExpandDepth: 0,
      requestInterceptor: function (request) {
        var method = (request.method || "GET").toUpperCase();
        if (csrfToken && ["GET", "HEAD", "OPTIONS"].indexOf(method) === -1) {
          request.headers["X-CSRFToken"] = csrfToken;
        }
        return request;
      },
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
