// The dashboard's only script (no inline script: the Content-Security-Policy forbids it).
// Pages work without it, read-only; with it, htmx swaps the parts that change as /ui/events says.
(function () {
  'use strict';

  function emit(name) {
    document.body.dispatchEvent(new CustomEvent(name));
  }

  // One stream per page: each batch says which machines changed; the parts that show them refresh.
  if (window.EventSource) {
    var stream = new EventSource('/ui/events');
    stream.addEventListener('change', function (e) {
      var batch;
      try {
        batch = JSON.parse(e.data);
      } catch (err) {
        console.warn('edgeboot: an event the dashboard cannot read', err);
        return;
      }
      emit('eb-change');
      Object.keys(batch.machines || {}).forEach(function (mac) {
        emit('eb-machine-' + mac.replace(/:/g, '-'));
      });
    });
    stream.addEventListener('open', function () {
      document.documentElement.dataset.live = 'on';
    });
    stream.addEventListener('error', function () {
      document.documentElement.dataset.live = 'off';
    });
  }

  document.addEventListener('click', function (e) {
    var target = e.target;
    if (!(target instanceof Element)) return;
    var copy = target.closest('[data-copy]');
    if (copy) {
      var source = document.querySelector(copy.getAttribute('data-copy'));
      if (source && navigator.clipboard) {
        navigator.clipboard.writeText(source.textContent.trim()).then(
          function () {
            copy.textContent = 'Copied';
          },
          function () {
            copy.textContent = 'Select and copy';
          },
        );
      }
    }
  });

  document.addEventListener('change', function (e) {
    var box = e.target;
    if (!(box instanceof HTMLInputElement) || !box.hasAttribute('data-select-all')) return;
    var form = box.form;
    if (!form) return;
    form.querySelectorAll('input[type=checkbox][name="' + box.getAttribute('data-select-all') + '"]').forEach(function (c) {
      c.checked = box.checked;
    });
  });
})();
