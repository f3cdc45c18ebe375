// Runs right after the CDN <script>: when that failed (offline, blocked), load our own copy of the same
// htmx release. document.write keeps it a parser-blocking script, so htmx starts exactly as from the CDN.
if (!window.htmx) {
  document.write('<script src="' + document.currentScript.dataset.src + '"><\/script>');
}
