/* The API reference /docs: the vendored Redoc (static/vendor) renders /api/v1/openapi.json.
 *
 * Redoc writes its styles into <style> elements; they carry the nonce the page's
 * Content-Security-Policy names, so no other inline style is allowed. Its theme is given system
 * fonts: the default names Roboto and Montserrat, which pages usually fetch from Google Fonts.
 */
(() => {
  'use strict';

  const root = document.getElementById('redoc');
  const SANS = 'system-ui, -apple-system, "Segoe UI", "Helvetica Neue", Arial, sans-serif';
  const MONO = 'ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace';

  window.Redoc.init(
    root.dataset.specUrl,
    {
      nonce: root.dataset.styleNonce,
      nativeScrollbars: true, // no scrollbar library and its stylesheet
      hideDownloadButton: false,
      expandResponses: '200,201,202',
      requiredPropsFirst: true,
      showExtensions: ['x-roles'],
      theme: {
        typography: {
          fontFamily: SANS,
          headings: { fontFamily: SANS },
          code: { fontFamily: MONO },
        },
      },
    },
    root,
    (error) => {
      if (error) {
        root.textContent = `The API document could not be shown: ${error.message || error}`;
      }
    },
  );
})();
