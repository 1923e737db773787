// Figures: "PNG (2x)" buttons draw the server's SVG on a canvas at twice its size and save it.
// No inline script (the pages are served under a Content-Security-Policy of 'self' only).
(function () {
  'use strict';

  function save(blob, filename) {
    const url = URL.createObjectURL(blob);
    const link = document.createElement('a');
    link.href = url;
    link.download = filename;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 30000);
  }

  function toPng(button) {
    const status = document.getElementById(button.getAttribute('aria-describedby') || '');
    const say = function (text) { if (status) status.textContent = text; };
    const image = new Image();
    image.onload = function () {
      const scale = Number(button.dataset.scale || 2);
      const canvas = document.createElement('canvas');
      canvas.width = Math.round(image.naturalWidth * scale);
      canvas.height = Math.round(image.naturalHeight * scale);
      const context = canvas.getContext('2d');
      context.fillStyle = '#ffffff';
      context.fillRect(0, 0, canvas.width, canvas.height);
      context.drawImage(image, 0, 0, canvas.width, canvas.height);
      canvas.toBlob(function (blob) {
        if (!blob) { say('the PNG could not be made'); return; }
        save(blob, button.dataset.filename || 'figure.png');
        say('PNG saved (' + canvas.width + '×' + canvas.height + ')');
      }, 'image/png');
    };
    image.onerror = function () { say('the SVG could not be read'); };
    say('drawing…');
    image.src = button.dataset.svg;  // same origin: the canvas stays exportable
  }

  document.querySelectorAll('button.png-download[data-svg]').forEach(function (button) {
    button.hidden = false;
    button.addEventListener('click', function () { toPng(button); });
  });
})();
